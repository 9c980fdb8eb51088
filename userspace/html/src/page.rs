//! Assembles one self-contained HTML file: the shared page (head, header,
//! the warnings that apply), the report's own markup, styles, script and the
//! JSON payload, all inline.

use serde::Serialize;

use crate::Metadata;

const PAGE: &str = include_str!("../assets/page.html");
const COMMON_CSS: &str = include_str!("../assets/common.css");
const COMMON_JS: &str = include_str!("../assets/common.js");
const PYMALLOC_WARNING: &str = include_str!("../assets/warning_pymalloc.html");
const CUT_OFF_WARNING: &str = include_str!("../assets/warning_cut_off.html");

/// One page kind's assets.
pub struct PageAssets {
    /// The report's name in the page heading ("memray <report>: …").
    pub report: &'static str,
    /// The report's own markup, between the shared header and the payload.
    pub body: &'static str,
    pub css: &'static str,
    pub js: &'static str,
}

pub fn assemble(
    assets: &PageAssets,
    title: &str,
    meta: &Metadata,
    payload: &impl Serialize,
) -> String {
    let data = serde_json::to_string(payload).expect("the payload holds only plain data");
    let styles = format!("{COMMON_CSS}\n{}", assets.css);
    let script = format!("{COMMON_JS}\n{}", assets.js);
    fill_template(
        PAGE,
        &[
            ("title", &escape_html(title)),
            ("report", assets.report),
            ("warnings", &warnings(meta)),
            ("body", assets.body),
            ("styles", &styles),
            ("script", &script),
            ("data", &escape_script(&data)),
        ],
    )
}

/// The notes above the report, only those that apply: memray's warning for
/// leaks over an arena allocator, and ours for a capture cut short.
fn warnings(meta: &Metadata) -> String {
    let mut html = String::new();
    if meta.cut_off {
        html.push_str(CUT_OFF_WARNING);
    }
    if meta.pymalloc_leaks_warning {
        let allocator = escape_html(&meta.python_allocator);
        html.push_str(&fill_template(
            PYMALLOC_WARNING,
            &[("allocator", &allocator)],
        ));
    }
    html
}

/// Replaces each `{{name}}` of `template` in one pass, so substituted text is
/// never searched for placeholders.
fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let name = &rest[start + 2..start + end];
        out.push_str(&rest[..start]);
        match values.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON inside `<script>` must not contain `</script` or `<!--`. `<` only
/// occurs inside JSON strings, where `\u003c` means the same.
fn escape_script(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_data_cannot_close_its_element() {
        let json = serde_json::to_string(&["</script><!--"]).unwrap();
        let escaped = escape_script(&json);
        assert!(!escaped.contains('<'));
        let back: Vec<String> = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, ["</script><!--"]);
    }

    #[test]
    fn placeholders_are_filled_once() {
        let filled = fill_template("<{{a}}|{{b}}|{{c}}>", &[("a", "{{b}}"), ("b", "x")]);
        assert_eq!(filled, "<{{b}}|x|{{c}}>");
    }

    #[test]
    fn only_the_warnings_that_apply_are_written() {
        let mut meta = Metadata::default();
        assert_eq!(warnings(&meta), "");
        meta.pymalloc_leaks_warning = true;
        meta.python_allocator = "pymalloc".to_owned();
        let leaks = warnings(&meta);
        assert!(
            leaks.contains("Report generated using <code>--leaks</code> with an arena allocator")
        );
        assert!(leaks.contains("with the pymalloc allocator active"));
        assert!(leaks.contains("PYTHONMALLOC=malloc") && !leaks.contains("cut off"));
        meta.cut_off = true;
        assert!(warnings(&meta).contains("The capture was cut off"));
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape_html("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
