# The bootstrap `memray run` starts with `python -c`: it sets up sys.argv,
# sys.path[0] and __main__ like `python file.py`, `python -m module` or
# `python -c code`, activates the preloaded tracker and runs the program.
# Its own frame (and runpy's, for -m) are hidden from the captured stacks.
import sys

(_library, _output, _flags, _mode, _quiet, _memray, _command_line, _target), _program_args = (
    sys.argv[1:9],
    sys.argv[9:],
)
_flags = int(_flags)
_quiet = _quiet == "1"


def _fail(message):
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    import os

    os._exit(1)


def _unpreload():
    # Programs the user starts (subprocess, exec) must not be tracked.
    import os

    kept = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p and p != _library]
    if kept:
        os.environ["LD_PRELOAD"] = ":".join(kept)
    else:
        os.environ.pop("LD_PRELOAD", None)


def _fresh_main(**attributes):
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__dict__.update(__builtins__=builtins, **attributes)
    sys.modules["__main__"] = main
    return main


def _python_allocator():
    import os

    try:
        import ctypes

        name = ctypes.pythonapi._PyMem_GetCurrentAllocatorName
        name.restype = ctypes.c_char_p
        return name().decode()
    except (AttributeError, OSError, ValueError):
        return os.environ.get("PYTHONMALLOC", "pymalloc") or "pymalloc"


def _strings(values):
    return b"".join(v.encode("utf-8", "surrogateescape") + b"\0" for v in values) + b"\0"


def _activate(skipped_frames):
    import ctypes
    import sysconfig

    import site

    tracker = ctypes.PyDLL(_library)
    _name_threads(tracker)
    tracker.memray_tracker_activate.restype = ctypes.c_int
    tracker.memray_tracker_last_error.restype = ctypes.c_char_p
    site_packages = site.getsitepackages() if hasattr(site, "getsitepackages") else []
    rc = tracker.memray_tracker_activate(
        _output.encode("utf-8", "surrogateescape"),
        ctypes.c_uint32(_flags),
        ctypes.c_uint32(sys.hexversion),
        _python_allocator().encode(),
        ctypes.c_uint64(skipped_frames),
        _command_line.encode("utf-8", "surrogateescape"),
        (sysconfig.get_paths().get("stdlib") or "").encode("utf-8", "surrogateescape"),
        _strings(site_packages),
        _strings(sys.path),
    )
    if rc != 0:
        _fail(tracker.memray_tracker_last_error().decode("utf-8", "replace"))
    return tracker


def _name_threads(tracker):
    # Like memray: whenever a Thread has both a name and an ident, tell the tracker.
    import ctypes
    import threading

    tracker.memray_tracker_set_thread_name.argtypes = [ctypes.c_ulong, ctypes.c_char_p]

    class _Intercept:
        def __init__(self, attribute):
            self.attribute = attribute

        def __set__(self, thread, value):
            thread.__dict__[self.attribute] = value
            ident = thread.__dict__.get("_ident")
            name = thread.__dict__.get("_name")
            if ident is not None and name is not None:
                tracker.memray_tracker_set_thread_name(ident, str(name).encode("utf-8", "replace"))

    threading.Thread._name = _Intercept("_name")
    threading.Thread._ident = _Intercept("_ident")


def _deactivate(tracker, pid, report=True):
    import os

    tracker.memray_tracker_deactivate()
    if report and not _quiet and pid == os.getpid():
        print(
            "[memray] Successfully generated profile results.\n\n"
            "You can now generate reports from the stored allocation records.\n"
            "Some example commands to generate reports:\n\n"
            "%s flamegraph %s" % (_memray, _output)
        )


def _run_module():
    # runpy's `python -m` path, minus its own "No module named" exit, so that
    # a module that cannot be found is reported the way memray reports it.
    import runpy

    _, spec, code = runpy._get_module_details(_target)
    sys.argv[0] = spec.origin
    runpy._run_code(code, sys.modules["__main__"].__dict__, None, "__main__", spec)


def _announce():
    if not _quiet:
        print("Writing profile results into %s" % _output)


def _compile_program():
    import os

    if _mode == "code":
        source, filename = _target.encode("utf-8", "surrogateescape"), "<string>"
    else:
        try:
            with open(_target, "rb") as file:
                source = file.read()
        except OSError as error:
            _fail(str(error))
        filename = _target
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        _fail("Only valid Python files or commands can be executed under memray")


_pid = __import__("os").getpid()
_unpreload()
if _mode == "module":
    _announce()
    sys.argv = ["-m", *_program_args]
    sys.path[0] = __import__("os").getcwd()
    _fresh_main()
    _tracker = _activate(skipped_frames=3)
    try:
        _run_module()
    except ImportError as _error:
        if _error.name not in (None, _target):
            _error.__traceback__ = _error.__traceback__.tb_next.tb_next
            _deactivate(_tracker, _pid)
            raise
        # Like memray: the module itself could not be imported.
        _deactivate(_tracker, _pid, report=False)
        _fail("memray: %s" % _error)
    except BaseException as _error:
        _error.__traceback__ = _error.__traceback__.tb_next.tb_next
        _deactivate(_tracker, _pid)
        raise
    _deactivate(_tracker, _pid)
else:
    _code = _compile_program()
    _announce()
    if _mode == "code":
        sys.argv = ["-c", *_program_args]
        sys.path[0] = ""
        _main = _fresh_main(__cached__=None, __spec__=None)
    else:
        import os

        sys.argv = [_target, *_program_args]
        sys.path[0] = os.path.dirname(os.path.realpath(_target))
        _main = _fresh_main(__file__=_target, __cached__=None, __spec__=None)
    _tracker = _activate(skipped_frames=1)
    try:
        exec(_code, _main.__dict__)
    except BaseException as _error:
        _error.__traceback__ = _error.__traceback__.tb_next
        _deactivate(_tracker, _pid)
        raise
    _deactivate(_tracker, _pid)
