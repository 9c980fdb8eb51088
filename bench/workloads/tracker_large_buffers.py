"""Large buffers (malloc/mmap-sized) peaking at about 500 MB.

Usage: tracker_large_buffers.py [ROUNDS]   (default 5)
"""

import sys

MIB = 1024 * 1024


# (size in MiB, count): 320 MiB in blocks, topped up to 500 MiB below.
BLOCKS = [(1, 64), (4, 16), (16, 4), (64, 2)]


def peak_once():
    kept = [bytearray(size * MIB) for size, count in BLOCKS for _ in range(count)]
    kept.append(bytearray(500 * MIB - sum(len(b) for b in kept)))
    return sum(len(b) for b in kept)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(max(peak_once() for _ in range(rounds)) // MIB)
