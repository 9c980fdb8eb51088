"""N one-page anonymous mappings, with up to 30,000 of them live at once
(N mmap and N munmap records). With `--aggregate` every munmap is looked up
among the live mappings, so this is where a linear scan turns quadratic.
(The kernel's default limit is 65,530 mappings per process.)

Usage: mmap_churn.py [N]   (default 100,000)
"""

import collections
import mmap
import sys

LIVE = 30_000


def churn(n):
    live = collections.deque()
    for _ in range(n):
        live.append(mmap.mmap(-1, mmap.PAGESIZE))
        if len(live) > LIVE:
            live.popleft().close()
    while live:
        live.popleft().close()
    return n


if __name__ == "__main__":
    print(churn(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
