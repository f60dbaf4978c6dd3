//! Reading values the way an Odoo config is read: `True`/`False`, numbers, `None`, quoted
//! strings, Python literals for lists of tuples and dicts, and the plain `host:port,host:port`.

use std::path::PathBuf;

use super::{
    names::{Kind, Spec},
    ConfigError, HostPort, KeepaliveOptions, Mode,
};

/// What `<redacted>` secrets are shown as.
pub(crate) const REDACTED: &str = "<redacted>";

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
    fn show(&self) -> String {
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

/// A parsed value, typed for its field. `Unset` puts the field back to its default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Unset,
    Mode(Mode),
    Bool(bool),
    U64(u64),
    I64(i64),
    Port(u16),
    Usize(usize),
    Secs(f64),
    Str(String),
    Path(PathBuf),
    Hosts(Vec<HostPort>),
    Keepalive(KeepaliveOptions),
    Pool(Vec<super::PoolMember>),
    Multi(Vec<super::MultiBackendConfig>),
}

// ---------------------------------------------------------------------------------------------
// Python literal parser

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

// ---------------------------------------------------------------------------------------------
// Text forms

/// `None` (any case) and the empty string mean "unset".
fn is_none(t: &str) -> bool {
    t.is_empty() || t.eq_ignore_ascii_case("none")
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

/// Reads a boolean: `True`/`False` any case, `1`/`0`, `yes`/`no`, `on`/`off`.
pub(crate) fn parse_bool_text(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads a mode: `redis`, `sentinel`, `cluster`, or disabled (`False`, `0`, `disabled`, `none`,
/// `off`, `no`), any case.
pub(crate) fn parse_mode_text(t: &str) -> Option<Mode> {
    match t.trim().to_ascii_lowercase().as_str() {
        "redis" => Some(Mode::Redis),
        "sentinel" => Some(Mode::Sentinel),
        "cluster" => Some(Mode::Cluster),
        "false" | "0" | "disabled" | "none" | "off" | "no" => Some(Mode::Disabled),
        _ => None,
    }
}

/// Reads one `host`, `host:port`, `[v6]`, `[v6]:port` or bare IPv6 address.
pub(crate) fn parse_host_text(item: &str) -> Result<HostPort, String> {
    let item = unquote(item);
    let item = item.trim();
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("`{item}`: missing `]` after an IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("`{item}`: expected `:port` after `]`"))?,
            ),
        };
        (&rest[..end], port)
    } else if item.matches(':').count() > 1 {
        // A bare IPv6 address: no port can be told apart from it.
        (item, None)
    } else if let Some((h, p)) = item.split_once(':') {
        (h, Some(p))
    } else {
        (item, None)
    };
    check_host(host).map_err(|e| format!("`{item}`: {e}"))?;
    let port = port
        .map(|p| parse_port_text(p).ok_or_else(|| format!("`{item}`: port `{p}` is not 1-65535")))
        .transpose()?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host name".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/@,'\"()[]{}".contains(c))
    {
        return Err("not a host name or address".into());
    }
    Ok(())
}

