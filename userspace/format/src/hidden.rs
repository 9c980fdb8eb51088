//! The frames memray's reports hide or flag, copied from memray 1.20's
//! `reporters/frame_tools.py` (`_is_cpython_internal_symbol`, `is_frame_interesting`,
//! `is_frame_from_import_system`).

/// From memray 1.20's `SYMBOL_IGNORELIST`.
const SYMBOL_IGNORELIST: &[&str] = &[
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

const VECTORCALL: &[u8] = b"vectorcall";

/// A CPython-internal frame (memray hides them unless asked): a candidate symbol whose
/// file is in CPython's sources, so hiding needs debug information.
pub fn is_cpython_internal(symbol: &str, file: &str) -> bool {
    let is_candidate = symbol.contains("PyEval_EvalFrameEx")
        || symbol.contains("_PyEval_EvalFrameDefault")
        || (symbol.starts_with("_TAIL_CALL_") && symbol.contains(".llvm."))
        || symbol.starts_with("PyEval")
        || symbol.starts_with("_Py")
        // `lower()` in memray; no other character lowercases to these letters.
        || symbol
            .as_bytes()
            .windows(VECTORCALL.len())
            .any(|window| window.eq_ignore_ascii_case(VECTORCALL))
        || SYMBOL_IGNORELIST.contains(&symbol)
        || file.contains("Objects/call.c");
    is_candidate && matches_cpython_paths(file)
}

/// memray's `re.search(r"(Include|Objects|Modules|Python|cpython).*\.[c|h]$", file)`: one
/// of the words, then anything but a newline, then a dot and `c`, `|` or `h` at the end
/// (or before a final newline, as `$` allows).
fn matches_cpython_paths(file: &str) -> bool {
    let file = file.strip_suffix('\n').unwrap_or(file);
    let Some(dot) = file.len().checked_sub(2) else {
        return false;
    };
    if !(file[dot..].starts_with('.') && matches!(&file[dot + 1..], "c" | "|" | "h")) {
        return false;
    }
    let line = &file[file[..dot].rfind('\n').map_or(0, |newline| newline + 1)..dot];
    ["Include", "Objects", "Modules", "Python", "cpython"]
        .iter()
        .any(|word| line.contains(word))
}

/// memray's `is_frame_interesting`: not `runpy`'s, not CPython-internal.
pub fn is_frame_interesting(symbol: &str, file: &str) -> bool {
    let is_runpy = file.ends_with("runpy.py") || file == "<frozen runpy>";
    !(is_runpy || is_cpython_internal(symbol, file))
}

/// memray's `is_frame_from_import_system`.
pub fn is_frame_from_import_system(symbol: &str, file: &str) -> bool {
    file.contains("frozen importlib")
        || (matches!(symbol, "import_name" | "import_from" | "import_all_from")
            && file.ends_with("ceval.c"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_hidden_only_in_cpython_sources() {
        for symbol in [
            "_PyEval_EvalFrameDefault",
            "PyEval_EvalFrameEx",
            "PyEval_EvalCode",
            "_PyObject_MakeTpCall",
            "_TAIL_CALL_LOAD_ATTR.llvm.123",
            "method_vectorcall_O",
            "PyVectorcall_Call",
            "PyObject_Call",
            "wrapper_call",
        ] {
            assert!(is_cpython_internal(symbol, "Python/ceval.c"), "{symbol}");
            assert!(
                is_cpython_internal(symbol, "/src/cpython/Include/x.h"),
                "{symbol}"
            );
            assert!(!is_cpython_internal(symbol, "<unknown>"), "{symbol}");
            assert!(!is_cpython_internal(symbol, "ext/module.cpp"), "{symbol}");
        }
        assert!(is_cpython_internal("anything", "/usr/src/Objects/call.c"));
    }

    #[test]
    fn other_symbols_are_never_hidden() {
        for symbol in [
            "PyList_Append",
            "_TAIL_CALL_LOAD_ATTR",
            "malloc",
            "call_functions",
            "my_function",
        ] {
            assert!(!is_cpython_internal(symbol, "Python/ceval.c"), "{symbol}");
        }
    }

    #[test]
    fn path_pattern_is_memrays_regex() {
        // `[c|h]` is a character class: `|` counts too, `.cpp` and `.hh` do not.
        assert!(matches_cpython_paths("Python/ceval.|"));
        assert!(matches_cpython_paths("Modules/x.c\n"));
        assert!(matches_cpython_paths("a/Objects.c"));
        assert!(!matches_cpython_paths("Objects/x.cpp"));
        assert!(!matches_cpython_paths("Objects/x.hh"));
        assert!(!matches_cpython_paths("Objects\n/x.c"));
        assert!(!matches_cpython_paths("Object/x.c"));
        assert!(!matches_cpython_paths("x.c/Python"));
        assert!(!matches_cpython_paths(".c"));
    }

    #[test]
    fn runpy_and_import_system() {
        assert!(!is_frame_interesting(
            "_run_code",
            "/usr/lib/python3.11/runpy.py"
        ));
        assert!(!is_frame_interesting("_run_code", "<frozen runpy>"));
        assert!(!is_frame_interesting(
            "_PyEval_EvalFrameDefault",
            "Python/ceval.c"
        ));
        assert!(is_frame_interesting("main", "script.py"));
        assert!(is_frame_from_import_system(
            "_find_and_load",
            "<frozen importlib._bootstrap>"
        ));
        assert!(is_frame_from_import_system("import_name", "Python/ceval.c"));
        assert!(!is_frame_from_import_system(
            "import_name",
            "Python/other.c"
        ));
        assert!(!is_frame_from_import_system("main", "script.py"));
    }

    #[test]
    fn the_flame_graphs_toggles_follow_the_same_rules() {
        // The cases html's own copy of these rules was tested with.
        assert!(!is_frame_interesting(
            "_PyObject_Vectorcall",
            "Include/cpython/abstract.h"
        ));
        assert!(!is_frame_interesting("type_call", "Objects/typeobject.c"));
        assert!(!is_frame_interesting(
            "_run_module_as_main",
            "<frozen runpy>"
        ));
        assert!(is_frame_interesting("PyList_New", "Objects/listobject.c"));
        // Same symbol outside CPython's tree: someone else's code.
        assert!(is_frame_interesting("_PyHelper", "mylib/helper.c"));
        assert!(is_frame_from_import_system(
            "exec_module",
            "<frozen importlib._bootstrap_external>"
        ));
        assert!(!is_frame_from_import_system("import_name", "app.py"));
        assert!(is_frame_interesting(
            "_call_with_frames_removed",
            "<frozen importlib._bootstrap>"
        ));
    }
}
