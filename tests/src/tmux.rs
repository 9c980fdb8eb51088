//! A real terminal for tests of interactive output: a tmux server of the
//! test's own (its own socket), one window of a fixed size running a plain
//! shell, driven with send-keys and read with capture-pane. A test that uses
//! it first checks `skip::needs(&[Requirement::Tmux])`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long [`Terminal::wait_for`] waits for the screen to change.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Terminal {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Terminal {
    /// A `width` x `height` terminal running `sh` in `dir`, with a `$ ` prompt.
    pub fn start(width: u16, height: u16, dir: &Path) -> Terminal {
        let private = tempfile::tempdir().expect("tempdir");
        let terminal = Terminal {
            socket: private.path().join("tmux.sock"),
            _dir: private,
        };
        let (width, height) = (width.to_string(), height.to_string());
        terminal.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &width,
            "-y",
            &height,
            "-c",
            dir.to_str().expect("utf-8 path"),
            "env",
            "PS1=$ ",
            "TERM=xterm-256color",
            "sh",
        ]);
        terminal.wait_for("the shell prompt", |screen| screen.contains('$'));
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Types `line` and presses Enter.
    pub fn run(&self, line: &str) {
        self.tmux(&["send-keys", "-l", line]);
        self.keys(&["Enter"]);
    }

    /// Presses keys by tmux name (`Down`, `Enter`, `q`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The visible screen, one line per row.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Polls the screen until `ready` holds; panics with the screen if it
    /// never does.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resizes the terminal, as a user dragging the window would.
    pub fn resize(&self, width: u16, height: u16) {
        let (width, height) = (width.to_string(), height.to_string());
        self.tmux(&["resize-window", "-x", &width, "-y", &height]);
    }

    /// From now on, appends everything the terminal receives to `log`,
    /// escape sequences included: output that is drawn then erased too.
    pub fn record_output(&self, log: &Path) {
        let command = format!("cat >> '{}'", log.display());
        self.tmux(&["pipe-pane", "-o", &command]);
    }

    /// Whether the application switched to the alternate screen and is still on it.
    pub fn alternate_screen(&self) -> bool {
        self.format("#{alternate_on}") == "1"
    }

    /// Whether the cursor is visible.
    pub fn cursor_visible(&self) -> bool {
        self.format("#{cursor_flag}") == "1"
    }

    fn format(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
