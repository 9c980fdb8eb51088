"""Allocation-heavy churn of dicts, lists and strings, for capture benchmarks.

Usage: alloc_churn.py [ROUNDS]   (default 30; each round adds ~110k records
to a capture traced with --trace-python-allocators)
"""

import sys


def build_records(n):
    return [{"id": i, "name": f"item-{i}", "tags": [str(i % 7), str(i % 11)]} for i in range(n)]


def index_by_name(records):
    return {record["name"]: record for record in records}


def render(records):
    return ",".join(f"{r['id']}:{'|'.join(r['tags'])}" for r in records)


def churn(rounds):
    kept = []
    for round_number in range(rounds):
        records = build_records(2_000)
        index = index_by_name(records)
        text = render(records)
        words = text.split(",")
        # Keep a little of each round alive, so the capture has both
        # short-lived and long-lived allocations.
        kept.append(words[round_number % len(words)] * 10)
        del records, index, text, words
    return kept


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(len(churn(rounds)))
