"""Calls os.fsync (which releases the GIL) at known Python stacks and
reports each stack as the interpreter sees it, for the probe-walked stacks
to be compared with. Protocol on stdout, one line per call:
    STACK <wait> <native tid>\t<name>\x1f<file>\x1f<line>\t... (outermost first)
After a line with wait=1 it waits for a line on stdin before returning, so
the code objects on that stack are still alive while the test names them."""
import gc
import os
import random
import sys
import tempfile
import threading
import time
import traceback

FILE = tempfile.TemporaryFile()
FD = FILE.fileno()
LOCK = threading.Lock()


def report(stack, wait):
    frames = "\t".join(f"{f.name}\x1f{f.filename}\x1f{f.lineno}" for f in stack)
    with LOCK:
        print(f"STACK {int(wait)} {threading.get_native_id()}\t{frames}", flush=True)
    if wait:
        sys.stdin.readline()


def call_here(wait=True):
    stack = traceback.extract_stack(); os.fsync(FD)
    report(stack, wait)


def nested_c():
    call_here()


def nested_b():
    nested_c()


def nested_a():
    nested_b()


def recurse(depth, wait=True):
    if depth == 0:
        call_here(wait)
    else:
        recurse(depth - 1, wait)


def gil_released_worker(started):
    started.set()
    recurse(3)


def while_main_holds_the_gil():
    # The main thread runs Python code (holding the GIL between switches)
    # while the worker calls fsync without it.
    started = threading.Event()
    worker = threading.Thread(target=gil_released_worker, args=(started,))
    worker.start()
    started.wait()
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        pass
    worker.join()


def eight_threads():
    barrier = threading.Barrier(8)

    def run(index):
        barrier.wait()
        for _ in range(5):
            recurse(index, wait=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def code_reuse(rounds):
    # A template engine's compile, call, drop, repeat (as the tracker's
    # code_reuse scenario): same names and file, other lines each round.
    rng = random.Random(1234)
    for _ in range(rounds):
        padding = rng.randrange(0, 40)
        body = rng.randrange(0, 6)
        lines = [""] * padding + ["def f():"] + ["    x = 1"] * body
        lines += ["    call_here()", "f()"]
        code = compile("\n".join(lines) + "\n", "<template>", "exec")
        exec(code, {"call_here": call_here})
        del code
        # f and its globals form a cycle: free them now, for the next round
        # to reuse their addresses (3.14's incremental collector waits longer).
        gc.collect()


DEEPER_THAN_THE_WALK = 700
print("ready", flush=True)
sys.stdin.readline()
nested_a()
while_main_holds_the_gil()
eight_threads()
recurse(300)
recurse(DEEPER_THAN_THE_WALK)
code_reuse(int(sys.argv[1]))
print("done", flush=True)
# Alive until the test has named the stacks of the eight threads.
sys.stdin.readline()
