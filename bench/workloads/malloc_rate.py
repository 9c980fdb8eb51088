"""About RATE malloc/free pairs per second for SECONDS seconds: bytearrays of
1 KiB (above pymalloc's 512-byte limit, so each is one libc malloc and one
free), in batches paced against the clock. Prints the rate reached.

Usage: malloc_rate.py [RATE] [SECONDS]   (default 1000000 10)
"""

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


if __name__ == "__main__":
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    done, elapsed = churn(rate, seconds)
    print("%d malloc/free pairs in %.1f s: %.0f per second" % (done, elapsed, done / elapsed))
