"""The bootstrap `memray run` starts the interpreter with.

`memray run` writes this file to a memory file descriptor and runs
`python /dev/fd/N LIBRARY OUTPUT FLAGS MODE QUIET INDEX MEMRAY-ARGV...`,
where MEMRAY-ARGV is `memray run`'s own command line and INDEX the position
of the program in it (the program's arguments follow it). Run as a script,
the module sets up sys.argv, sys.path and __main__ like `python file.py`,
`python -m module` or `python -c code` (following -I, -P and
PYTHONSAFEPATH as Python does), activates the preloaded tracker and runs
the program. Its own frame (and runpy's, for -m) are hidden from the
captured stacks. Importing it has no effect.
"""

import sys

#: The activation struct's version (memray-activation's `VERSION`).
ACTIVATION_VERSION = 2
# memray-activation's `flags`, bit for bit.
AGGREGATE = 1
FOLLOW_FORK = 2
TRACE_PYTHON_ALLOCATORS = 4
COMPRESS = 8
BUFFERED = 16
FORCE = 32
NATIVE = 64
#: `LIVE` (`--live`, `--live-remote`): OUTPUT is then the descriptor of the
#: listening socket the reader connects to.
LIVE = 128


def activation_options_type():
    """memray-activation's `ActivationOptions`, field for field."""
    import ctypes

    class ActivationOptions(ctypes.Structure):
        _fields_ = [
            ("size", ctypes.c_uint32),
            ("version", ctypes.c_uint32),
            ("flags", ctypes.c_uint32),
            ("python_hexversion", ctypes.c_uint32),
            ("skipped_frames_on_main_tid", ctypes.c_uint64),
            ("output", ctypes.c_char_p),
            ("python_allocator", ctypes.c_char_p),
            ("command_line", ctypes.c_char_p),
            ("libdest", ctypes.c_char_p),
            ("site_packages", ctypes.c_char_p),
            ("sys_path", ctypes.c_char_p),
            ("live_socket", ctypes.c_int32),
            ("memory_interval_ms", ctypes.c_uint32),
        ]

    return ActivationOptions


class Settings:
    """What `memray run` asks for, from the bootstrap's arguments."""

    def __init__(self, argv):
        library, output, flags, mode, quiet, index = argv[1:7]
        memray_argv = argv[7:]
        index = int(index)
        self.script = argv[0]
        self.library = library
        self.output = output
        self.flags = int(flags)
        self.mode = mode
        self.quiet = quiet == "1"
        self.live = bool(self.flags & LIVE)
        self.memray = memray_argv[0]
        self.command_line = " ".join(memray_argv)
        self.memory_interval_ms = 10
        self.target = memray_argv[index]
        self.program_args = memray_argv[index + 1 :]


def adds_path_entry():
    """Whether Python puts the script's folder (or the current one) first
    on sys.path: not under -I, -P or PYTHONSAFEPATH."""
    return not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))


def encode(text):
    return text.encode("utf-8", "surrogateescape")


def fail(message):
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    import os

    os._exit(1)


def close_own_descriptor(script):
    # `memray run` hands this file over as /dev/fd/N: the program must not inherit N.
    import os

    directory, _, number = script.rpartition("/")
    if directory == "/dev/fd" and number.isdigit():
        try:
            os.close(int(number))
        except OSError:
            pass


def unpreload(library):
    # Programs the user starts (subprocess, exec) must not be tracked.
    import os

    variable = "DYLD_INSERT_LIBRARIES" if sys.platform == "darwin" else "LD_PRELOAD"
    kept = [p for p in os.environ.get(variable, "").split(":") if p and p != library]
    if kept:
        os.environ[variable] = ":".join(kept)
    else:
        os.environ.pop(variable, None)


def fresh_main(**attributes):
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__dict__.update(__builtins__=builtins, **attributes)
    sys.modules["__main__"] = main
    return main


