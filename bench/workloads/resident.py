"""A Python process that stays until its stdin closes (nothing is ever
written to it): prints "ready" once its interpreter runs, then waits, or,
given RATE, makes about RATE malloc/free pairs per second meanwhile
(malloc_rate.py's churn). With --fork it forks first, and parent and child
each print "ready" and do the same.

Usage: resident.py [--fork] [RATE]
"""

import os
import select
import sys

from malloc_rate import churn

# Seconds of churn between two looks at stdin.
STRETCH = 0.5


def stdin_closed(timeout):
    # Readable only at end of file: nothing is ever written.
    return bool(select.select([sys.stdin], [], [], timeout)[0])


if __name__ == "__main__":
    args = sys.argv[1:]
    fork = "--fork" in args
    args = [arg for arg in args if arg != "--fork"]
    child = os.fork() if fork else 0
    print("ready", flush=True)
    if args:
        rate = int(args[0])
        while not stdin_closed(0):
            churn(rate, STRETCH)
    else:
        stdin_closed(None)
    if child:
        os.waitpid(child, 0)
