"""Four threads allocating concurrently (small and medium objects).

Usage: tracker_threads.py [ROUNDS]   (default 100)
"""

import sys
import threading


def work(rounds, results, index):
    total = 0
    for round_number in range(rounds):
        chunks = [bytes(64 + (i % 2000)) for i in range(4_000)]
        table = {i: str(i) * 3 for i in range(2_000)}
        total += len(chunks) + len(table) + round_number
    results[index] = total


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    results = [0] * 4
    threads = [threading.Thread(target=work, args=(rounds, results, i)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(results))
