//! `memray tree` when stdout is a terminal: memray's Textual tree as a
//! full-screen terminal app (ratatui), browsed with the keyboard.

mod draw;
mod modules;
pub mod outline;
mod sources;
pub mod terminal;

use std::io;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::input::Selection;
use crate::size::size_fmt;
use crate::tree::Tree;
use crate::Metadata;
use modules::ModuleNames;
use outline::Outline;
use sources::Sources;
use terminal::FullScreen;

/// What the tree is about: the summary shown above it and how its
/// locations are named.
pub struct Context {
    heading: Vec<String>,
    modules: ModuleNames,
}

impl Context {
    /// `sys_path` is the tracked process's (from the capture's header).
    pub fn new(
        results: &std::path::Path,
        metadata: &Metadata,
        selection: Selection,
        sys_path: &[String],
    ) -> Context {
        let shown = match selection {
            Selection::HighWaterMark => "at the high water mark".to_owned(),
            Selection::Leaks => "leaked".to_owned(),
            Selection::Temporary(n) => format!("temporary (threshold {n})"),
        };
        let heading = vec![
            format!(
                "{}  —  allocations {shown}, threads split",
                results.display()
            ),
            format!("Command: {}", metadata.command_line),
            format!(
                "PID: {}  Peak memory: {}  Allocation records: {}",
                metadata.pid,
                size_fmt(metadata.peak_memory),
                metadata.total_allocations
            ),
        ];
        Context {
            heading,
            modules: ModuleNames::new(sys_path),
        }
    }
}

/// Shows `tree` until the user quits. The terminal is restored however this ends.
pub fn explore(tree: &Tree, context: &Context) -> io::Result<()> {
    let mut screen = FullScreen::enter()?;
    let mut outline = Outline::new(tree);
    let mut sources = Sources::default();
    let mut page = 1;
    loop {
        screen.terminal.draw(|frame| {
            page = draw::screen(frame, &outline, context, &mut sources).max(1);
        })?;
        // Resizes need nothing but the redraw above.
        if let Event::Key(key) = event::read()? {
            if key.kind == KeyEventKind::Press && !handle(&mut outline, key, page) {
                return Ok(());
            }
        }
    }
}

/// Applies one key; false when it asks to quit.
fn handle(outline: &mut Outline<'_>, key: KeyEvent, page: usize) -> bool {
    let page = page as isize;
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => return false,
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return false,
        KeyCode::Up | KeyCode::Char('k') => outline.move_by(-1),
        KeyCode::Down | KeyCode::Char('j') => outline.move_by(1),
        KeyCode::PageUp => outline.move_by(-page),
        KeyCode::PageDown => outline.move_by(page),
        KeyCode::Home => outline.move_to_start(),
        KeyCode::End => outline.move_to_end(),
        KeyCode::Right | KeyCode::Char('l') => outline.expand_or_descend(),
        KeyCode::Left | KeyCode::Char('h') => outline.collapse_or_ascend(),
        KeyCode::Enter | KeyCode::Char(' ') => outline.toggle(),
        KeyCode::Char('e') => outline.toggle_linear_group(),
        KeyCode::Char('u') => outline.toggle_uninteresting(),
        KeyCode::Char('i') => outline.toggle_import_system(),
        _ => {}
    }
    true
}
