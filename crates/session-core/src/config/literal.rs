//! Python literals, as an Odoo config file writes structured values: `True`/`False`, `None`,
//! numbers, quoted strings, lists and tuples, dicts. TOML values map onto the same shapes, so
//! every structured option is read from one [`Value`].

use super::{redact::REDACTED, ConfigError};

/// A Python literal (or a TOML value, which maps onto the same shapes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A bare name such as `TCP_KEEPIDLE` or `socket.TCP_KEEPIDLE`.
    Ident(String),
    /// A list or a tuple: the difference never matters here.
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

/// A value as a source gives it: text (config file, environment, TOML string) or typed (TOML).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Text(String),
    Typed(Value),
}

impl Raw {
    /// How the value is shown in an error (secrets redacted by the caller).
    pub(crate) fn show(&self) -> String {
        match self {
            Raw::Text(t) => format!("`{t}`"),
            Raw::Typed(v) => format!("`{}`", v.show()),
        }
    }
}

impl Value {
    pub(crate) fn show(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Ident(s) => s.clone(),
            Value::List(items) => format!(
                "[{}]",
                items.iter().map(Value::show).collect::<Vec<_>>().join(", ")
            ),
            Value::Dict(items) => format!(
                "{{{}}}",
                items
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.show(), v.show()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Nesting of lists and dicts, bounded so a hostile value cannot overflow the stack.
    depth: usize,
}

/// Deepest nesting a literal may have; real configurations use two levels.
const MAX_DEPTH: usize = 32;

/// Parses a whole Python literal (`[('a', 1), ("b", 2),]`, `{4: 60}`, `'x'`, `True`, ...).
pub(crate) fn parse_literal(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected text at offset {}", p.pos));
    }
    Ok(v)
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err("unexpected end".into()),
            Some(b'[' | b'(' | b'{') if self.depth >= MAX_DEPTH => Err(format!(
                "nested deeper than {MAX_DEPTH} levels at offset {}",
                self.pos
            )),
            Some(open @ (b'[' | b'(' | b'{')) => {
                self.depth += 1;
                let nested = match open {
                    b'[' => self.seq(b']').map(Value::List),
                    b'(' => self.seq(b')').map(Value::List),
                    _ => self.dict(),
                };
                self.depth -= 1;
                nested
            }
            Some(q @ (b'\'' | b'"')) => self.string(q).map(Value::Str),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric()
                        || self.s[self.pos] == b'_'
                        || self.s[self.pos] == b'.')
                {
                    self.pos += 1;
                }
                Ok(match &self.text[start..self.pos] {
                    "True" | "true" => Value::Bool(true),
                    "False" | "false" => Value::Bool(false),
                    "None" => Value::None,
                    other => Value::Ident(other.to_owned()),
                })
            }
            Some(c) => Err(format!("unexpected `{}`", c as char)),
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(format!("expected `,` or `{}`", close as char)),
            }
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Dict(items));
            }
            let k = self.value()?;
            if self.peek() != Some(b':') {
                return Err("expected `:` in a dict".into());
            }
            self.pos += 1;
            let v = self.value()?;
            items.push((k, v));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err("expected `,` or `}`".into()),
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        let rest = &self.text[self.pos..];
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c as u32 == quote as u32 {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, '0')) => out.push('\0'),
                    Some((_, e @ ('\\' | '\'' | '"'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err("unterminated string".into())
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || b"+-._".contains(&self.s[self.pos]))
        {
            self.pos += 1;
        }
        let t = self.text[start..self.pos].replace('_', "");
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(format!("`{t}` is not a number")),
        }
    }
}

/// Removes one level of Python quotes (`'x'`, `"x"`), handling escapes.
pub(crate) fn unquote(t: &str) -> String {
    let t = t.trim();
    if t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')))
    {
        if let Ok(Value::Str(s)) = parse_literal(t) {
            return s;
        }
    }
    t.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Structured values of the pool and multi-backend options

/// The value of a pool or multi-backend option as a literal: Python text, or TOML's typed value.
/// `Ok(None)` for an unset value (`None`, empty).
pub(crate) fn literal_value(
    given: &str,
    raw: &Raw,
    example: &str,
) -> Result<Option<Value>, ConfigError> {
    match raw {
        Raw::Typed(Value::None) => Ok(None),
        Raw::Typed(Value::Str(t)) | Raw::Text(t) => {
            let t = t.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("none") {
                return Ok(None);
            }
            // The parser's message quotes no input, only positions: safe with secrets inside.
            parse_literal(t).map(Some).map_err(|e| {
                ConfigError::invalid(
                    given,
                    REDACTED,
                    &format!("a Python literal list such as {example} ({e})"),
                )
            })
        }
        Raw::Typed(v) => Ok(Some(v.clone())),
    }
}

pub(crate) fn list_items<'a>(
    given: &str,
    v: &'a Value,
    example: &str,
) -> Result<&'a [Value], ConfigError> {
    match v {
        Value::List(items) => Ok(items),
        _ => Err(ConfigError::invalid(
            given,
            REDACTED,
            &format!("a list such as {example}"),
        )),
    }
}