fn parse_port_text(p: &str) -> Option<u16> {
    p.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Reads a host list: a Python literal list of tuples/strings, or `host:port,host:port`.
pub(crate) fn parse_hosts_text(t: &str) -> Result<Vec<HostPort>, String> {
    let t = t.trim();
    if t.starts_with('[') || t.starts_with('(') {
        // `[::1]:6379` also starts with `[`: only a literal that parses counts as one.
        if let Ok(v) = parse_literal(t) {
            return hosts_from_value(&v);
        }
        if t.starts_with('(') || t.ends_with(']') && t.contains('(') {
            return Err(format!(
                "`{t}` is not a valid list such as [('host', 26379), ('host2', 26379)]"
            ));
        }
    }
    t.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(parse_host_text)
        .collect()
}

/// A host list from a literal: `[('a', 1), ['b', 2], 'c:3', 'd']` or a single `('a', 1)`.
pub(crate) fn hosts_from_value(v: &Value) -> Result<Vec<HostPort>, String> {
    match v {
        Value::None => Ok(Vec::new()),
        Value::Str(s) => parse_hosts_text(s),
        Value::List(items) => {
            if let [Value::Str(_), Value::Int(_) | Value::Str(_)] = items.as_slice() {
                // A single `(host, port)` pair: a port is never a host, so this is unambiguous
                // when the second item is a number.
                if let Ok(one) = host_from_pair(items) {
                    if matches!(items[1], Value::Int(_)) {
                        return Ok(vec![one]);
                    }
                }
            }
            items.iter().map(host_from_item).collect()
        }
        other => Err(format!(
            "`{}` is not a host list such as [('host', 26379), ('host2', 26379)] or host:port,host:port",
            other.show()
        )),
    }
}

fn host_from_item(v: &Value) -> Result<HostPort, String> {
    match v {
        Value::Str(s) => parse_host_text(s),
        Value::List(pair) => host_from_pair(pair),
        other => Err(format!(
            "`{}` is not a host: expected ('host', port) or 'host:port'",
            other.show()
        )),
    }
}

fn host_from_pair(pair: &[Value]) -> Result<HostPort, String> {
    let (host, port) = match pair {
        [Value::Str(h), p] => (h, p),
        _ => {
            return Err(format!(
                "`{}` is not a (host, port) pair",
                Value::List(pair.to_vec()).show()
            ))
        }
    };
    check_host(host).map_err(|e| format!("`{host}`: {e}"))?;
    let port = match port {
        Value::Int(p) => u16::try_from(*p).ok().filter(|p| *p != 0),
        Value::Str(p) => parse_port_text(p),
        Value::None => {
            return Ok(HostPort {
                host: host.clone(),
                port: None,
            })
        }
        _ => None,
    }
    .ok_or_else(|| format!("`{}`: port is not 1-65535", port.show()))?;
    Ok(HostPort {
        host: host.clone(),
        port: Some(port),
    })
}

/// Keepalive options from `{4: 60, 'TCP_KEEPINTVL': 10, socket.TCP_KEEPCNT: 3}`.
pub(crate) fn keepalive_from_value(v: &Value) -> Result<KeepaliveOptions, String> {
    let items = match v {
        Value::None => return Ok(KeepaliveOptions::default()),
        Value::Dict(items) => items,
        Value::Str(s) => {
            return keepalive_from_value(&parse_literal(s).map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "`{}` is not a dict such as {{'TCP_KEEPIDLE': 60, 'TCP_KEEPINTVL': 10}}",
                other.show()
            ))
        }
    };
    let mut out = KeepaliveOptions::default();
    for (k, v) in items {
        let name = match k {
            Value::Int(n) => n.to_string(),
            Value::Str(s) | Value::Ident(s) => s.to_ascii_uppercase(),
            other => return Err(format!("`{}` is not a TCP option", other.show())),
        };
        let name = name.strip_prefix("SOCKET.").unwrap_or(&name);
        let value = match v {
            Value::Int(n) => u32::try_from(*n).ok(),
            Value::Str(s) => s.trim().parse::<u32>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("`{}` for {name}: expected an integer ≥ 0", v.show()))?;
        let slot = match name {
            "4" | "TCP_KEEPIDLE" => &mut out.idle,
            "5" | "TCP_KEEPINTVL" => &mut out.interval,
            "6" | "TCP_KEEPCNT" => &mut out.count,
            "18" | "TCP_USER_TIMEOUT" => &mut out.user_timeout,
            other => {
                return Err(format!(
                    "unknown TCP option `{other}`: expected TCP_KEEPIDLE (4), TCP_KEEPINTVL (5), TCP_KEEPCNT (6) or TCP_USER_TIMEOUT (18)"
                ))
            }
        };
        *slot = Some(value);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Kind conversion

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Mode => "one of redis, sentinel, cluster, or False/0/disabled/none to disable Redis",
        Kind::Bool => "a boolean: True or False (any case), 1 or 0",
        Kind::U64 => "an integer ≥ 0",
        Kind::I64 => "an integer ≥ 0",
        Kind::Port => "a TCP port, an integer from 1 to 65535",
        Kind::Usize => "an integer ≥ 1",
        Kind::Secs => "a number of seconds ≥ 0 (integer or decimal)",
        Kind::Str => "a string",
        Kind::Path => "a file system path",
        Kind::Hosts => "a host list: host:port,host:port or [('host', port), ('host2', port)]",
        Kind::Keepalive => {
            "a dict such as {'TCP_KEEPIDLE': 60, 'TCP_KEEPINTVL': 10} or {4: 60, 5: 10}"
        }
        Kind::Pool => "a list of pool members",
        Kind::Multi => "a list of backends",
        Kind::Raw => "a value",
    }
}

