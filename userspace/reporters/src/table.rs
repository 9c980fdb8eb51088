//! A plain box-drawn table in the style of rich's default (heavy header):
//! sized to its content so nothing is cut when piped, or fitted to a width
//! (a terminal's) by wrapping cells, the numbers kept whole.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Narrowest the first (text) column gets when the table must fit a width.
const MIN_TEXT_WIDTH: usize = 12;

fn width(text: &str) -> usize {
    text.chars().count()
}

/// The table; with `max_width`, fitted to it: the first column (the text)
/// gives up room first, then the others, down to their longest number and
/// header word. Cells wrap at spaces; a word longer than its column is split.
pub fn render(
    headers: &[String],
    aligns: &[Align],
    rows: &[Vec<String>],
    max_width: Option<usize>,
) -> String {
    let natural: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([width(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let widths = match max_width {
        Some(max_width) => fitted(&natural, headers, rows, max_width),
        None => natural,
    };
    let rule = |left: &str, fill: &str, mid: &str, right: &str| {
        let cells: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{left}{}{right}\n", cells.join(mid))
    };
    let mut out = rule("┏", "━", "┳", "┓");
    out.push_str(&lines(headers, &widths, "┃", aligns, true));
    out.push_str(&rule("┡", "━", "╇", "┩"));
    for row in rows {
        out.push_str(&lines(row, &widths, "│", aligns, false));
    }
    out.push_str(&rule("└", "─", "┴", "┘"));
    out
}

/// Column widths that fit `max_width` if they can (numbers are never cut).
fn fitted(
    natural: &[usize],
    headers: &[String],
    rows: &[Vec<String>],
    max_width: usize,
) -> Vec<usize> {
    // Each column has a bar and a space either side; one more bar closes the row.
    let frame = 3 * natural.len() + 1;
    if natural.iter().sum::<usize>() + frame <= max_width {
        return natural.to_vec();
    }
    let mut widths: Vec<usize> = (0..natural.len())
        .map(|i| {
            let longest_word = headers[i].split(' ').map(width).max().unwrap_or(0);
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([longest_word])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let others: usize = widths[1..].iter().sum();
    let room = max_width.saturating_sub(frame + others);
    widths[0] = room.clamp(MIN_TEXT_WIDTH.min(natural[0]), natural[0]);
    // Room the text column does not need unwraps whole headers of the others.
    let mut spare = max_width.saturating_sub(frame + widths.iter().sum::<usize>());
    for (w, &n) in widths.iter_mut().zip(natural).skip(1) {
        if n - *w <= spare {
            spare -= n - *w;
            *w = n;
        }
    }
    widths
}

/// `text` in lines of at most `width` characters, broken at spaces; a longer
/// word (a path) is split after its last `/` that fits, else where it must.
fn wrap(text: &str, width_limit: usize) -> Vec<String> {
    let width_limit = width_limit.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let needed = if line.is_empty() { 0 } else { 1 } + word.len();
        if width(&line) + needed > width_limit && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width_limit {
            let at = word[..width_limit]
                .iter()
                .rposition(|&c| c == '/')
                .filter(|&slash| slash > 0)
                .map_or(width_limit, |slash| slash + 1);
            let rest = word.split_off(at);
            lines.push(word.into_iter().collect());
            word = rest;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.extend(word);
    }
    lines.push(line);
    lines
}

/// One row, over as many lines as its tallest cell takes; header cells sit
/// on the row's last lines, body cells on its first.
fn lines(cells: &[String], widths: &[usize], bar: &str, aligns: &[Align], header: bool) -> String {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        // memray's "Own Memory % " header ends in a space that shows nowhere.
        .map(|cell| cell.trim_end())
        .zip(widths)
        .map(|(cell, &w)| {
            if width(cell) <= w {
                vec![cell.to_owned()]
            } else {
                wrap(cell, w)
            }
        })
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::new();
    for line in 0..height {
        let padded: Vec<String> = wrapped
            .iter()
            .zip(widths)
            .zip(aligns)
            .map(|((cell, &w), align)| {
                let skip = if header { height - cell.len() } else { 0 };
                let text = line.checked_sub(skip).and_then(|i| cell.get(i));
                let text = text.map_or("", String::as_str);
                let pad = " ".repeat(w.saturating_sub(width(text)));
                match align {
                    Align::Left => format!(" {text}{pad} "),
                    Align::Right => format!(" {pad}{text} "),
                }
            })
            .collect();
        out.push_str(&format!("{bar}{}{bar}\n", padded.join(bar)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_width: Option<usize>) -> String {
        let headers = ["Location", "Total Memory", "Allocation Count"].map(String::from);
        let rows = vec![[
            "f at /a/rather/long/path/to/module.py",
            "140.475MB",
            "20043",
        ]
        .map(String::from)
        .to_vec()];
        render(
            &headers,
            &[Align::Left, Align::Right, Align::Right],
            &rows,
            max_width,
        )
    }

    #[test]
    fn uncut_without_a_width() {
        let text = table(None);
        assert!(
            text.contains(
                "│ f at /a/rather/long/path/to/module.py │    140.475MB │            20043 │"
            ),
            "{text}"
        );
        assert_eq!(table(Some(200)), text);
    }

    #[test]
    fn fitted_tables_wrap_text_and_keep_numbers_whole() {
        let text = table(Some(44));
        for line in text.lines() {
            assert!(width(line) <= 44, "{line:?} is wider than 44");
        }
        assert!(
            text.contains("140.475MB") && text.contains("20043"),
            "{text}"
        );
        assert!(text.contains("│ f at            │ 140.475MB │"), "{text}");
        assert!(text.contains("│ /a/rather/long/ │"), "{text}");
        assert!(text.contains("Allocation"), "{text}");
    }

    #[test]
    fn long_words_are_split() {
        assert_eq!(wrap("ab /abcdefgh x", 4), ["ab", "/abc", "defg", "h x"]);
        assert_eq!(
            wrap("/usr/lib/python3.11/json", 12),
            ["/usr/lib/", "python3.11/", "json"]
        );
        assert_eq!(wrap("", 4), [""]);
    }
}
