//! A plain box-drawn table in the style of rich's default (heavy header),
//! sized to its content so nothing is cut when piped.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

pub fn render(headers: &[String], aligns: &[Align], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([width(h)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule = |left: &str, fill: &str, mid: &str, right: &str| {
        let cells: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{left}{}{right}\n", cells.join(mid))
    };
    let line = |cells: &[String], bar: &str, aligns: &[Align]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(aligns)
            .map(|((c, w), a)| {
                let pad = " ".repeat(w - width(c));
                match a {
                    Align::Left => format!(" {c}{pad} "),
                    Align::Right => format!(" {pad}{c} "),
                }
            })
            .collect();
        format!("{bar}{}{bar}\n", padded.join(bar))
    };
    let centered: Vec<Align> = vec![Align::Left; headers.len()];
    let mut out = rule("┏", "━", "┳", "┓");
    out.push_str(&line(headers, "┃", &centered));
    out.push_str(&rule("┡", "━", "╇", "┩"));
    for row in rows {
        out.push_str(&line(row, "│", aligns));
    }
    out.push_str(&rule("└", "─", "┴", "┘"));
    out
}
