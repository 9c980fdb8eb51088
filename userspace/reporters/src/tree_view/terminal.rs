//! The terminal in full-screen mode for as long as a [`FullScreen`] lives:
//! raw mode and the alternate screen on entry, everything restored when it
//! drops, on errors, and (through ratatui's panic hook) on panics.

use std::io;

use ratatui::DefaultTerminal;

pub struct FullScreen {
    pub terminal: DefaultTerminal,
}

impl FullScreen {
    pub fn enter() -> io::Result<FullScreen> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(FullScreen { terminal }),
            Err(error) => {
                // Raw mode may be on even though the rest failed.
                ratatui::restore();
                Err(error)
            }
        }
    }
}

impl Drop for FullScreen {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}
