//! Text from the store (session keys, values, Redis keys, server messages) made safe to
//! print on a terminal, as text ([`printable`]) and as JSON ([`json`], [`json_pretty`]).

use std::borrow::Cow;

use serde::Serialize;

/// `text` with every control character and every other character that prints nothing
/// (bidirectional overrides such as U+202E, zero-width characters, unassigned code points)
/// written as an escape: `\n`, `\t`, `\r`, `\0`, else `\u{1b}`. Stored data is whatever a
/// client wrote: printed as it is, an escape sequence in a session key would retitle or
/// clear the operator's terminal (or worse), and a U+202E would make the text read backwards.
/// Quotes and backslashes stay as they are, so JSON values read as JSON; only `--json`
/// output is exact.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().all(shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if shown_as_is(c) {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of JSON, with every character [`printable`] escapes written as a
/// `\uXXXX` escape. serde_json escapes only U+0000-U+001F: a C1 control (U+009B is a
/// one-byte CSI to many terminals) or a U+202E in a session key went out raw to whatever
/// reads `--json` output, often a terminal. Escaped, the document parses back to the same
/// strings.
pub fn json(value: &impl Serialize) -> String {
    escaped_json(serde_json::to_string(value).unwrap_or_default())
}

/// [`json`], indented.
pub fn json_pretty(value: &impl Serialize) -> String {
    escaped_json(serde_json::to_string_pretty(value).unwrap_or_default())
}

/// `json` with the characters [`printable`] escapes written as `\uXXXX`. Outside strings JSON
/// text is ASCII, so every such character stands in a string, where the escape means the
/// same character. ASCII controls in a string are escaped by serde_json already; DEL is not,
/// and the spaces and new lines of pretty output must stay.
fn escaped_json(json: String) -> String {
    if !json.chars().any(escaped_in_json) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escaped_in_json(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escaped_in_json(c: char) -> bool {
    c == '\u{7f}' || (!c.is_ascii() && !shown_as_is(c))
}

/// True for a character printed as it is: one that `escape_debug` leaves alone, plus quotes
/// and the backslash (which it escapes only to make Rust literals), plus combining marks
/// (which it escapes only at the start of a text: after a letter they are the accent of a
/// decomposed `é`).
fn shown_as_is(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    // Std's table of printable characters is reachable only through `escape_debug`: ask it
    // about the character after a letter, where a combining mark is not escaped.
    let mut buf = [0u8; 5];
    buf[0] = b'a';
    let len = 1 + c.encode_utf8(&mut buf[1..]).len();
    let Ok(pair) = std::str::from_utf8(&buf[..len]) else {
        return false;
    };
    let mut escaped = pair.escape_debug().skip(1);
    escaped.next() == Some(c) && escaped.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[2Juser"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2Juser"
        );
        assert_eq!(printable("a\nb\tc\r\0"), "a\\nb\\tc\\r\\0");
        assert_eq!(printable("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
        assert_eq!(printable("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(printable("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
    }

    #[test]
    fn json_escapes_what_printable_escapes_and_reads_back_the_same() {
        let hostile = "a\u{85}\u{9b}\u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}\u{7f}\u{e0001}\"\\\n";
        // Each of them is escaped in text output too.
        for c in hostile.chars().filter(|c| !c.is_ascii() || *c == '\u{7f}') {
            assert!(matches!(printable(&c.to_string()), Cow::Owned(_)), "{c:?}");
        }
        for text in [json(&hostile), json_pretty(&[hostile])] {
            assert!(text.is_ascii(), "{text}");
            assert!(
                text.contains(r"\u009b") && text.contains(r"\udb40\udc01"),
                "{text}"
            );
        }
        let back: String = serde_json::from_str(&json(&hostile)).unwrap();
        assert_eq!(back, hostile);
        let back: Vec<String> = serde_json::from_str(&json_pretty(&[hostile])).unwrap();
        assert_eq!(back, [hostile]);
        assert!(json_pretty(&[1, 2]).contains("\n  1,"));
        assert_eq!(json(&"日本語 é"), "\"日本語 é\"");
    }

    #[test]
    fn ordinary_text_is_kept_as_it_is() {
        for text in [
            "user",
            r#"{"name": "Zoë \"Z\" O'Neil", "path": "C:\\tmp"}"#,
            "日本語 émoji 🎉",
            "e\u{301}",
        ] {
            assert!(matches!(printable(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
