"""Pure-Python calls that allocate at several depths of a call tree: many
frame pushes and pops between allocations, for the reporters' large capture.
Deterministic (no randomness, no clock; run it with a fixed PYTHONHASHSEED).

Usage: call_churn.py [ROUNDS]   (default 10; each round adds ~50k records,
60 % of them allocations, to a capture traced with --trace-python-allocators)
"""

import sys


def make_item(i):
    name = "item-%d" % i
    return {"id": i, "name": name, "tags": (name[:3], i % 7)}


def label(item):
    return item["name"].upper()


def describe(item):
    return label(item) + "/" + str(item["id"] % 13)


def scaled(i):
    return i * 1000


def shifted(i):
    return scaled(i) + 7


def leaf(i):
    if i % 4:
        return shifted(i)
    return describe(make_item(i))


def walk(depth, width, base):
    if depth == 0:
        return [leaf(base + i) for i in range(width)]
    results = []
    for branch in range(3):
        results.extend(walk(depth - 1, width, base * 3 + branch))
    return results


def churn(rounds):
    kept = []
    for round_number in range(rounds):
        found = walk(4, 20, round_number)
        # Keep a little of each round alive: leaks and a growing heap.
        kept.append(found[round_number % len(found)] * 3)
    return kept


if __name__ == "__main__":
    print(len(churn(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
