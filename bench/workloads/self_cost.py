"""Runs another workload as __main__ and writes, at exit, the CPU time this
process used (getrusage of the process, every thread included) and how long
the workload took, timed inside the process (so the profiler's start and end
are left out): "cpu_seconds elapsed_seconds" to the file named by
$MEMRAY_BENCH_COST, if set. Under every profiler, the profiled process
reports alike. With $MEMRAY_BENCH_HOLD set to a file name, writes its pid
there and waits for a line on stdin first (until a tracer has attached, or
counters are opened on it).

Usage: self_cost.py WORKLOAD.py [ARGS...]
"""

import atexit
import os
import resource
import runpy
import sys
import time


def write_cost(path, start):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "w") as out:
        out.write(
            "%f %f\n" % (usage.ru_utime + usage.ru_stime, time.perf_counter() - start)
        )


def hold(pid_file):
    with open(pid_file + ".partial", "w") as out:
        out.write("%d\n" % os.getpid())
    os.rename(pid_file + ".partial", pid_file)
    sys.stdin.readline()


if __name__ == "__main__":
    if os.environ.get("MEMRAY_BENCH_HOLD"):
        hold(os.environ["MEMRAY_BENCH_HOLD"])
    if os.environ.get("MEMRAY_BENCH_COST"):
        atexit.register(write_cost, os.environ["MEMRAY_BENCH_COST"], time.perf_counter())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
