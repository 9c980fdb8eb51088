"""About RATE malloc/free pairs per second for SECONDS seconds, shared by
PROCESSES processes (the first forks the others): bytearrays of 1 KiB (above
pymalloc's 512-byte limit, so each is one libc malloc and one free), in
batches paced against the clock. Prints the rate reached, in pairs and in
allocation records (a malloc and a free each make one).

Usage: malloc_rate.py [RATE] [SECONDS] [PROCESSES]   (default 1000000 10 1)
"""

import os
import sys
import time

BATCHES_PER_SECOND = 100


def churn(rate, seconds):
    batch = max(1, rate // BATCHES_PER_SECOND)
    start = time.monotonic()
    done = 0
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        if done < rate * now:
            for _ in range(batch):
                bytearray(1024)
            done += batch
        else:
            time.sleep(1 / BATCHES_PER_SECOND / 4)
    return done, time.monotonic() - start


def main():
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    results, report = os.pipe()
    children = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            done, _ = churn(rate // processes, seconds)
            os.write(report, b"%d\n" % done)
            os._exit(0)
        children.append(pid)
    done, elapsed = churn(rate // processes, seconds)
    for pid in children:
        os.waitpid(pid, 0)
    os.close(report)
    with os.fdopen(results) as lines:
        done += sum(int(line) for line in lines)
    print(
        "%d malloc/free pairs in %.1f s: %.0f per second, %.0f records per second"
        % (done, elapsed, done / elapsed, 2 * done / elapsed)
    )


if __name__ == "__main__":
    main()
