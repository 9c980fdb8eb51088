"""numpy arrays created and combined (runs only where numpy is installed).

Usage: tracker_numpy.py [ROUNDS]   (default 30)
"""

import sys

try:
    import numpy
except ImportError:
    print("numpy is not installed: nothing to measure", file=sys.stderr)
    sys.exit(0)


def compute(rounds):
    total = 0.0
    for round_number in range(rounds):
        a = numpy.arange(1_000_000, dtype=numpy.float64)
        b = numpy.sqrt(a) * 2.0 + a
        c = numpy.concatenate([a[: 1000 * (round_number + 1)], b])
        total += float(c.sum())
    return total


if __name__ == "__main__":
    print(compute(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
