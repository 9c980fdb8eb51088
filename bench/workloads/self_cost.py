"""Runs another workload as __main__ and writes, at exit, what this process
cost itself per the kernel (getrusage of the process, every thread included)
and how long the workload took, timed inside the process (so the profiler's
start and end are left out): "cpu_seconds context_switches page_faults
elapsed_seconds" to the file named by $MEMRAY_BENCH_COST. Under every
profiler, the profiled process reports alike. With $MEMRAY_BENCH_HOLD set,
waits for a line on stdin first (until a tracer has attached).

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
            "%f %d %d %f\n"
            % (
                usage.ru_utime + usage.ru_stime,
                usage.ru_nvcsw + usage.ru_nivcsw,
                usage.ru_minflt + usage.ru_majflt,
                time.perf_counter() - start,
            )
        )


if __name__ == "__main__":
    if os.environ.get("MEMRAY_BENCH_HOLD"):
        sys.stdin.readline()
    atexit.register(write_cost, os.environ["MEMRAY_BENCH_COST"], time.perf_counter())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
