//! One screen of the interactive tree: the capture's summary on top, the
//! tree on the left, the selected node's details and source on the right,
//! the keys at the bottom.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::outline::{Outline, Row, Target};
use super::sources::Sources;
use super::Context;
use crate::size::size_fmt;
use crate::tree::{Elided, Tree, TreeNode};

/// Draws everything; returns the tree's visible height (for page up/down).
pub fn screen(
    frame: &mut Frame<'_>,
    outline: &Outline<'_>,
    context: &Context,
    sources: &mut Sources,
) -> usize {
    let heading = &context.heading;
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(heading.len() as u16 + 2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let summary: Vec<Line<'_>> = heading
        .iter()
        .map(|line| Line::raw(line.as_str()))
        .collect();
    frame.render_widget(
        Paragraph::new(summary).block(Block::bordered().title(" memray tree ")),
        top,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    draw_tree(frame, outline, context, left);
    draw_details(frame, outline, context, right, sources);
    frame.render_widget(Paragraph::new(keys(outline)).dim(), bottom);
    usize::from(left.height.saturating_sub(2))
}

/// The key bindings, worded for what each toggle would do now.
fn keys(outline: &Outline<'_>) -> String {
    let filters = outline.filters();
    let uninteresting = if filters.show_uninteresting {
        "hide"
    } else {
        "show"
    };
    let import_system = if filters.hide_import_system {
        "show"
    } else {
        "hide"
    };
    format!(
        " ↑/↓ move  →/← expand/collapse  enter/space toggle  e expand linear group  \
         u {uninteresting} uninteresting  i {import_system} import system  q quit"
    )
}

fn draw_tree(frame: &mut Frame<'_>, outline: &Outline<'_>, context: &Context, area: Rect) {
    let tree = outline.tree();
    let items: Vec<ListItem<'_>> = outline
        .rows()
        .iter()
        .map(|row| ListItem::new(row_line(tree, context, row)))
        .collect();
    let list = List::new(items)
        .block(Block::bordered())
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(outline.cursor()));
    frame.render_stateful_widget(list, area, &mut state);
}

/// `├── ▼ 📂 1.000MB (50.00 %) function  file.py:12`, as memray labels nodes.
fn row_line<'a>(tree: &Tree, context: &Context, row: &'a Row<'_>) -> Line<'a> {
    let marker = match (row.expandable, row.expanded) {
        (true, true) => "▼ ",
        (true, false) => "▶ ",
        (false, _) => "  ",
    };
    let mut spans = vec![
        Span::raw(row.guides.as_str()).dark_gray(),
        Span::raw(marker),
    ];
    // memray's folder is for callers (and the root), the page for frames
    // with nothing shown below them.
    let (icon, bytes) = match row.target {
        Target::Node(node) if row.expandable || node.frame.is_none() => ("📂", node.size),
        Target::Node(node) => ("📄", node.size),
        Target::Elided(elided) => ("❓", elided.bytes),
    };
    let share = tree.share(bytes);
    spans.push(Span::raw(icon));
    spans.push(Span::styled(
        format!(" {} ({share:.2} %) ", size_fmt(bytes)),
        Style::new().fg(share_color(share)),
    ));
    match row.target {
        Target::Node(TreeNode { frame: None, .. }) => spans.push(Span::raw("<ROOT>").bold()),
        Target::Node(TreeNode {
            frame: Some(frame), ..
        }) => {
            spans.push(Span::raw(frame.function.to_string()).bold());
            spans.push(
                Span::raw(format!(
                    "  {}",
                    context.modules.location(&frame.filename, frame.lineno)
                ))
                .cyan()
                .dim(),
            );
        }
        Target::Elided(elided) => spans.push(Span::raw(format!(
            "{} allocations from {} locations below the configured threshold",
            elided.allocations, elided.locations
        ))),
    }
    Line::from(spans)
}

fn draw_details(
    frame: &mut Frame<'_>,
    outline: &Outline<'_>,
    context: &Context,
    area: Rect,
    sources: &mut Sources,
) {
    let tree = outline.tree();
    let lines = match outline.selected().target {
        Target::Node(node) => node_details(tree, context, node),
        Target::Elided(elided) => elided_details(tree, elided),
    };
    let [details, source] = Layout::vertical([
        Constraint::Length(lines.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Selected ")),
        details,
    );
    if let Target::Node(TreeNode {
        frame: Some(code), ..
    }) = outline.selected().target
    {
        let height = usize::from(source.height.saturating_sub(2));
        if let Some(excerpt) = sources.around(&code.filename, code.lineno, height) {
            let lines: Vec<Line<'_>> = excerpt
                .lines
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    let lineno = excerpt.first_lineno + i;
                    let line = Line::raw(format!("{lineno:>5} {text}"));
                    if lineno as i64 == i64::from(code.lineno) {
                        line.reversed()
                    } else {
                        line
                    }
                })
                .collect();
            frame.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(" Source ")),
                source,
            );
        }
    }
}

fn node_details<'a>(tree: &Tree, context: &Context, node: &'a TreeNode) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if let Some(frame) = &node.frame {
        lines.push(field("Function", frame.function.to_string()));
        lines.push(field(
            "Location",
            context.modules.location(&frame.filename, frame.lineno),
        ));
    }
    lines.push(field("Allocations", node.n_allocations.to_string()));
    lines.push(field("Size", size_fmt(node.size)));
    lines.push(field("Share", format!("{:.2} %", tree.share(node.size))));
    if node.frame.is_some() {
        lines.push(field("Thread", node.thread.clone()));
    }
    lines
}

fn elided_details(tree: &Tree, elided: &Elided) -> Vec<Line<'static>> {
    vec![
        field("Allocations", elided.allocations.to_string()),
        field("Size", size_fmt(elided.bytes)),
        field("Share", format!("{:.2} %", tree.share(elided.bytes))),
        Line::raw(format!(
            "Only the top {} allocation locations are shown in the tree; the {} smaller ones \
             are summarized here. Rerun with a larger --biggest-allocs to see more.",
            elided.cutoff, elided.locations
        )),
    ]
}

fn field(name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!("{name}: ")).bold(),
        Span::raw(value),
    ])
}

/// memray's gradient: green for small shares, through orange, to red.
fn share_color(percent: f64) -> Color {
    const STOPS: [(f64, (f64, f64, f64)); 4] = [
        (0.0, (97.0, 193.0, 44.0)),
        (0.4, (236.0, 152.0, 16.0)),
        (0.6, (255.0, 140.0, 0.0)),
        (1.0, (205.0, 92.0, 92.0)),
    ];
    let x = (percent / 100.0).clamp(0.0, 1.0);
    let upper = STOPS
        .iter()
        .position(|(at, _)| *at >= x)
        .unwrap_or(STOPS.len() - 1)
        .max(1);
    let ((a, from), (b, to)) = (STOPS[upper - 1], STOPS[upper]);
    let t = (x - a) / (b - a);
    let mix = |p: f64, q: f64| (p + (q - p) * t).round() as u8;
    Color::Rgb(mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_colors_follow_memrays_gradient() {
        assert_eq!(share_color(0.0), Color::Rgb(97, 193, 44));
        assert_eq!(share_color(40.0), Color::Rgb(236, 152, 16));
        assert_eq!(share_color(100.0), Color::Rgb(205, 92, 92));
        assert_eq!(share_color(50.0), Color::Rgb(246, 146, 8));
    }
}
