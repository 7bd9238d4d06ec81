//! Changing a flow file the way a person would: one value rewritten in place, every
//! other byte (comments, key order, quoting, line endings) left as it was. The file stays
//! the truth; what edits it (the console's on/off toggle) goes through here.

use std::path::Path;

use crate::diag::{Diagnostic, Pos};
use crate::yaml;

/// `text` (the flow file at `file`) with its top-level `enabled:` set to `enabled`: the
/// value rewritten where it stands, or, when the file has none, an `enabled:` line added
/// after its `name:` line (or before its first key). A file that cannot be edited this way
/// (not YAML, flow style, an `enabled:` that is not a plain value) is refused with why.
pub fn set_enabled(file: &Path, text: &str, enabled: bool) -> Result<String, Diagnostic> {
    let word = if enabled { "true" } else { "false" };
    let root = yaml::load(file, text)?;
    let Some(mapping) = root.as_mapping() else {
        return Err(refusal(file, Pos::new(1, 1), "its top is not a mapping"));
    };
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(value) = mapping.get_node("enabled") {
        let pos = Pos::of(value.span());
        let Some(scalar) = value.as_scalar() else {
            return Err(refusal(
                file,
                pos,
                "its `enabled:` is not a plain true or false",
            ));
        };
        let line = lines
            .get(pos.line.saturating_sub(1))
            .ok_or_else(|| refusal(file, pos, "its `enabled:` could not be found"))?;
        let start = byte_at(line, pos.column)
            .ok_or_else(|| refusal(file, pos, "its `enabled:` could not be found"))?;
        let written = scalar.as_str();
        let rest = &line[start..];
        // The value as written: plain, or quoted with the quotes kept out of the word.
        let token_len = if rest.starts_with(written) {
            written.len()
        } else if rest.starts_with(&format!("\"{written}\""))
            || rest.starts_with(&format!("'{written}'"))
        {
            written.len() + 2
        } else {
            return Err(refusal(
                file,
                pos,
                "its `enabled:` is written over several lines or in a form this edit does not rewrite",
            ));
        };
        if !matches!(written, "true" | "false") {
            return Err(refusal(
                file,
                pos,
                &format!("its `enabled:` is `{written}`, not true or false"),
            ));
        }
        let mut out = String::with_capacity(text.len());
        for (i, l) in lines.iter().enumerate() {
            if i + 1 == pos.line {
                out.push_str(&l[..start]);
                out.push_str(word);
                out.push_str(&l[start + token_len..]);
            } else {
                out.push_str(l);
            }
        }
        return Ok(out);
    }
    // No `enabled:` yet: a new line of its own, at the top level's indentation (0).
    let (after, anchor) = match mapping.get_node("name") {
        Some(name) => (true, Pos::of(name.span())),
        None => match mapping.keys().next() {
            Some(first) => (false, Pos::of(first.span())),
            None => (false, Pos::new(lines.len() + 1, 1)),
        },
    };
    if text.trim_start().starts_with('{') {
        return Err(refusal(
            file,
            Pos::new(1, 1),
            "it is written in flow style (`{ … }`)",
        ));
    }
    // A `name:` value over several lines (a block scalar) ends where the next key starts.
    let insert_at = if after {
        let mut at = anchor.line; // the line after `name:` (0-based index)
        while let Some(l) = lines.get(at) {
            let content = l.trim_start_matches(' ');
            if !l.starts_with(' ') && !content.trim().is_empty() {
                break;
            }
            at += 1;
        }
        at
    } else {
        anchor.line.saturating_sub(1)
    };
    let mut out = String::with_capacity(text.len() + 16);
    for (i, l) in lines.iter().enumerate() {
        if i == insert_at {
            out.push_str(&format!("enabled: {word}{newline}"));
        }
        out.push_str(l);
    }
    if insert_at >= lines.len() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(newline);
        }
        out.push_str(&format!("enabled: {word}{newline}"));
    }
    Ok(out)
}

/// The byte offset of 1-based character column `column` in `line`.
fn byte_at(line: &str, column: usize) -> Option<usize> {
    if column == 0 {
        return None;
    }
    line.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(line.len()))
        .nth(column - 1)
}

fn refusal(file: &Path, pos: Pos, why: &str) -> Diagnostic {
    Diagnostic::new(
        file,
        pos,
        format!("the file cannot be switched on or off: {why}"),
    )
    .with_hint("edit its `enabled:` line by hand")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, on: bool) -> String {
        match set_enabled(Path::new("f.yaml"), text, on) {
            Ok(text) => text,
            Err(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn rewrites_the_value_where_it_stands_and_keeps_everything_else() {
        let text = "# orders to SMS\nname: orders   # the name\nenabled: true # on for now\nsource:\n  connector: csv\n";
        let off = edit(text, false);
        assert_eq!(
            off,
            "# orders to SMS\nname: orders   # the name\nenabled: false # on for now\nsource:\n  connector: csv\n"
        );
        assert_eq!(edit(&off, true), text);
    }

    #[test]
    fn keeps_quotes_and_windows_line_endings() {
        let text = "name: a\r\nenabled: \"true\"\r\nsource: {}\r\n";
        assert_eq!(
            edit(text, false),
            "name: a\r\nenabled: false\r\nsource: {}\r\n"
        );
    }

    #[test]
    fn adds_a_line_after_name_when_there_is_none() {
        let text = "# header\nname: a\nsource:\n  connector: csv\n";
        assert_eq!(
            edit(text, false),
            "# header\nname: a\nenabled: false\nsource:\n  connector: csv\n"
        );
        // No name: before the first key, after the leading comments.
        let text = "# header\nsource:\n  connector: csv\n";
        assert_eq!(
            edit(text, false),
            "# header\nenabled: false\nsource:\n  connector: csv\n"
        );
        // A name written over several lines.
        let text = "name: >-\n  long\n  name\nsource: {}\n";
        assert_eq!(
            edit(text, true),
            "name: >-\n  long\n  name\nenabled: true\nsource: {}\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_and_says_where() {
        for (text, why) in [
            ("name: a\nenabled: [1]\n", "not a plain true or false"),
            ("name: a\nenabled: maybe\n", "`maybe`, not true or false"),
            ("name: a\n  bad: indent\n", ""),
            ("{name: a, source: {}}\n", "flow style"),
        ] {
            let e = match set_enabled(Path::new("f.yaml"), text, false) {
                Ok(t) => panic!("edited {text:?} into {t:?}"),
                Err(e) => e,
            };
            assert!(e.to_string().contains(why), "{e}");
            assert!(e.to_string().starts_with("f.yaml:"), "{e}");
        }
    }
}
