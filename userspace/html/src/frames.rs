//! memray's rules for the flame graph's two frame toggles: "uninteresting"
//! frames (CPython's call machinery, the runpy bootstrap) and frames of the
//! import system.

use crate::builder::StackFrame;

/// CPython symbols that only forward calls.
const CALL_FORWARDERS: &[&str] = &[
    "PyObject_Call",
    "call_function",
    "classmethoddescr_call",
    "cmpwrapper_call",
    "do_call_core",
    "fast_function",
    "function_call",
    "function_code_fastcall",
    "instance_call",
    "instancemethod_call",
    "methoddescr_call",
    "proxy_call",
    "slot_tp_call",
    "trace_call_function",
    "type_call",
    "weakref_call",
    "wrap_call",
    "wrapper_call",
    "wrapperdescr_call",
];

/// C functions of the interpreter's import statement.
const IMPORT_OPCODES: &[&str] = &["import_name", "import_from", "import_all_from"];

impl<'a> StackFrame<'a> {
    /// A frame flagged by memray's rules.
    pub fn classified(function: &'a str, filename: &'a str, lineno: u32) -> Self {
        StackFrame {
            function,
            filename,
            lineno,
            interesting: is_interesting(function, filename),
            import_system: is_import_system(function, filename),
        }
    }
}

/// False for the runpy bootstrap and for CPython's own call machinery.
pub fn is_interesting(function: &str, filename: &str) -> bool {
    let runpy = filename.ends_with("runpy.py") || filename == "<frozen runpy>";
    !runpy && !is_cpython_call_machinery(function, filename)
}

/// True for importlib's frames and the interpreter's import opcodes.
pub fn is_import_system(function: &str, filename: &str) -> bool {
    filename.contains("frozen importlib")
        || (IMPORT_OPCODES.contains(&function) && filename.ends_with("ceval.c"))
}

fn is_cpython_call_machinery(function: &str, filename: &str) -> bool {
    let forwarder = function.contains("PyEval_EvalFrame")
        || function.starts_with("PyEval")
        || function.starts_with("_Py")
        || function.to_lowercase().contains("vectorcall")
        || CALL_FORWARDERS.contains(&function)
        || filename.contains("Objects/call.c");
    forwarder && is_cpython_source(filename)
}

/// A C source or header of CPython itself (by its source tree layout).
fn is_cpython_source(filename: &str) -> bool {
    let c_file = filename.ends_with(".c") || filename.ends_with(".h");
    let cpython_dir = ["Include", "Objects", "Modules", "Python", "cpython"]
        .iter()
        .any(|dir| filename.contains(dir));
    c_file && cpython_dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_machinery_and_runpy_are_uninteresting() {
        assert!(!is_interesting(
            "_PyEval_EvalFrameDefault",
            "Python/ceval.c"
        ));
        assert!(!is_interesting(
            "_PyObject_Vectorcall",
            "Include/cpython/abstract.h"
        ));
        assert!(!is_interesting("type_call", "Objects/typeobject.c"));
        assert!(!is_interesting("_run_code", "/usr/lib/python3.9/runpy.py"));
        assert!(!is_interesting("_run_module_as_main", "<frozen runpy>"));
    }

    #[test]
    fn user_code_and_other_native_code_are_interesting() {
        assert!(is_interesting("main", "app.py"));
        assert!(is_interesting("PyList_New", "Objects/listobject.c"));
        // Same symbol outside CPython's tree: someone else's code.
        assert!(is_interesting("_PyHelper", "mylib/helper.c"));
    }

    #[test]
    fn import_system_frames() {
        assert!(is_import_system(
            "_find_and_load",
            "<frozen importlib._bootstrap>"
        ));
        assert!(is_import_system(
            "exec_module",
            "<frozen importlib._bootstrap_external>"
        ));
        assert!(is_import_system("import_name", "Python/ceval.c"));
        assert!(!is_import_system("import_name", "app.py"));
        let frame = StackFrame::classified(
            "_call_with_frames_removed",
            "<frozen importlib._bootstrap>",
            241,
        );
        assert!(frame.import_system && frame.interesting);
    }
}