/// Reads a raw value for an option. `given` is the name as written, used in errors.
pub(crate) fn parse_setting(spec: &Spec, given: &str, raw: &Raw) -> Result<Setting, ConfigError> {
    // Structured lists name the member and key in their own errors.
    match spec.kind {
        Kind::Pool => {
            return Ok(super::pool::parse_pool(given, raw)?
                .map(Setting::Pool)
                .unwrap_or(Setting::Unset))
        }
        Kind::Multi => {
            return Ok(super::pool::parse_multi(given, raw)?
                .map(Setting::Multi)
                .unwrap_or(Setting::Unset))
        }
        _ => {}
    }
    let shown = if spec.secret {
        REDACTED.to_owned()
    } else if spec.field == super::names::Field::Url {
        match raw {
            Raw::Text(t) => format!("`{}`", redact_url(t)),
            other => other.show(),
        }
    } else {
        raw.show()
    };
    let fail = |detail: Option<String>| {
        let mut expected = expected(spec.kind).to_owned();
        if let Some(d) = detail.filter(|_| !spec.secret) {
            expected = format!("{expected} ({d})");
        }
        ConfigError {
            key: given.to_owned(),
            value: shown.clone(),
            expected,
        }
    };
    // redis-py reads ssl_cert_reqs None (and "none") as CERT_NONE, not as "unset".
    if spec.field == super::names::Field::SslCertReqs {
        let none = match raw {
            Raw::Text(t) => t.trim().eq_ignore_ascii_case("none"),
            Raw::Typed(Value::None) => true,
            Raw::Typed(Value::Str(s)) => s.trim().eq_ignore_ascii_case("none"),
            Raw::Typed(_) => false,
        };
        if none {
            return Ok(Setting::Str("none".into()));
        }
    }
    let value = match raw {
        Raw::Typed(v) => v.clone(),
        Raw::Text(t) => {
            let t = t.trim();
            if is_none(t) {
                return Ok(match spec.kind {
                    Kind::Mode if !t.is_empty() => Setting::Mode(Mode::Disabled),
                    _ => Setting::Unset,
                });
            }
            return text_setting(spec.kind, t).map_err(fail);
        }
    };
    typed_setting(spec.kind, &value).map_err(fail)
}

fn text_setting(kind: Kind, t: &str) -> Result<Setting, Option<String>> {
    // Structured kinds read the literal themselves; scalars drop one level of quotes first.
    match kind {
        Kind::Hosts => return parse_hosts_text(t).map(Setting::Hosts).map_err(Some),
        Kind::Keepalive => {
            let v = parse_literal(t).map_err(Some)?;
            return keepalive_from_value(&v)
                .map(Setting::Keepalive)
                .map_err(Some);
        }
        _ => {}
    }
    let t = unquote(t);
    let t = t.as_str();
    match kind {
        Kind::Mode => parse_mode_text(t).map(Setting::Mode).ok_or(None),
        Kind::Bool => parse_bool_text(t).map(Setting::Bool).ok_or(None),
        Kind::U64 => t.parse::<u64>().map(Setting::U64).map_err(|_| None),
        Kind::I64 => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Setting::I64(n)),
            _ => Err(None),
        },
        Kind::Port => parse_port_text(t).map(Setting::Port).ok_or(None),
        Kind::Usize => match t.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Setting::Usize(n)),
            _ => Err(None),
        },
        Kind::Secs => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => Ok(Setting::Secs(f)),
            _ => Err(None),
        },
        Kind::Str | Kind::Raw => Ok(Setting::Str(t.to_owned())),
        Kind::Path => Ok(Setting::Path(PathBuf::from(t))),
        Kind::Hosts | Kind::Keepalive | Kind::Pool | Kind::Multi => {
            unreachable!("handled above")
        }
    }
}

fn typed_setting(kind: Kind, v: &Value) -> Result<Setting, Option<String>> {
    if let Value::Str(s) = v {
        if kind != Kind::Str {
            let t = s.trim();
            if is_none(t) {
                return Ok(match kind {
                    Kind::Mode if !t.is_empty() => Setting::Mode(Mode::Disabled),
                    _ => Setting::Unset,
                });
            }
            return text_setting(kind, t);
        }
    }
    match (kind, v) {
        (Kind::Mode, Value::Bool(false)) | (Kind::Mode, Value::Int(0)) => {
            Ok(Setting::Mode(Mode::Disabled))
        }
        (Kind::Bool, Value::Bool(b)) => Ok(Setting::Bool(*b)),
        (Kind::Bool, Value::Int(n @ (0 | 1))) => Ok(Setting::Bool(*n == 1)),
        (Kind::U64, Value::Int(n)) if *n >= 0 => Ok(Setting::U64(*n as u64)),
        (Kind::I64, Value::Int(n)) if *n >= 0 => Ok(Setting::I64(*n)),
        (Kind::Port, Value::Int(n)) => u16::try_from(*n)
            .ok()
            .filter(|p| *p != 0)
            .map(Setting::Port)
            .ok_or(None),
        (Kind::Usize, Value::Int(n)) if *n >= 1 => Ok(Setting::Usize(*n as usize)),
        (Kind::Secs, Value::Int(n)) if *n >= 0 => Ok(Setting::Secs(*n as f64)),
        (Kind::Secs, Value::Float(f)) if f.is_finite() && *f >= 0.0 => Ok(Setting::Secs(*f)),
        (Kind::Str, Value::Str(s)) => Ok(Setting::Str(s.clone())),
        (Kind::Str, Value::Int(n)) => Ok(Setting::Str(n.to_string())),
        (_, Value::None) if kind != Kind::Mode => Ok(Setting::Unset),
        (Kind::Mode, Value::None) => Ok(Setting::Mode(Mode::Disabled)),
        (Kind::Hosts, v) => hosts_from_value(v).map(Setting::Hosts).map_err(Some),
        (Kind::Keepalive, v) => keepalive_from_value(v)
            .map(Setting::Keepalive)
            .map_err(Some),
        (Kind::Raw, _) => Ok(Setting::Str(v.show())),
        _ => Err(None),
    }
}