def python_allocator():
    import os

    try:
        import ctypes

        name = ctypes.pythonapi._PyMem_GetCurrentAllocatorName
        name.restype = ctypes.c_char_p
        return name().decode()
    except (AttributeError, OSError, ValueError):
        return os.environ.get("PYTHONMALLOC", "pymalloc") or "pymalloc"


def strings(values):
    return b"".join(encode(v) + b"\0" for v in values) + b"\0"


def wait_for_reader(settings):
    # The tracker accepts the reader; waiting here first keeps Ctrl-C
    # working meanwhile (it ends the run quietly, as memray's does).
    import select
    import socket

    listening = int(settings.output)
    try:
        if not settings.quiet:
            with socket.fromfd(listening, socket.AF_INET, socket.SOCK_STREAM) as listener:
                port = listener.getsockname()[1]
            print("Run 'memray live %d' in another shell to see live results" % port, flush=True)
        select.select([listening], [], [])
    except KeyboardInterrupt:
        sys.exit(0)


def activate(settings, skipped_frames):
    import ctypes

    if settings.live:
        wait_for_reader(settings)
    tracker = ctypes.PyDLL(settings.library)
    name_threads(tracker)
    if activate_library(tracker, settings, skipped_frames) != 0:
        fail(last_error(tracker))
    return tracker


def activate_library(tracker, settings, skipped_frames):
    """Starts recording into `settings.output` with `settings.flags`,
    sampling memory every `settings.memory_interval_ms`; returns
    the library's status (0, or -1 with `last_error`)."""
    import ctypes
    import sysconfig

    import site

    options_type = activation_options_type()
    tracker.memray_tracker_activate.restype = ctypes.c_int
    tracker.memray_tracker_activate.argtypes = [ctypes.POINTER(options_type)]
    tracker.memray_tracker_last_error.restype = ctypes.c_char_p
    site_packages = site.getsitepackages() if hasattr(site, "getsitepackages") else []
    options = options_type(
        size=ctypes.sizeof(options_type),
        version=ACTIVATION_VERSION,
        flags=settings.flags,
        python_hexversion=sys.hexversion,
        skipped_frames_on_main_tid=skipped_frames,
        output=b"" if settings.flags & LIVE else encode(settings.output),
        python_allocator=python_allocator().encode(),
        command_line=encode(settings.command_line),
        libdest=encode(sysconfig.get_paths().get("stdlib") or ""),
        site_packages=strings(site_packages),
        sys_path=strings(sys.path),
        live_socket=int(settings.output) if settings.flags & LIVE else -1,
        memory_interval_ms=settings.memory_interval_ms,
    )
    return tracker.memray_tracker_activate(ctypes.byref(options))


def last_error(tracker):
    return tracker.memray_tracker_last_error().decode("utf-8", "replace")


def name_threads(tracker):
    # Like memray: whenever a Thread has both a name and an ident, tell the tracker.
    import ctypes
    import threading

    tracker.memray_tracker_set_thread_name.argtypes = [ctypes.c_ulong, ctypes.c_char_p]

    class Intercept:
        def __init__(self, attribute):
            self.attribute = attribute

        def __set__(self, thread, value):
            thread.__dict__[self.attribute] = value
            ident = thread.__dict__.get("_ident")
            name = thread.__dict__.get("_name")
            if ident is not None and name is not None:
                tracker.memray_tracker_set_thread_name(ident, str(name).encode("utf-8", "replace"))

    threading.Thread._name = Intercept("_name")
    threading.Thread._ident = Intercept("_ident")


def deactivate(settings, tracker, pid, report=True):
    import os

    if pid != os.getpid():
        # A forked child that returned here: its capture is its own business.
        tracker.memray_tracker_deactivate()
        return
    if tracker.memray_tracker_deactivate() != 0:
        # The capture is not what was asked for (a full disk): no success banner.
        sys.stdout.flush()
        sys.stderr.write("Memray ERROR: %s\n" % last_error(tracker))
        sys.stderr.flush()
        return
    if report and not settings.quiet and not settings.live:
        print(
            "[memray] Successfully generated profile results.\n\n"
            "You can now generate reports from the stored allocation records.\n"
            "Some example commands to generate reports:\n\n"
            "%s flamegraph %s" % (settings.memray, settings.output)
        )


