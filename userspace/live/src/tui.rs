//! The live view in the terminal: a thin shell that draws the [`View`] of
//! the latest [`Snapshot`] (at most ten times a second) and turns keys into
//! [`Action`]s.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use memray_reporters::size_fmt;
use memray_reporters::tree_view::terminal::FullScreen;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Sparkline, Table};
use ratatui::Frame;

use crate::feed::Feed;
use crate::snapshot::{End, Snapshot};
use crate::view::{Action, Row, SortBy, View};

/// Time between two redraws when no key comes.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

const FOOTER: &str =
    "q Quit  ←/→ Thread  m Merge  t Total  o Own  a Allocs  space Pause  ↑/↓ Scroll";

/// Shows the feed until the user quits.
pub fn show(feed: &Feed) -> io::Result<()> {
    let mut screen = FullScreen::enter()?;
    let mut view = View::default();
    loop {
        let latest = feed.latest();
        screen.terminal.draw(|frame| draw(frame, &view, &latest))?;
        if !event::poll(REDRAW_EVERY)? {
            continue;
        }
        // Resizes need nothing but the next redraw.
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match command(key) {
            Command::Quit => return Ok(()),
            Command::Suspend => {
                drop(screen);
                // SAFETY: raising a signal has no preconditions; SIGTSTP stops
                // us as the shell's Ctrl-Z would, and returns once continued.
                unsafe { libc::raise(libc::SIGTSTP) };
                screen = FullScreen::enter()?;
            }
            Command::View(action) => view.apply(action, &latest),
            Command::None => {}
        }
    }
}

enum Command {
    Quit,
    Suspend,
    View(Action),
    None,
}

fn command(key: KeyEvent) -> Command {
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if control => Command::Quit,
        KeyCode::Char('z') if control => Command::Suspend,
        KeyCode::Char('q') | KeyCode::Esc => Command::Quit,
        KeyCode::Char('t') => Command::View(Action::Sort(SortBy::Total)),
        KeyCode::Char('o') => Command::View(Action::Sort(SortBy::Own)),
        KeyCode::Char('a') => Command::View(Action::Sort(SortBy::Allocations)),
        KeyCode::Right | KeyCode::Char('>') => Command::View(Action::NextThread),
        KeyCode::Left | KeyCode::Char('<') => Command::View(Action::PreviousThread),
        KeyCode::Char('m') => Command::View(Action::ToggleMerge),
        KeyCode::Char(' ') => Command::View(Action::TogglePause),
        KeyCode::Up => Command::View(Action::Scroll(-1)),
        KeyCode::Down => Command::View(Action::Scroll(1)),
        KeyCode::PageUp => Command::View(Action::Scroll(-10)),
        KeyCode::PageDown => Command::View(Action::Scroll(10)),
        _ => Command::None,
    }
}

fn draw(frame: &mut Frame, view: &View, latest: &Arc<Snapshot>) {
    let snapshot = view.shown(latest);
    let [header, graph, table, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(view, snapshot, latest)), header);
    draw_graph(frame, graph, snapshot);
    draw_table(frame, table, view, snapshot);
    frame.render_widget(Paragraph::new(FOOTER), footer);
}

fn header_lines(view: &View, snapshot: &Snapshot, latest: &Snapshot) -> Vec<Line<'static>> {
    let seconds = snapshot.duration_ms / 1000;
    let thread = match view.thread_id(snapshot) {
        None if view.merged => "Threads: all, merged".to_owned(),
        None => "Threads: none yet".to_owned(),
        Some(tid) => {
            let (index, name) = snapshot
                .threads
                .iter()
                .enumerate()
                .find(|(_, (t, _))| *t == tid)
                .map(|(i, (_, name))| (i + 1, name.clone()))
                .unwrap_or((0, None));
            let name = name.map(|n| format!(": {n}")).unwrap_or_default();
            format!(
                "Thread {index} of {}{name} (tid {tid})",
                snapshot.threads.len()
            )
        }
    };
    let status = match (&latest.end, view.paused.is_some()) {
        (Some(End::Finished), _) => "Program ended: press q to quit".to_owned(),
        (Some(End::CutOff), _) => {
            "Connection closed before the program's end: press q to quit".to_owned()
        }
        (Some(End::Failed(error)), _) => format!("Reading stopped: {error}"),
        (None, true) => "PAUSED (data keeps coming: space to resume)".to_owned(),
        (None, false) => "Live".to_owned(),
    };
    vec![
        Line::from(format!(
            "PID: {}  CMD: {}",
            snapshot.pid, snapshot.command_line
        )),
        Line::from(format!(
            "Duration: {}:{:02}:{:02}  Heap: {}  Peak: {}  Allocations: {}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            size_fmt(snapshot.heap),
            size_fmt(snapshot.peak),
            snapshot.allocations
        )),
        Line::from(thread),
        Line::from(status).style(Style::new().add_modifier(Modifier::BOLD)),
    ]
}

/// The heap over time, the newest samples at the right; the whole history
/// is kept, so a wider window shows more of it.
fn draw_graph(frame: &mut Frame, area: Rect, snapshot: &Snapshot) {
    let block = Block::new().borders(Borders::TOP).title(format!(
        "Heap size (max {})",
        size_fmt(snapshot.history.iter().copied().max().unwrap_or(0))
    ));
    let width = area.width as usize;
    let shown = &snapshot.history[snapshot.history.len().saturating_sub(width)..];
    frame.render_widget(Sparkline::default().block(block).data(shown), area);
}

fn draw_table(frame: &mut Frame, area: Rect, view: &View, snapshot: &Snapshot) {
    let rows = view.rows(snapshot);
    let thread_bytes: u64 = rows.iter().map(|row| row.own).sum();
    let percent = |bytes: u64| match thread_bytes {
        0 => "0.00%".to_owned(),
        all => format!("{:.2}%", bytes as f64 * 100.0 / all as f64),
    };
    let marked = |title: &str, sort: Option<SortBy>| match sort == Some(view.sort) {
        true => Cell::from(format!("{title}▼")),
        false => Cell::from(title.to_owned()),
    };
    let header = TableRow::new([
        Cell::from("Location"),
        marked("Total", Some(SortBy::Total)),
        marked("Total%", None),
        marked("Own", Some(SortBy::Own)),
        marked("Own%", None),
        marked("Allocs", Some(SortBy::Allocations)),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED));
    let visible = area.height.saturating_sub(1) as usize;
    let scroll = view.scroll.min(rows.len().saturating_sub(visible));
    let body = rows.iter().skip(scroll).take(visible).map(|row: &Row| {
        TableRow::new([
            Cell::from(format!(
                "{} at {}:{}",
                row.location.function, row.location.file, row.location.line
            )),
            Cell::from(size_fmt(row.total)),
            Cell::from(percent(row.total)),
            Cell::from(size_fmt(row.own)),
            Cell::from(percent(row.own)),
            Cell::from(row.allocations.to_string()),
        ])
    });
    let widths = [
        Constraint::Min(20),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    frame.render_widget(Table::new(body, widths).header(header), area);
}
