//! The thread names of an eBPF capture, from memray's two sources: the
//! thread's `threading.Thread.name`, read from the process, and the name
//! given with `prctl(PR_SET_NAME)`, seen as the kernel's `comm` once it
//! differs from the one the thread inherited. Both are looked at when a
//! thread first records and every `REFRESH`: a rename applies from the next
//! look on, and the name that changed last wins, as in memray's hooks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use python_frames::{PythonProcess, ThreadNameReader};

/// How often renames are looked for (a read of `threading`'s names costs
/// ~35 µs, a thread's `comm` ~3 µs).
const REFRESH: Duration = Duration::from_millis(100);

pub(crate) struct ThreadNames {
    process: PythonProcess,
    reader: ThreadNameReader,
    /// The process's `comm` when its capture began: what threads inherit.
    inherited: Option<Vec<u8>>,
    /// `threading`'s names by tid, as last read (kept after a thread ends:
    /// its records may still be on their way).
    python: HashMap<u32, String>,
    python_read_at: Option<Instant>,
    renames_read_at: Option<Instant>,
    /// What each recorded thread was last seen named, by tid.
    seen: HashMap<u32, Seen>,
}

#[derive(Default)]
struct Seen {
    python: Option<String>,
    comm: Option<Vec<u8>>,
    /// Its `comm` could not be read: it has ended.
    ended: bool,
    /// When the records of its first look and of its latest were taken in.
    first_look: Option<Instant>,
    last_look: Option<Instant>,
}

impl ThreadNames {
    pub fn new(process: &PythonProcess) -> ThreadNames {
        let pid = process.pid() as u32;
        ThreadNames {
            process: process.clone(),
            reader: ThreadNameReader::new(),
            inherited: comm(pid, pid),
            python: HashMap::new(),
            python_read_at: None,
            renames_read_at: None,
            seen: HashMap::new(),
        }
    }

    /// The name of thread `tid`, which records in records taken in at
    /// `taken_at`, if it is to be recorded now. A thread without a Python
    /// name yet is looked at in each batch of its first `REFRESH` (its first
    /// records, made by the interpreter as the thread starts, may precede
    /// its entry in `threading._active`); after that, only [`ThreadNames::renamed`]
    /// looks. `threading`'s names are read again unless read since: the
    /// thread was in `threading._active` by then if it allocated from its
    /// Python code.
    pub fn look(&mut self, tid: u32, taken_at: Instant) -> Option<Vec<u8>> {
        if self
            .seen
            .get(&tid)
            .is_some_and(|seen| seen.settled(taken_at) || seen.last_look == Some(taken_at))
        {
            return None;
        }
        let stale = self.python_read_at.is_none_or(|at| at < taken_at);
        if stale && !self.python.contains_key(&tid) {
            self.read_python();
        }
        let name = self.changed(tid);
        let seen = self.seen.entry(tid).or_default();
        seen.first_look.get_or_insert(taken_at);
        seen.last_look = Some(taken_at);
        name
    }

    /// The recorded threads whose name changed since it was recorded, with
    /// their new name; nothing until `REFRESH` has passed since the last look.
    pub fn renamed(&mut self) -> Vec<(u32, Vec<u8>)> {
        let now = Instant::now();
        if self.renames_read_at.is_some_and(|at| now - at < REFRESH) {
            return Vec::new();
        }
        self.renames_read_at = Some(now);
        self.read_python();
        let tids: Vec<u32> = self
            .seen
            .iter()
            .filter(|(_, seen)| !seen.ended)
            .map(|(&tid, _)| tid)
            .collect();
        tids.into_iter()
            .filter_map(|tid| Some((tid, self.changed(tid)?)))
            .collect()
    }

    /// Reads `threading`'s names again into `python`.
    fn read_python(&mut self) {
        self.python_read_at = Some(Instant::now());
        let names = self.reader.read(&self.process);
        self.python.extend(names);
    }

    /// Thread `tid`'s name if it changed since last asked.
    fn changed(&mut self, tid: u32) -> Option<Vec<u8>> {
        let pid = self.process.pid() as u32;
        let python = self.python.get(&tid).cloned();
        let comm = comm(pid, tid);
        let seen = self.seen.entry(tid).or_default();
        seen.ended = comm.is_none();
        seen.look(python, comm, self.inherited.as_deref())
    }
}