def run_module(target):
    # runpy's `python -m` path, minus its own "No module named" exit, so that
    # a module that cannot be found is reported the way memray reports it.
    import runpy

    _, spec, code = runpy._get_module_details(target)
    sys.argv[0] = spec.origin
    runpy._run_code(code, sys.modules["__main__"].__dict__, None, "__main__", spec)


def announce(settings):
    if not settings.quiet and not settings.live:
        print("Writing profile results into %s" % settings.output)


def compile_program(settings):
    if settings.mode == "code":
        source, filename = encode(settings.target), "<string>"
    else:
        try:
            with open(settings.target, "rb") as file:
                source = file.read()
        except OSError as error:
            fail(str(error))
        filename = settings.target
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        fail("Only valid Python files or commands can be executed under memray")


def warn_about_exec_started_workers():
    """Says once on stderr when multiprocessing starts its workers through a
    new interpreter (the forkserver, Python 3.14's default on Linux, or
    spawn): `--follow-fork` tracks forked processes only. An audit hook sees
    it without changing what the program does."""
    warned = []

    def hook(event, args):
        if event != "_posixsubprocess.fork_exec" or warned:
            return
        command = " ".join(map(str, args[1] or ()))
        if "multiprocessing.forkserver" in command or "--multiprocessing-fork" in command:
            warned.append(True)
            sys.stderr.write(
                "memray: multiprocessing's forkserver and spawn workers are not tracked "
                "(they are started with exec); call "
                'multiprocessing.set_start_method("fork") to track them with --follow-fork\n'
            )

    sys.addaudithook(hook)


def prepare(settings):
    """Everything before the program runs; returns the pid that owns the capture."""
    import os

    close_own_descriptor(settings.script)
    unpreload(settings.library)
    if settings.flags & FOLLOW_FORK:
        warn_about_exec_started_workers()
    return os.getpid()


# The program runs from this module's own frame (and runpy's two for -m):
# `skipped_frames` below counts them.
if __name__ == "__main__":
    _settings = Settings(sys.argv)
    _pid = prepare(_settings)
    if _settings.mode == "module":
        announce(_settings)
        sys.argv = ["-m", *_settings.program_args]
        if adds_path_entry():
            sys.path[0] = __import__("os").getcwd()
        fresh_main()
        _tracker = activate(_settings, skipped_frames=3)
        try:
            run_module(_settings.target)
        except ImportError as _error:
            if _error.name not in (None, _settings.target):
                _error.__traceback__ = _error.__traceback__.tb_next.tb_next
                deactivate(_settings, _tracker, _pid)
                raise
            # Like memray: the module itself could not be imported.
            deactivate(_settings, _tracker, _pid, report=False)
            fail("memray: %s" % _error)
        except BaseException as _error:
            _error.__traceback__ = _error.__traceback__.tb_next.tb_next
            deactivate(_settings, _tracker, _pid)
            raise
        deactivate(_settings, _tracker, _pid)
    else:
        _code = compile_program(_settings)
        announce(_settings)
        if _settings.mode == "code":
            sys.argv = ["-c", *_settings.program_args]
            _path_entry = ""
            _main = fresh_main(__cached__=None, __spec__=None)
        else:
            import os

            sys.argv = [_settings.target, *_settings.program_args]
            _path_entry = os.path.dirname(os.path.realpath(_settings.target))
            _main = fresh_main(__file__=_settings.target, __cached__=None, __spec__=None)
        if adds_path_entry():
            sys.path[0] = _path_entry
        _tracker = activate(_settings, skipped_frames=1)
        try:
            exec(_code, _main.__dict__)
        except BaseException as _error:
            _error.__traceback__ = _error.__traceback__.tb_next
            deactivate(_settings, _tracker, _pid)
            raise
        deactivate(_settings, _tracker, _pid)
