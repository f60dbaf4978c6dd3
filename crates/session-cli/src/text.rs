//! Text from the store (session keys, values, Redis keys, server messages) made safe to
//! print on a terminal.

use std::borrow::Cow;

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
