"""Pure-Python churn of small dicts, lists and strings: objects that stay in
pymalloc, where the tracker should cost little (target: within 10 % of
plain Python).

Usage: tracker_churn.py [ROUNDS]   (default 200)
"""

import sys


def make_rows(n):
    return [{"id": i, "name": "row-%d" % i, "parts": [i, i * 2, str(i)]} for i in range(n)]


def churn(rounds):
    total = 0
    for round_number in range(rounds):
        rows = make_rows(5_000)
        by_name = {row["name"]: row for row in rows}
        text = ";".join(row["name"] for row in rows)
        total += len(by_name) + len(text.split(";")) + round_number
    return total


if __name__ == "__main__":
    print(churn(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