impl Seen {
    /// Whether looks for records taken in at `taken_at` can wait for
    /// [`ThreadNames::renamed`]: once `threading` named the thread, or
    /// `REFRESH` after its first look. A `comm` alone does not settle it: on
    /// CPython 3.14 it may be the copy of the Python name to come, set before
    /// the thread is in `threading._active`.
    fn settled(&self, taken_at: Instant) -> bool {
        let first = self.first_look.unwrap_or(taken_at);
        self.python.is_some() || taken_at.saturating_duration_since(first) > REFRESH
    }

    /// What a look at the thread's names now (`python`, `comm`; `None`
    /// when not there to read) says to record, if anything: a new Python
    /// name, else a new `comm` that is neither the one threads inherit nor
    /// CPython 3.14's copy of the Python name (cut to 15 bytes).
    fn look(
        &mut self,
        python: Option<String>,
        comm: Option<Vec<u8>>,
        inherited: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        let python_changed = python.is_some() && python != self.python;
        let comm_changed = comm.is_some() && comm != self.comm;
        if python.is_some() {
            self.python.clone_from(&python);
        }
        if comm.is_some() {
            self.comm.clone_from(&comm);
        }
        if python_changed {
            return python.map(String::into_bytes);
        }
        let comm = comm.filter(|_| comm_changed)?;
        let mirrors_python = self
            .python
            .as_ref()
            .is_some_and(|name| name.as_bytes().starts_with(&comm));
        (inherited != Some(comm.as_slice()) && !mirrors_python).then_some(comm)
    }
}

/// The thread's name as the kernel knows it (`comm`, without the newline).
fn comm(tgid: u32, tid: u32) -> Option<Vec<u8>> {
    let mut name = std::fs::read(format!("/proc/{tgid}/task/{tid}/comm")).ok()?;
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INHERITED: Option<&[u8]> = Some(b"python3.12");

    fn look(seen: &mut Seen, python: Option<&str>, comm: &str) -> Option<String> {
        seen.look(python.map(str::to_string), Some(comm.into()), INHERITED)
            .map(|name| String::from_utf8(name).unwrap())
    }

    #[test]
    fn a_thread_is_named_by_python_then_by_whichever_name_changes() {
        let mut seen = Seen::default();
        // Not known to `threading` yet, its comm inherited: no name.
        assert_eq!(look(&mut seen, None, "python3.12"), None);
        assert_eq!(
            look(&mut seen, Some("worker"), "python3.12"),
            Some("worker".into())
        );
        assert_eq!(look(&mut seen, Some("worker"), "python3.12"), None);
        assert_eq!(
            look(&mut seen, Some("renamed"), "python3.12"),
            Some("renamed".into())
        );
        // prctl(PR_SET_NAME) after it: the newer name.
        assert_eq!(
            look(&mut seen, Some("renamed"), "by prctl"),
            Some("by prctl".into())
        );
        assert_eq!(look(&mut seen, Some("renamed"), "by prctl"), None);
        // Then Python again.
        assert_eq!(
            look(&mut seen, Some("last"), "by prctl"),
            Some("last".into())
        );
    }

    #[test]
    fn a_thread_named_by_comm_alone_is_looked_at_again_until_python_names_it() {
        let start = Instant::now();
        let mut seen = Seen {
            first_look: Some(start),
            ..Seen::default()
        };
        // 3.14 copied the name into comm before `threading` knew the thread.
        assert_eq!(
            look(&mut seen, None, "set before star"),
            Some("set before star".into())
        );
        assert!(!seen.settled(start + REFRESH / 2));
        assert_eq!(
            look(&mut seen, Some("set before start"), "set before star"),
            Some("set before start".into())
        );
        assert!(seen.settled(start + REFRESH / 2));
        // A thread Python never names settles after REFRESH.
        let unnamed = Seen {
            first_look: Some(start),
            ..Seen::default()
        };
        assert!(!unnamed.settled(start + REFRESH / 2));
        assert!(unnamed.settled(start + REFRESH * 2));
    }

    #[test]
    fn a_prctl_name_alone_names_a_thread_python_does_not_know() {
        let mut seen = Seen::default();
        assert_eq!(look(&mut seen, None, "io-worker"), Some("io-worker".into()));
    }

    #[test]
    fn cpython_3_14s_copy_of_the_name_into_comm_is_not_a_rename() {
        let mut seen = Seen::default();
        let long = "a thread with a long name";
        assert_eq!(look(&mut seen, Some(long), "python3.12"), Some(long.into()));
        // 3.14 copies the name into comm, cut to 15 bytes.
        assert_eq!(look(&mut seen, Some(long), &long[..15]), None);
    }
}
