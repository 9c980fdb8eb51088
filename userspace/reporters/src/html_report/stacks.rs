//! Stacks as memray's flame graph lays them out: outermost frame first,
//! cut at memray's depth limit, with the import-system flag inherited by
//! everything an import runs.

use memray_analysis::{Frame, StackResolver};
use memray_format::{is_cpython_internal, is_frame_from_import_system, is_frame_interesting};
use memray_html::StackFrame;

/// memray's `MAX_STACKS`: the default recursion limit (1000) / 2.5.
pub const MAX_STACK_DEPTH: usize = 400;
/// The name memray gives the frame where a too-deep stack is cut.
pub const STACK_TOO_DEEP: &str = "<STACK TOO DEEP>";

/// memray's `format_thread_name`: "0x1 (MainThread)", or "0x2" when unnamed.
pub fn thread_label(stacks: &dyn StackResolver, tid: u64) -> String {
    match stacks.thread_name(tid) {
        Some(name) if !name.is_empty() => format!("{tid:#x} ({name})"),
        _ => format!("{tid:#x}"),
    }
}

/// `stack` (innermost frame first, as a [`StackResolver`] gives it) as the
/// flame graph's path from the root. Like memray, a frame is interesting
/// unless it is call machinery, the runpy bootstrap or the import system;
/// once a frame belongs to the import system, so do all frames below it.
/// CPython's own frames (of hybrid stacks) are left out, and the frame at
/// depth `MAX_STACK_DEPTH + 1` of those kept becomes [`STACK_TOO_DEEP`] and
/// ends the path.
pub fn flame_path(stack: &[Frame]) -> Vec<StackFrame<'_>> {
    let mut inside_import = false;
    let mut path: Vec<StackFrame<'_>> = stack
        .iter()
        .rev()
        .filter(|frame| !is_cpython_internal(&frame.function, &frame.filename))
        .take(MAX_STACK_DEPTH + 2)
        .map(|frame| {
            let (function, filename) = (&*frame.function, &*frame.filename);
            let import_frame = is_frame_from_import_system(function, filename);
            inside_import |= import_frame;
            StackFrame {
                function,
                filename,
                lineno: frame.lineno,
                interesting: is_frame_interesting(function, filename) && !import_frame,
                import_system: inside_import,
            }
        })
        .collect();
    if path.len() > MAX_STACK_DEPTH + 1 {
        let cut = path.last_mut().expect("the path is not empty");
        cut.function = STACK_TOO_DEEP;
        cut.filename = "...";
        cut.lineno = 0;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_first(frames: &[(&str, &str)]) -> Vec<Frame> {
        frames
            .iter()
            .rev()
            .enumerate()
            .map(|(line, (function, file))| Frame::new(function, file, line as i32 + 1))
            .collect()
    }

    #[test]
    fn paths_start_at_the_outermost_frame() {
        let stack = leaf_first(&[("main", "app.py"), ("load", "app.py")]);
        let path = flame_path(&stack);
        let names: Vec<&str> = path.iter().map(|f| f.function).collect();
        assert_eq!(names, ["main", "load"]);
        assert!(path.iter().all(|f| f.interesting && !f.import_system));
    }

    #[test]
    fn frames_run_by_an_import_belong_to_the_import_system() {
        let stack = leaf_first(&[
            ("<module>", "app.py"),
            ("_find_and_load", "<frozen importlib._bootstrap>"),
            ("<module>", "lib.py"),
        ]);
        let path = flame_path(&stack);
        assert!(!path[0].import_system);
        assert!(path[1].import_system && !path[1].interesting);
        assert!(path[2].import_system && path[2].interesting);
    }

    #[test]
    fn runpy_frames_are_uninteresting() {
        let stack = leaf_first(&[("_run_code", "/usr/lib/python3.11/runpy.py")]);
        assert!(!flame_path(&stack)[0].interesting);
    }

    #[test]
    fn deep_stacks_end_in_a_marker() {
        let names: Vec<String> = (0..1000).map(|i| format!("f{i}")).collect();
        let frames: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "deep.py")).collect();
        let deep = leaf_first(&frames);
        let path = flame_path(&deep);
        assert_eq!(path.len(), MAX_STACK_DEPTH + 2);
        assert_eq!(path[MAX_STACK_DEPTH].function, "f400");
        let cut = path.last().unwrap();
        assert_eq!(
            (cut.function, cut.filename, cut.lineno),
            (STACK_TOO_DEEP, "...", 0)
        );

        let shallow = leaf_first(&frames[..MAX_STACK_DEPTH + 1]);
        let path = flame_path(&shallow);
        assert_eq!(path.len(), MAX_STACK_DEPTH + 1);
        assert!(path.iter().all(|f| f.function != STACK_TOO_DEEP));
    }
}