pub(crate) fn dict<'a>(
    key: &str,
    v: &'a Value,
    what: &str,
) -> Result<&'a [(Value, Value)], ConfigError> {
    match v {
        Value::Dict(d) => Ok(d),
        _ => Err(ConfigError::invalid(key, REDACTED, what)),
    }
}

pub(crate) fn dict_key(key: &str, k: &Value) -> Result<String, ConfigError> {
    match k {
        Value::Str(s) => Ok(s.clone()),
        Value::Ident(s) => Ok(s.clone()),
        other => Err(ConfigError::invalid(
            key,
            &format!("{other:?}"),
            "string keys",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz-style: the literal parser reads outside input (config values), so no input may
    /// make it panic or overflow the stack. Bounded case counts keep it to about a second.
    mod props {
        use proptest::prelude::*;

        use super::super::{literal_value, parse_literal, unquote, Raw};

        /// Text made mostly of the characters the grammar cares about.
        fn literalish() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "[",
                            "]",
                            "(",
                            ")",
                            "{",
                            "}",
                            "'",
                            "\"",
                            ",",
                            ":",
                            "\\",
                            "None",
                            "True",
                            "False",
                            "-",
                            "+",
                            ".",
                            "e",
                            "E",
                            "0x1",
                            "1_0",
                            "socket.",
                            "9223372036854775808",
                            "1e999",
                            "nan",
                            " ",
                            "\n",
                            "\u{0}",
                            "é",
                            "\u{1F600}",
                            "'''",
                            "r'",
                            "b'",
                        ][..]
                    )
                    .prop_map(str::to_owned),
                    "[0-9]{1,25}",
                    "[a-zA-Z_]{1,8}",
                ],
                0..64,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 1024,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn never_panics_on_literal_like_text(s in literalish()) {
                let _ = parse_literal(&s);
                let _ = unquote(&s);
                let _ = literal_value("session_redis_pool", &Raw::Text(s.clone()), "[]");
            }

            #[test]
            fn never_panics_on_any_text(s in any::<String>()) {
                let _ = parse_literal(&s);
                let _ = unquote(&s);
            }

            #[test]
            fn deep_or_huge_input_is_bounded(
                depth in 0usize..20_000,
                open in prop::sample::select(&["[", "(", "{", "{1:", "['a',", "{'k': ("][..]),
                close in prop::option::of(prop::sample::select(&["]", ")", "}"][..])),
            ) {
                let text = format!("{}0{}", open.repeat(depth), close.unwrap_or("").repeat(depth));
                let _ = parse_literal(&text);
            }
        }

        /// A few huge inputs, once each: long numbers, strings, lists, escapes.
        #[test]
        fn huge_inputs_are_fine() {
            let _ = parse_literal(&"9".repeat(1_000_000));
            let _ = parse_literal(&format!("'{}'", "x".repeat(1_000_000)));
            let _ = parse_literal(&format!("[{}]", "1,".repeat(200_000)));
            let _ = parse_literal(&format!("'{}", "\\".repeat(100_001)));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let hostile = "[".repeat(100_000);
        assert!(parse_literal(&hostile)
            .unwrap_err()
            .contains("nested deeper"));
        assert!(parse_literal(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).is_ok());
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse_literal("[('10.0.0.1', 26379), (\"b\", 2,),]").unwrap(),
            Value::List(vec![
                Value::List(vec![Value::Str("10.0.0.1".into()), Value::Int(26379)]),
                Value::List(vec![Value::Str("b".into()), Value::Int(2)]),
            ])
        );
        assert_eq!(
            parse_literal("{4: 60, 'TCP_KEEPINTVL': 1.5}").unwrap(),
            Value::Dict(vec![
                (Value::Int(4), Value::Int(60)),
                (Value::Str("TCP_KEEPINTVL".into()), Value::Float(1.5))
            ])
        );
        assert!(parse_literal("[('a', 1)").is_err());
        assert!(parse_literal("'abc").is_err());
        assert_eq!(parse_literal(r"'a\'b'").unwrap(), Value::Str("a'b".into()));
    }
}
