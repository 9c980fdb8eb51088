"""Runs a workload inside `memray.Tracker`: ours or memray 1.20's, whichever
`import memray` finds. Usage: in_tracker.py OUTPUT WORKLOAD [ARGS...]"""

import runpy
import sys

import memray

output, workload, *arguments = sys.argv[1:]
sys.argv = [workload, *arguments]
destination = memray.FileDestination(output, overwrite=True, compress_on_exit=False)
with memray.Tracker(destination=destination):
    runpy.run_path(workload, run_name="__main__")