/// A URL with its password (and a lone user-info part, which some clients read as the
/// password) replaced by `<redacted>`, also in a `password=` query parameter.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL we can take apart: show nothing of it but its length.
        return if url.contains('@') {
            REDACTED.to_owned()
        } else {
            url.to_owned()
        };
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    // The user-info ends at the LAST `@`: a password may hold an unencoded `/`, `?`, `#` or
    // even `@`, and cutting at the first of those would print the rest of it. An `@` further
    // right (in a query) only makes this redact more than needed.
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, tail) = rest.split_at(at);
            let user = userinfo.split_once(':').map(|(user, _)| user);
            (
                Some(match user {
                    Some(user) if !user.contains(['/', '?', '#']) => format!("{user}:{REDACTED}"),
                    _ => REDACTED.to_owned(),
                }),
                tail,
            )
        }
        None => (None, rest),
    };
    // Query parameters that carry a password: redis-rs reads `pass` (unix:// URLs); `password`
    // is what people write.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") =>
                    {
                        format!("{k}={REDACTED}")
                    }
                    _ => kv.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{head}{}{tail}", userinfo.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let hostile = "[".repeat(100_000);
        assert!(parse_literal(&hostile)
            .unwrap_err()
            .contains("nested deeper"));
        assert!(parse_literal(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).is_ok());
    }

    #[test]
    fn url_passwords_never_survive_redaction() {
        for (url, secret) in [
            ("redis://:s3cret@h:6379/0", "s3cret"),
            ("redis://user:s3cret@h:6379", "s3cret"),
            ("rediss://u:ab#cd@h:6380", "ab#cd"),
            ("redis://:ab/cd?x@h", "ab/cd?x"),
            ("redis://:a@b@h", "a@b"),
            ("unix:///r.sock?db=1&pass=s3cret", "s3cret"),
            ("unix:///r.sock?password=s3cret", "s3cret"),
            ("redis://s3cret@h", "s3cret"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.contains(REDACTED), "{url} -> {shown}");
        }
        assert_eq!(redact_url("redis://h:6379/2"), "redis://h:6379/2");
        assert_eq!(
            redact_url("redis://app:pw@h:6379/2"),
            format!("redis://app:{REDACTED}@h:6379/2")
        );
    }

    fn hp(h: &str, p: Option<u16>) -> HostPort {
        HostPort {
            host: h.into(),
            port: p,
        }
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

    #[test]
    fn host_forms() {
        assert_eq!(
            parse_hosts_text("a:1, b ,[::1]:6379,[fe80::1],::2").unwrap(),
            vec![
                hp("a", Some(1)),
                hp("b", None),
                hp("::1", Some(6379)),
                hp("fe80::1", None),
                hp("::2", None)
            ]
        );
        assert_eq!(
            parse_hosts_text("('h', 5)").unwrap(),
            vec![hp("h", Some(5))]
        );
        assert_eq!(
            parse_hosts_text("['a:1', ['b', '2']]").unwrap(),
            vec![hp("a", Some(1)), hp("b", Some(2))]
        );
        assert!(parse_hosts_text("a:0").is_err());
        assert!(parse_hosts_text("a:x").is_err());
        assert!(parse_hosts_text("[('a', 1), ('b')]").is_err());
        assert!(parse_hosts_text("[('a', 1)").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:pw@h:1/0"),
            "redis://user:<redacted>@h:1/0"
        );
        assert_eq!(redact_url("redis://pw@h"), "redis://<redacted>@h");
        assert_eq!(
            redact_url("unix:///s.sock?db=1&password=x"),
            "unix:///s.sock?db=1&password=<redacted>"
        );
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
