//! memray 1.20's `hybrid_stack_trace` (`_memray.pyx`): a native stack and a Python stack
//! merged into one.

/// A frame of a hybrid stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HybridFrame<N, P> {
    Native(N),
    Python(P),
}

/// memray's test for a native frame that runs Python frames: the eval loop, or one of 3.14's
/// tail-call interpreter functions.
pub fn is_eval_frame_symbol(symbol: &str) -> bool {
    symbol.contains("_PyEval_EvalFrameDefault") || symbol.starts_with("_TAIL_CALL_")
}

/// Merges `native` (resolved and inline-expanded, innermost first, with `symbol_of` giving
/// each frame's function) with `python` (innermost first; `is_entry[i]` is frame `i`'s entry
/// bit), innermost first, as memray does.
///
/// Walking the native frames outermost first, each eval-loop frame is replaced by the
/// outermost Python frames not placed yet: one, then the next ones inwards until the next
/// entry frame. When `skip_outermost_python` is not 0 (the main thread: the frames memray
/// ran before the user's code), everything outside the first Python frame kept is dropped.
/// If Python frames remain unplaced (the eval loop was not recognised, as in a stripped
/// interpreter) the Python stack alone is returned; memray does that too, and we also do it
/// where memray fails an assertion (more Python frames placed than it made room for).
pub fn hybrid_stack<N: Clone, P: Clone>(
    native: &[N],
    symbol_of: impl Fn(&N) -> &str,
    python: &[P],
    is_entry: &[bool],
    skip_outermost_python: usize,
) -> Vec<HybridFrame<N, P>> {
    let python_only = || python.iter().cloned().map(HybridFrame::Python).collect();
    let non_entry = is_entry.iter().filter(|&&entry| !entry).count();
    // Filled from the end (outermost) inwards; entry frames take the place of eval-loop
    // frames, the other Python frames are inserted.
    let mut hybrid: Vec<Option<HybridFrame<N, P>>> = vec![None; native.len() + non_entry];
    let mut next_python = python.len().checked_sub(1);
    let mut next_slot = hybrid.len().checked_sub(1);
    let first_kept = python.len() as isize - 1 - skip_outermost_python as isize;
    for frame in native.iter().rev() {
        match next_python {
            Some(mut python_index) if is_eval_frame_symbol(symbol_of(frame)) => loop {
                if skip_outermost_python != 0 && python_index as isize == first_kept {
                    hybrid.truncate(next_slot.map_or(0, |slot| slot + 1));
                }
                let Some(slot) = next_slot else {
                    return python_only();
                };
                hybrid[slot] = Some(HybridFrame::Python(python[python_index].clone()));
                next_slot = slot.checked_sub(1);
                next_python = python_index.checked_sub(1);
                match next_python {
                    Some(index) if !is_entry.get(index).copied().unwrap_or(true) => {
                        python_index = index
                    }
                    _ => break,
                }
            },
            _ => {
                let Some(slot) = next_slot else {
                    return python_only();
                };
                hybrid[slot] = Some(HybridFrame::Native(frame.clone()));
                next_slot = slot.checked_sub(1);
            }
        }
    }
    if next_python.is_some() || next_slot.is_some() {
        return python_only();
    }
    hybrid.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Frame = HybridFrame<&'static str, &'static str>;

    fn merge(native: &[&'static str], python: &[(&'static str, bool)], skip: usize) -> Vec<Frame> {
        let frames: Vec<_> = python.iter().map(|&(name, _)| name).collect();
        let entries: Vec<_> = python.iter().map(|&(_, entry)| entry).collect();
        hybrid_stack(native, |symbol| symbol, &frames, &entries, skip)
    }

    use HybridFrame::{Native as N, Python as P};

    #[test]
    fn each_eval_loop_runs_its_entry_frame_and_the_frames_it_calls() {
        // 3.11+: `main` is an entry frame whose eval loop also runs `helper` and `work`;
        // `callback` is entered again from C (`PyObject_Call`).
        let native = [
            "malloc_caller",
            "_PyEval_EvalFrameDefault",
            "PyObject_Call",
            "ext_function",
            "_PyEval_EvalFrameDefault",
            "Py_RunMain",
            "main",
        ];
        let python = [
            ("callback", true),
            ("work", false),
            ("helper", false),
            ("main", true),
        ];
        assert_eq!(
            merge(&native, &python, 0),
            vec![
                N("malloc_caller"),
                P("callback"),
                N("PyObject_Call"),
                N("ext_function"),
                P("work"),
                P("helper"),
                P("main"),
                N("Py_RunMain"),
                N("main"),
            ]
        );
    }

    #[test]
    fn before_311_every_frame_has_its_own_eval_loop() {
        let native = [
            "f",
            "_PyEval_EvalFrameDefault",
            "x",
            "_PyEval_EvalFrameDefault",
            "main",
        ];
        let python = [("inner", true), ("outer", true)];
        assert_eq!(
            merge(&native, &python, 0),
            vec![N("f"), P("inner"), N("x"), P("outer"), N("main")]
        );
    }

    #[test]
    fn tail_call_interpreter_frames_count_as_eval_loops() {
        let native = ["f", "_TAIL_CALL_CALL.llvm.42", "main"];
        assert_eq!(
            merge(&native, &[("g", true)], 0),
            vec![N("f"), P("g"), N("main")]
        );
    }

    #[test]
    fn eval_loops_left_over_stay_native() {
        // An eval loop that allocated before its frame was pushed.
        let native = [
            "_PyEval_EvalFrameDefault",
            "_PyEval_EvalFrameDefault",
            "main",
        ];
        assert_eq!(
            merge(&native, &[("g", true)], 0),
            vec![N("_PyEval_EvalFrameDefault"), P("g"), N("main")]
        );
    }

    #[test]
    fn python_frames_left_over_give_the_python_stack() {
        let native = ["f", "main"];
        assert_eq!(
            merge(&native, &[("g", true), ("h", true)], 0),
            vec![P("g"), P("h")]
        );
        let native = ["f", "_PyEval_EvalFrameDefault", "main"];
        assert_eq!(
            merge(&native, &[("g", true), ("h", true)], 0),
            vec![P("g"), P("h")]
        );
    }

    #[test]
    fn an_outermost_frame_without_entry_bit_gives_the_python_stack() {
        // memray fails an assertion here (no room for the frame); we fall back.
        let native = ["_PyEval_EvalFrameDefault"];
        assert_eq!(merge(&native, &[("g", false)], 0), vec![P("g")]);
    }

    #[test]
    fn main_thread_drops_what_ran_before_the_users_code() {
        // Two outermost Python frames (memray's own start-up) and the native frames around
        // them go; the frames from the first kept Python frame inwards stay.
        let native = [
            "f",
            "_PyEval_EvalFrameDefault",
            "_PyEval_EvalFrameDefault",
            "_PyEval_EvalFrameDefault",
            "Py_RunMain",
            "main",
        ];
        let python = [("user", true), ("runner", true), ("bootstrap", true)];
        assert_eq!(merge(&native, &python, 2), vec![N("f"), P("user")]);
    }

    #[test]
    fn without_python_frames_the_native_stack_is_kept() {
        let native = ["f", "_PyEval_EvalFrameDefault", "main"];
        assert_eq!(
            merge(&native, &[], 0),
            vec![N("f"), N("_PyEval_EvalFrameDefault"), N("main")]
        );
    }
}
