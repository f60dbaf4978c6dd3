//! One declaration per option.
//!
//! [`session_options!`] below is the only place an option is declared: its field (type,
//! default, doc line, serde attributes), canonical name, value kind, how `Display` shows it,
//! whether it is secret, its aliases, and its row of the option table in
//! `docs/configuration.md` and `README.md`. [`define_options!`] turns the table into:
//!
//! - the [`SessionConfig`](super::SessionConfig) struct, its `Default` and its `Debug`
//!   (secrets as `Some(<redacted>)`, the URL with its password redacted);
//! - `Field`, `OPTIONS` and `ALIASES`, which the name lookup in `names.rs` reads;
//! - `SessionConfig::apply`, which sets a field from a value read by `parse.rs`;
//! - [`SessionConfig::entries`](super::SessionConfig::entries), which `Display` prints, each
//!   value shown by the `display.rs` function the table names;
//! - `option_docs()`, the rows of the documentation's option table (a test keeps the files
//!   in step with it).
//!
//! Adding an option is one entry in the table, plus its rules in `validate.rs` if it has any.
//! The table is expanded in `config/mod.rs`, so the generated items belong to the `config`
//! module itself, where the submodules can use them without depending on each other.

// The upper bounds of the numeric options, which `validate.rs` and `pool.rs` check and the
// table's `docs_type` cells state.

/// The largest `session_redis_max_connections`: Redis' default `maxclients`. A pool larger
/// than the server's whole client limit can never be filled, and the pool reserves memory per
/// slot up front, so that a value such as 10^14 aborted the process before any check.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;

/// The largest `session_redis_db`. Redis' number of databases is configurable (`databases`), so
/// no smaller bound is right for every server; 2^31-1 is what any server can be set to and
/// fits every integer type a client converts it to.
pub(crate) const MAX_DB: i64 = i32::MAX as i64;

/// Every option in seconds stays below this (about 31 years): a `Duration` built from it and
/// added to an `Instant` cannot overflow.
pub(crate) const MAX_SECONDS: f64 = 1e9;

/// One row of the documentation's option table; the option's names come from its entry.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct OptionDoc {
    /// Canonical name; `None` for a name that only exists inside another option's value.
    pub name: Option<&'static str>,
    /// The upper-case names a django-redis-sessions (or acs_redis_multi_sessions) user writes.
    pub django: Vec<String>,
    pub docs_type: &'static str,
    pub docs_default: &'static str,
    pub meaning: &'static str,
    pub status: &'static str,
}

#[cfg(test)]
impl OptionDoc {
    /// The markdown row; `link_base` is put before the relative links, which are written for
    /// files in `docs/`.
    pub(crate) fn markdown_row(&self, link_base: &str) -> String {
        let option = match self.name {
            Some(name) if name.starts_with("session_redis_") => format!("`{name}`"),
            // The one name outside the `session_redis_` family: give its variable too.
            Some(name) => format!("`{name}` (`{}`)", name.to_ascii_uppercase()),
            None => "—".to_owned(),
        };
        let django = self
            .django
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join("; ");
        let row = format!(
            "| {option} | {django} | {} | {} | {} | {} |",
            self.docs_type, self.docs_default, self.meaning, self.status
        );
        // An empty cell is written `| |`, as a person would.
        row.replace("|  |", "| |")
            .replace("](", &format!("]({link_base}"))
    }
}

/// The django-redis-sessions names of an option: its own name in upper case when that library
/// reads it, then its aliases.
#[cfg(test)]
pub(crate) fn django_names(name: &str, django: bool, aliases: &[&str]) -> Vec<String> {
    django
        .then(|| name.to_ascii_uppercase())
        .into_iter()
        .chain(aliases.iter().map(|a| a.to_ascii_uppercase()))
        .collect()
}

/// Used by [`define_options!`]: how `Debug` shows a field, by the way `Display` shows it.
macro_rules! debug_value {
    (secret, $value:expr) => {
        display::Secret($value)
    };
    (url, $value:expr) => {
        $value.as_deref().map(redact::redact_url)
    };
    ($other:ident, $value:expr) => {
        $value
    };
}

/// Used by [`define_options!`]: whether an alias implies sentinel mode.
macro_rules! implies {
    () => {
        false
    };
    (sentinel) => {
        true
    };
}

/// Generates the configuration's items from the option table (see the module docs).
macro_rules! define_options {
    (
        fields {
            $(
                $(#[$meta:meta])*
                $field:ident: $ty:ty = $default:expr => {
                    name: $name:literal, kind: $kind:ident, show: $show:ident,
                    secret: $secret:literal, django: $django:literal,
                    aliases: [$($alias:literal $(=> $implied:ident)?),*],
                    docs_type: $docs_type:literal,
                    docs_default: $docs_default:literal,
                    meaning: $meaning:literal,
                    status: $status:literal $(,)?
                },
            )*
        }
        inside_values {
            $(
                $(#[$pmeta:meta])*
                $pfield:ident => {
                    name: $pname:literal, kind: $pkind:ident, secret: $psecret:literal,
                    django: $pdjango:literal,
                    docs_type: $pdocs_type:literal,
                    docs_default: $pdocs_default:literal,
                    meaning: $pmeaning:literal,
                    status: $pstatus:literal $(,)?
                },
            )*
        }
    ) => {
        /// The whole configuration.
        ///
        /// An application can embed it in its own configuration (one table of its TOML, JSON
        /// or YAML file): the keys are the option names of the `.conf`/`.toml` sources
        /// (`session_redis_host`, django's `SESSION_REDIS_HOST`, any case), read by the same
        /// rules as those sources (a host list as `"a:1,b:2"`, a list of strings or a list of
        /// `[host, port]` pairs; durations in seconds), every key optional. An unknown key is
        /// an error naming it, with a suggestion. Not validated as a whole: `plan` does that.
        ///
        /// ```
        /// #[derive(serde::Deserialize)]
        /// struct AppConfig {
        ///     name: String,
        ///     session: session_core::SessionConfig,
        /// }
        ///
        /// let app: AppConfig = toml::from_str(r#"
        ///     name = "shop"
        ///     [session]
        ///     session_redis_host = "redis.internal"
        ///     SESSION_REDIS_PORT = 6380
        ///     SESSION_COOKIE_NAME = "sid"
        /// "#).unwrap();
        /// assert_eq!(app.session.port, 6380);
        /// assert_eq!(app.session.cookie_name.as_deref(), Some("sid"));
        ///
        /// let err = toml::from_str::<AppConfig>("name = \"x\"\n[session]\nhost = \"h\"").err().unwrap();
        /// assert!(err.to_string().contains("session_redis_host"), "{err}");
        /// ```
        ///
        /// `Debug` and `Display` never show passwords, and `Serialize` writes them as
        /// `"<redacted>"` (a URL with its password redacted): a serialized configuration is
        /// for display, and `validate` refuses one loaded back with `<redacted>` secrets.
        #[derive(Clone, PartialEq, serde::Serialize)]
        pub struct SessionConfig {
            $(
                $(#[$meta])*
                #[serde(rename = $name)]
                pub $field: $ty,
            )*
        }

        impl Default for SessionConfig {
            fn default() -> Self {
                Self {
                    $($field: $default,)*
                }
            }
        }

        impl fmt::Debug for SessionConfig {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("SessionConfig")
                    $(.field(stringify!($field), &debug_value!($show, &self.$field)))*
                    .finish()
            }
        }

        /// Which field of [`SessionConfig`] an option sets. Aliases map onto the same field,
        /// which is how a conflict between an option and its alias is found.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Field {
            $($field,)*
            $($(#[$pmeta])* $pfield,)*
        }

        /// Every canonical option name.
        pub(crate) static OPTIONS: &[names::Spec] = &[
            $(names::Spec {
                name: $name,
                field: Field::$field,
                kind: names::Kind::$kind,
                secret: $secret,
            },)*
            $(names::Spec {
                name: $pname,
                field: Field::$pfield,
                kind: names::Kind::$pkind,
                secret: $psecret,
            },)*
        ];

        /// The aliases (lowercase; lookups are case-insensitive).
        pub(crate) static ALIASES: &[names::Alias] = &[
            $($(names::Alias {
                name: $alias,
                target: $name,
                implies_sentinel: implies!($($implied)?),
            },)*)*
        ];

        /// The rows of the documentation's option table, in table order.
        #[cfg(test)]
        pub(crate) fn option_docs() -> Vec<options::OptionDoc> {
            vec![
                $(options::OptionDoc {
                    name: Some($name),
                    django: options::django_names($name, $django, &[$($alias),*]),
                    docs_type: $docs_type,
                    docs_default: $docs_default,
                    meaning: $meaning,
                    status: $status,
                },)*
                $(options::OptionDoc {
                    name: None,
                    django: options::django_names($pname, $pdjango, &[]),
                    docs_type: $pdocs_type,
                    docs_default: $pdocs_default,
                    meaning: $pmeaning,
                    status: $pstatus,
                },)*
            ]
        }

        impl SessionConfig {
            /// Sets a field from a parsed value; `Unset` (or a value of another kind, which
            /// the parser does not produce) restores the default.
            pub(crate) fn apply(&mut self, field: Field, setting: parse::Setting) {
                let default = Self::default();
                match field {
                    $(Field::$field => {
                        self.$field = match setting {
                            parse::Setting::$kind(v) => options::convert(v),
                            _ => default.$field,
                        }
                    })*
                    // Only meaningful inside another option's value: the sources reject it
                    // unless it is unset.
                    $(Field::$pfield => {})*
                }
            }

            /// The options that differ from the defaults as `(session_redis_*, value)` in
            /// config-file syntax, secrets redacted. `Display` prints these.
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                let default = Self::default();
                let mut out = Vec::new();
                $(
                    if let Some(v) = display::$show(&self.$field, &default.$field) {
                        out.push(($name, v));
                    }
                )*
                out
            }
        }
    };
}

/// A parsed value into its field: the value itself, or `Some` of it for an optional field.
pub(crate) fn convert<V, T: From<V>>(v: V) -> T {
    T::from(v)
}

/// The option table. Each entry: the field (doc line, serde attributes, name, type, default),
/// then its canonical name, the [`Kind`](super::names::Kind) its values are read as, the
/// `display.rs` function that shows it, whether it is secret, whether django-redis-sessions
/// reads it under its upper-case name, its aliases (`=> sentinel`: the alias implies sentinel
/// mode), and its documentation row (links relative to `docs/`).
///
/// `inside_values` lists the names that only exist inside another option's value
/// (`SESSION_REDIS_WEIGHT`, inside a pool member): they have no field, but are looked up, so
/// that the top level can reject them with the reason, and documented.
macro_rules! session_options {
    () => {
        define_options! {
            fields {
                /// `session_redis_mode`.
                mode: Mode = Mode::Redis => {
                    name: "session_redis_mode", kind: Mode, show: mode, secret: false, django: false,
                    aliases: [],
                    docs_type: "`redis`, `sentinel`, `cluster`, or `False`/`0`/`disabled`/`none`",
                    docs_default: "`redis`",
                    meaning: "Where sessions live; disabled = the file store",
                    status: "supported (`sentinel`: see [sentinel.md](sentinel.md); `cluster`: see [cluster.md](cluster.md): seed nodes in `session_redis_host`; `db` must be 0; `client_name`, `max_connections`, `health_check_interval` are errors; `single_connection_client` and `retry_on_timeout` have no effect)",
                },
                /// `session_redis_key_expire`, seconds; 0 = no expiry from this setting.
                key_expire: u64 = 0 => {
                    name: "session_redis_key_expire", kind: U64, show: changed, secret: false, django: false,
                    aliases: [],
                    docs_type: "integer seconds, 0–3153600000 (100 years)",
                    docs_default: "`0`",
                    meaning: "TTL set on every write; 0 = the framework's TTL applies",
                    status: "supported",
                },
                /// `session_redis_max_session_size`: the most bytes one session may hold (its
                /// keys plus their JSON values); 0 = unlimited.
                max_session_size: u64 = 65_536 => {
                    name: "session_redis_max_session_size", kind: U64, show: changed, secret: false, django: false,
                    aliases: [],
                    docs_type: "integer bytes, 0 to 536870912 (512 MiB)",
                    docs_default: "`65536` (64 KiB)",
                    meaning: "The most bytes one session may hold: its keys plus the JSON text of their values; 0 = unlimited",
                    status: "supported: a write that would leave a session larger, as its request sees the session, fails with `StoreError::TooLarge` and stores nothing (concurrent requests that each add keys to one session can together pass it: the check is the writer's, not Redis'); both framework crates answer it with 413 Payload Too Large. Above 512 MiB (Redis' limit for one value) is an error. The file store reads and writes no session file larger than the most a session of this size takes on disk (8 bytes per byte, for JSON's escapes, plus 256): a larger file is a corrupt session, kept for inspection and not read, so lowering the limit hides the sessions stored larger until it is raised again",
                },
                /// `session_redis_prefix`.
                prefix: String = "session:".into() => {
                    name: "session_redis_prefix", kind: Str, show: quoted, secret: false, django: true,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "`session:`",
                    meaning: "Prefix of session keys",
                    status: "supported",
                },
                /// `session_redis_index_key`: the session key whose value indexes sessions ("log
                /// this user out everywhere"); `None` = no index.
                #[serde(skip_serializing_if = "Option::is_none")]
                index_key: Option<String> = None => {
                    name: "session_redis_index_key", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "a session key: 1–64 of `A-Z a-z 0-9 _ . - :`",
                    docs_default: "unset (no index)",
                    meaning: "Index sessions by the value of this session key (such as `user`), to find or log out one user's sessions without a scan",
                    status: "supported on every backend (see [index.md](index.md)): `SessionStore::find_indexed` / `delete_indexed`, `sessionctl revoke --where KEY=VALUE`, `sessionctl reindex`, `sessionctl prune-index` (cron). ACL users also need `+zadd +zrange +zscore +zrem` on `~<prefix>index:*`",
                },
                /// `session_filestore_path`; `None` = [`SessionConfig::default_filestore_path`].
                #[serde(skip_serializing_if = "Option::is_none")]
                filestore_path: Option<PathBuf> = None => {
                    name: "session_filestore_path", kind: Path, show: path, secret: false, django: false,
                    aliases: [],
                    docs_type: "path",
                    docs_default: "see below",
                    meaning: "Root of the file store (disabled mode)",
                    status: "supported. Leave the directory to the store: it removes expired sessions itself, and an outside cleanup job that removes its old-looking `.lock` files breaks its locking",
                },
                /// `session_redis_url`: `redis://`, `rediss://`, `unix://` (or `redis+unix://`).
                #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serde_impl::url")]
                url: Option<String> = None => {
                    name: "session_redis_url", kind: Str, show: url, secret: false, django: true,
                    aliases: [],
                    docs_type: "`redis://`, `rediss://`, `unix://` (or `redis+unix://`) URL",
                    docs_default: "unset",
                    meaning: "Redis address as a URL",
                    status: r#"supported (see "URL rule"). `rediss://host:port/db` = TLS, as `session_redis_ssl = True`: the server certificate is checked against the system's trusted roots (OS store), or the `ssl_ca_*` options when set, and against the host name; the other `session_redis_ssl_*` options apply too. `rediss://host:port/db#insecure` turns both checks off (encrypted but unauthenticated: for tests only). The URL's port and db have the bounds of `session_redis_port` and `session_redis_db` (a start-up error otherwise)"#,
                },
                /// `session_redis_host` (alias `SESSION_REDIS_SENTINEL_LIST`): one host in redis mode,
                /// the sentinels in sentinel mode, the seed nodes in cluster mode. Empty = `localhost`
                /// in redis mode.
                #[serde(serialize_with = "serde_impl::hosts::serialize")]
                host: Vec<HostPort> = Vec::new() => {
                    name: "session_redis_host", kind: Hosts, show: hosts, secret: false, django: true,
                    aliases: ["session_redis_sentinel_list" => sentinel],
                    docs_type: "host list",
                    docs_default: "unset (= `localhost`)",
                    meaning: "Redis host (redis mode: one), sentinels (sentinel), seed nodes (cluster)",
                    status: "supported; `SENTINEL_LIST` also sets mode `sentinel` unless a mode is given",
                },
                /// `session_redis_port`: the port of hosts given without one (redis and cluster
                /// modes; refused when not 6379 where nothing would use it: beside a unix
                /// socket, beside hosts that all carry another port, or a sentinel without its
                /// own port).
                port: u16 = 6379 => {
                    name: "session_redis_port", kind: Port, show: changed, secret: false, django: true,
                    aliases: [],
                    docs_type: "1–65535",
                    docs_default: "`6379`",
                    meaning: "Port for hosts given without one (redis and cluster modes; a sentinel without a port means 26379)",
                    status: "supported; another value than `6379` is refused where nothing would use it: beside a unix socket, beside hosts that all carry another port of their own (the one host in redis mode, the seed nodes in cluster mode), and in sentinel mode when a sentinel is given without its own port",
                },
                /// `session_redis_username`.
                #[serde(skip_serializing_if = "Option::is_none")]
                username: Option<String> = None => {
                    name: "session_redis_username", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "unset",
                    meaning: "ACL user",
                    status: r#"supported. The user needs, on keys `~<prefix>*`: `+get +getex +set +getrange +strlen +append +rename +pexpire +pttl +persist +del +evalsha +eval +type` (without `+getex`, loads with sliding expiry send `GET` and `PEXPIRE` instead, one command more), and `+hgetall +hset +hdel +hlen` while sessions stored as hashes by earlier versions of this library remain, plus `+ping` for `health_check_interval`, `+client\|setname` for `client_name`, `+select` for a non-zero `db` (`CLIENT SETINFO` may be refused: its answer is ignored). A command or key the user may not touch fails the operation as *unavailable* with Redis' `NoPerm` message (a misconfiguration to fix, not a missing session). Without `session_redis_password` (here or in the URL, as in `redis://user@host`) the user logs in with an empty password (`AUTH user ""`), which a `nopass` user accepts and any other refuses: never the `default` user instead"#,
                },
                /// `session_redis_password`.
                #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serde_impl::secret")]
                password: Option<String> = None => {
                    name: "session_redis_password", kind: Str, show: secret, secret: true, django: true,
                    aliases: [],
                    docs_type: "string (secret)",
                    docs_default: "unset",
                    meaning: "Password (AUTH, or of the ACL user)",
                    status: r#"supported; never shown; a wrong one fails operations as *unavailable* with "Password authentication failed""#,
                },
                /// `session_redis_db`.
                db: i64 = 0 => {
                    name: "session_redis_db", kind: I64, show: changed, secret: false, django: true,
                    aliases: [],
                    docs_type: "integer 0–2147483647",
                    docs_default: "`0`",
                    meaning: "Database number",
                    status: "supported",
                },
                /// `session_redis_unix_socket_path` (alias `SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH`).
                #[serde(skip_serializing_if = "Option::is_none")]
                unix_socket_path: Option<PathBuf> = None => {
                    name: "session_redis_unix_socket_path", kind: Path, show: path, secret: false, django: false,
                    aliases: ["session_redis_unix_domain_socket_path"],
                    docs_type: "path",
                    docs_default: "unset",
                    meaning: "Connect through a unix socket (redis mode)",
                    status: "supported. A path longer than a unix socket address holds (107 bytes on Linux, 103 on macOS), here or in a `unix://` URL, is a start-up error naming the option (it could never be connected to): use a shorter path, such as a link to the socket",
                },
                /// `session_redis_socket_timeout`, seconds; `None` = no response timeout.
                #[serde(skip_serializing_if = "Option::is_none")]
                socket_timeout: Option<f64> = None => {
                    name: "session_redis_socket_timeout", kind: Secs, show: seconds, secret: false, django: true,
                    aliases: [],
                    docs_type: "seconds > 0, below 1e9",
                    docs_default: "unset = 5 s",
                    meaning: "Response timeout: an answer slower than this fails the operation as *unavailable, timed out* (also the longest wait for a free pooled connection)",
                    status: "supported",
                },
                /// `session_redis_socket_connect_timeout`, seconds; `None` = the client's default.
                #[serde(skip_serializing_if = "Option::is_none")]
                socket_connect_timeout: Option<f64> = None => {
                    name: "session_redis_socket_connect_timeout", kind: Secs, show: seconds, secret: false, django: false,
                    aliases: [],
                    docs_type: "seconds > 0, below 1e9",
                    docs_default: "unset = 2 s",
                    meaning: "Connect timeout: TCP connect plus the connection setup (AUTH/HELLO, SELECT)",
                    status: "supported",
                },
                /// `session_redis_max_connections`: pool size; `None` = the pool's default.
                #[serde(skip_serializing_if = "Option::is_none")]
                max_connections: Option<usize> = None => {
                    name: "session_redis_max_connections", kind: Usize, show: value, secret: false, django: false,
                    aliases: [],
                    docs_type: "integer 1–10000 (Redis' default `maxclients`)",
                    docs_default: "unset = one shared connection",
                    meaning: "Pool size: at most this many connections to the server (each multiplexed, one operation at a time); ignored when `single_connection_client` is true",
                    status: "supported",
                },
                /// `session_redis_single_connection_client`: one multiplexed connection, no pool.
                single_connection_client: bool = false => {
                    name: "session_redis_single_connection_client", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "One multiplexed connection shared by all requests instead of a pool (also the default without `max_connections`); remade by the next call after it broke",
                    status: "supported",
                },
                /// `session_redis_socket_keepalive`: TCP keepalive on every connection.
                socket_keepalive: bool = false => {
                    name: "session_redis_socket_keepalive", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "TCP keepalive (`SO_KEEPALIVE`) on every connection, tuned by the options below (unset knobs: the system's defaults)",
                    status: "supported; an error with a unix socket",
                },
                /// `session_redis_socket_keepalive_options`: keepalive knobs; need `socket_keepalive`.
                #[serde(skip_serializing_if = "Option::is_none")]
                socket_keepalive_options: Option<KeepaliveOptions> = None => {
                    name: "session_redis_socket_keepalive_options", kind: Keepalive, show: value, secret: false, django: false,
                    aliases: [],
                    docs_type: "keepalive dict",
                    docs_default: "unset / `{}`",
                    meaning: "`TCP_KEEPIDLE` (4, s, 1–32767), `TCP_KEEPINTVL` (5, s, 1–32767), `TCP_KEEPCNT` (6, 1–127), `TCP_USER_TIMEOUT` (18, ms, 0–4294967295)",
                    status: "supported with `socket_keepalive = True`; without it an error (redis-py would silently ignore them)",
                },
                /// `session_redis_encoding` (Python only: `utf-8` accepted).
                #[serde(skip_serializing_if = "Option::is_none")]
                encoding: Option<String> = None => {
                    name: "session_redis_encoding", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "`utf-8`",
                    meaning: "Python codec",
                    status: "Python-only: `utf-8`/`utf8` accepted (what Rust does), others rejected",
                },
                /// `session_redis_encoding_errors` (Python only: `strict` accepted).
                #[serde(skip_serializing_if = "Option::is_none")]
                encoding_errors: Option<String> = None => {
                    name: "session_redis_encoding_errors", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "`strict`",
                    meaning: "Python codec error handler",
                    status: "Python-only: `strict` accepted, others rejected",
                },
                /// `session_redis_charset` (old redis-py name of `encoding`).
                #[serde(skip_serializing_if = "Option::is_none")]
                charset: Option<String> = None => {
                    name: "session_redis_charset", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "`utf-8`",
                    meaning: "Old redis-py name of `encoding`",
                    status: "as `encoding`",
                },
                /// `session_redis_errors` (old redis-py name of `encoding_errors`).
                #[serde(skip_serializing_if = "Option::is_none")]
                errors: Option<String> = None => {
                    name: "session_redis_errors", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "`strict`",
                    meaning: "Old redis-py name of `encoding_errors`",
                    status: "as `encoding_errors`",
                },
                /// `session_redis_decode_responses` (Python only; no effect in Rust, any value accepted).
                decode_responses: bool = false => {
                    name: "session_redis_decode_responses", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Python str vs bytes replies",
                    status: "Python-only: any boolean accepted, no effect (Rust picks the type per call)",
                },
                /// `session_redis_retry_on_timeout`: retry a request once after a timeout.
                retry_on_timeout: bool = false => {
                    name: "session_redis_retry_on_timeout", kind: Bool, show: flag, secret: false, django: true,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "An operation that timed out is retried once, on a fresh connection (so a hung server costs up to twice `socket_timeout`). Safe: every operation is idempotent, `create` included (a create finding exactly the state it writes reports success)",
                    status: "supported",
                },
                /// `session_redis_ssl`: TLS to host/port, as a `rediss://` URL does.
                ssl: bool = false => {
                    name: "session_redis_ssl", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "TLS",
                    status: "supported: TLS to `session_redis_host`/`port`, as a `rediss://` URL does. An error with a `redis://`/`unix://` URL (write `rediss://`) or with a unix socket (TLS is TCP only). When TLS is off (`False` and no `rediss://` URL), the other `ssl_*` options are ignored with a warning in the log, as in redis-py",
                },
                /// `session_redis_ssl_keyfile`: client key (PEM) for mutual TLS, with `ssl_certfile`.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_keyfile: Option<PathBuf> = None => {
                    name: "session_redis_ssl_keyfile", kind: Path, show: path, secret: false, django: false,
                    aliases: [],
                    docs_type: "path",
                    docs_default: "unset",
                    meaning: "Client key (PEM) for mutual TLS",
                    status: "supported, with `ssl_certfile` (one without the other is an error naming both). Unencrypted PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`), or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2: PBKDF2 or scrypt with AES-CBC) with `ssl_password`. Legacy OpenSSL-encrypted keys (`Proc-Type: 4,ENCRYPTED`) are rejected: convert with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key`. Read at start-up; a key that does not match the certificate is a start-up error",
                },
                /// `session_redis_ssl_certfile`: client certificate (PEM) for mutual TLS, with `ssl_keyfile`.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_certfile: Option<PathBuf> = None => {
                    name: "session_redis_ssl_certfile", kind: Path, show: path, secret: false, django: false,
                    aliases: [],
                    docs_type: "path",
                    docs_default: "unset",
                    meaning: "Client certificate chain (PEM) for mutual TLS",
                    status: "supported, with `ssl_keyfile`; X.509 v3 certificates (rustls); read at start-up",
                },
                /// `session_redis_ssl_cert_reqs`: `required` and `optional` verify the server, `none` does not.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_cert_reqs: Option<String> = None => {
                    name: "session_redis_ssl_cert_reqs", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "`required`, `optional`, `none` (also `ssl.CERT_REQUIRED`, ...)",
                    docs_default: "`required`",
                    meaning: "Server certificate checks",
                    status: r#"supported. `required`: the server's certificate chain and host name are verified. `optional`: the same as `required` (a TLS server always presents a certificate, so Python's "verify if given" verifies). `none`: nothing is verified and no SNI is sent (redis-rs insecure TLS, like `rediss://...#insecure`): encrypted but unauthenticated; `ssl_check_hostname` and the CA options have no effect then. Other values invalid. `None` here means `none`, as in redis-py"#,
                },
                /// `session_redis_ssl_ca_certs`: PEM bundle of trusted CAs (replaces the system roots).
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_ca_certs: Option<PathBuf> = None => {
                    name: "session_redis_ssl_ca_certs", kind: Path, show: path, secret: false, django: false,
                    aliases: [],
                    docs_type: "path",
                    docs_default: "unset",
                    meaning: "CA bundle (PEM)",
                    status: "supported: the server certificate must chain to one of these CAs. **Replaces** the system roots (it does not add to them), as redis-rs's `TlsCertificates.root_cert` does; combined with `ssl_ca_path`/`ssl_ca_data`, all their CAs are trusted. Read at start-up: a missing or unreadable file, or one without a usable `BEGIN CERTIFICATE` block, is an error naming the option, the path and the OS error",
                },
                /// `session_redis_ssl_ca_path`: directory of PEM CA files (replaces the system roots).
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_ca_path: Option<PathBuf> = None => {
                    name: "session_redis_ssl_ca_path", kind: Path, show: path, secret: false, django: false,
                    aliases: [],
                    docs_type: "path",
                    docs_default: "unset",
                    meaning: "CA directory",
                    status: "supported: the certificates of every `*.pem`, `*.crt` and OpenSSL hash-named (`abcd1234.0`, as `c_rehash` makes) file of the directory (not its subdirectories), each file once; files without a certificate are skipped, a directory without any is an error. Replaces the system roots, as `ssl_ca_certs`",
                },
                /// `session_redis_ssl_ca_data`: PEM text or base64 DER of trusted CAs (replaces the system roots).
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_ca_data: Option<String> = None => {
                    name: "session_redis_ssl_ca_data", kind: Str, show: shortened, secret: false, django: false,
                    aliases: [],
                    docs_type: "PEM text, or base64 of a DER certificate",
                    docs_default: "unset",
                    meaning: "CA certificates inline",
                    status: "supported: PEM text (one or more certificates), or one DER certificate as base64 text (whitespace ignored), which is wrapped as PEM. Replaces the system roots, as `ssl_ca_certs`",
                },
                /// `session_redis_ssl_check_hostname`: false accepts a valid certificate for another name.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_check_hostname: Option<bool> = None => {
                    name: "session_redis_ssl_check_hostname", kind: Bool, show: boolean, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`True`",
                    meaning: "Verify the server name",
                    status: "supported. `False`: a certificate valid for any name is accepted, as long as it chains to a trusted CA (the chain is still verified). An error in sentinel mode for now: redis-rs cannot turn it off for the masters the sentinels name",
                },
                /// `session_redis_ssl_password`: password of an encrypted PKCS#8 `ssl_keyfile`.
                #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serde_impl::secret")]
                ssl_password: Option<String> = None => {
                    name: "session_redis_ssl_password", kind: Str, show: secret, secret: true, django: false,
                    aliases: [],
                    docs_type: "string (secret)",
                    docs_default: "unset",
                    meaning: "Password of an encrypted client key",
                    status: "supported: decrypts an encrypted PKCS#8 `ssl_keyfile` at start-up; a wrong password is a start-up error naming this option (value never shown) and saying the key could not be decrypted. With an unencrypted key it is ignored, with a warning in the log (Python's `ssl` module ignores it too); never shown",
                },
                /// `session_redis_ssl_validate_ocsp`. Rejected when true: rustls does not check OCSP.
                ssl_validate_ocsp: bool = false => {
                    name: "session_redis_ssl_validate_ocsp", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "OCSP check",
                    status: "rejected when `True`: rustls (under redis-rs) does not check OCSP and redis-rs takes no custom verifier. Instead: rely on short-lived server certificates and your CA's revocation (CRL) process, or put a TLS proxy that checks OCSP (stunnel, HAProxy) in front of Redis, and unset the option",
                },
                /// `session_redis_ssl_validate_ocsp_stapled`. Rejected when true, as above.
                ssl_validate_ocsp_stapled: bool = false => {
                    name: "session_redis_ssl_validate_ocsp_stapled", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Stapled OCSP check",
                    status: "rejected when `True`, same reason and same alternatives",
                },
                /// `session_redis_ssl_ocsp_context`. Rejected: a pyOpenSSL object.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_ocsp_context: Option<String> = None => {
                    name: "session_redis_ssl_ocsp_context", kind: Str, show: shortened, secret: false, django: false,
                    aliases: [],
                    docs_type: "—",
                    docs_default: "unset",
                    meaning: "A pyOpenSSL context object",
                    status: "rejected when set: a Python object with no meaning outside Python; unset it (for OCSP, see `ssl_validate_ocsp`)",
                },
                /// `session_redis_ssl_ocsp_expected_cert`. Rejected: no OCSP checks.
                #[serde(skip_serializing_if = "Option::is_none")]
                ssl_ocsp_expected_cert: Option<String> = None => {
                    name: "session_redis_ssl_ocsp_expected_cert", kind: Str, show: shortened, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "unset",
                    meaning: "Expected OCSP responder certificate",
                    status: "rejected when set, same reason and same alternatives",
                },
                /// `session_redis_health_check_interval`, seconds: `PING` a connection idle for longer
                /// before using it; 0/unset = never.
                #[serde(skip_serializing_if = "Option::is_none")]
                health_check_interval: Option<f64> = None => {
                    name: "session_redis_health_check_interval", kind: Secs, show: seconds, secret: false, django: false,
                    aliases: [],
                    docs_type: "seconds ≥ 0, below 1e9",
                    docs_default: "`0` = off",
                    meaning: "A connection unused for longer than this is checked with `PING` before use, and replaced if the check fails (e.g. dropped by a firewall); busy connections are never checked",
                    status: "supported",
                },
                /// `session_redis_client_name`: `CLIENT SETNAME` on every connection.
                #[serde(skip_serializing_if = "Option::is_none")]
                client_name: Option<String> = None => {
                    name: "session_redis_client_name", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string (printable ASCII, no spaces)",
                    docs_default: "unset",
                    meaning: "`CLIENT SETNAME` on every connection, including reconnects",
                    status: "supported",
                },
                /// `session_redis_master` (alias `SESSION_REDIS_SENTINEL_MASTER_ALIAS`): the master's
                /// name, sentinel mode only.
                #[serde(skip_serializing_if = "Option::is_none")]
                master: Option<String> = None => {
                    name: "session_redis_master", kind: Str, show: text, secret: false, django: false,
                    aliases: ["session_redis_sentinel_master_alias"],
                    docs_type: "string",
                    docs_default: "unset",
                    meaning: "Name of the master the sentinels monitor",
                    status: "supported in sentinel mode (required there); an error in other modes",
                },
                /// `session_redis_migrate_from_filestore`: at start-up, move the file store's sessions into
                /// Redis, each only if Redis does not have its id yet (see [`crate::migration`]).
                migrate_from_filestore: bool = false => {
                    name: "session_redis_migrate_from_filestore", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Move the file store's sessions (`session_filestore_path`) into Redis at start-up, each id only if Redis does not have it yet",
                    status: "supported: each live session is created in Redis with its remaining TTL (`key_expire` when it had none), then its file is removed (so a later logout cannot be undone by the next start-up); expired files are removed, corrupt ones kept and logged; entries that are no session file where the store keeps one (a session file in another shard than its id's, any other name) are left in place and logged as a count. When Redis is down the application starts anyway and the migration is retried every 5 s until it completes. One process migrates at a time (`.migration.lock` in the file store's directory). An error in disabled mode",
                },
                /// `session_redis_sentinel_username`: user for the sentinels themselves.
                #[serde(skip_serializing_if = "Option::is_none")]
                sentinel_username: Option<String> = None => {
                    name: "session_redis_sentinel_username", kind: Str, show: text, secret: false, django: false,
                    aliases: [],
                    docs_type: "string",
                    docs_default: "unset",
                    meaning: "User for the sentinels themselves",
                    status: "sentinel mode only; an error in other modes. Unset (with the password unset too): the sentinels get `username`/`password`, as Odoo's `session_redis` module does in its `sentinel_kwargs`",
                },
                /// `session_redis_sentinel_password`: password for the sentinels themselves.
                #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serde_impl::secret")]
                sentinel_password: Option<String> = None => {
                    name: "session_redis_sentinel_password", kind: Str, show: secret, secret: true, django: false,
                    aliases: [],
                    docs_type: "string (secret)",
                    docs_default: "unset",
                    meaning: "Password for the sentinels themselves",
                    status: "sentinel mode only; an error in other modes; never shown",
                },
                /// `session_redis_sentinel_read_from_replicas`: loads that do not touch the expiry go
                /// to a replica, writes to the master. Off by default: a load right after a write may
                /// not see it yet (replication is asynchronous). Sentinel mode only.
                sentinel_read_from_replicas: bool = false => {
                    name: "session_redis_sentinel_read_from_replicas", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Loads (without sliding expiry) go to a replica, writes to the master; to the master while no replica is healthy, back to a replica within about 5 s of one being healthy again",
                    status: "sentinel mode only; an error in other modes. Cost: a load right after a write may not see it (asynchronous replication)",
                },
                /// `session_redis_cluster_read_from_replicas`: loads that do not touch the expiry go to
                /// a replica of the slot's master, writes to the master. Off by default, for the same
                /// reason as in sentinel mode (a load right after a write may not see it). Cluster mode
                /// only.
                cluster_read_from_replicas: bool = false => {
                    name: "session_redis_cluster_read_from_replicas", kind: Bool, show: flag, secret: false, django: false,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Loads (without sliding expiry) go to a replica of the key's master, writes to the master",
                    status: "cluster mode only; an error in redis and sentinel modes. Same cost as in sentinel mode: a load right after a write may not see it",
                },
                /// `session_redis_pool` (alias `SESSION_REDIS_POOL`): sessions partitioned between these
                /// Redis servers by weighted rendezvous hashing of the session id (docs/pool.md).
                #[serde(skip_serializing_if = "Vec::is_empty")]
                pool: Vec<PoolMember> = Vec::new() => {
                    name: "session_redis_pool", kind: Pool, show: pool, secret: true, django: true,
                    aliases: [],
                    docs_type: "list of dicts (Python literal, or TOML array of tables)",
                    docs_default: "unset",
                    meaning: "Sessions partitioned between standalone Redis servers by weighted rendezvous hashing of the session id; each member (`SESSION_REDIS_HOST`/`_PORT`, `_UNIX_DOMAIN_SOCKET_PATH` or `_URL`, `_DB`, `_PASSWORD`, `_WEIGHT`) inherits every top-level option. Redis mode only; exclusive with the multi-backends and with a top-level address. See [pool.md](pool.md)",
                    status: "supported (value redacted: it may hold passwords)",
                },
                /// `session_redis_multi_backends` (alias `ACS_SESSION_MULTISESSIONS_POOL`): backends with
                /// read / write / delete modes (docs/pool.md).
                #[serde(skip_serializing_if = "Vec::is_empty")]
                multi_backends: Vec<MultiBackendConfig> = Vec::new() => {
                    name: "session_redis_multi_backends", kind: Multi, show: multi, secret: true, django: false,
                    aliases: ["acs_session_multisessions_pool"],
                    docs_type: r#"list of dicts `{"backend": name, "modes": [...], "setting": {...}}` (Python literal, or TOML array of tables)"#,
                    docs_default: "unset",
                    meaning: "Several backends with `read` / `write` / `delete` modes (acs_redis_multi_sessions), for moving sessions between engines; each backend's `setting` is a complete configuration of its own (any `SESSION_REDIS_*` key, `SESSION_REDIS_MODE = False` for the file store). Exclusive with the pool and with a top-level address. See [pool.md](pool.md)",
                    status: "supported (value redacted)",
                },
                /// `session_cookie_name` (django's `SESSION_COOKIE_NAME`); unset: `id`.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_name: Option<String> = None => {
                    name: "session_cookie_name", kind: Str, show: text, secret: false, django: true,
                    aliases: [],
                    docs_type: "a cookie name (letters, digits and `!#$%&'*+-.^_`|~`), at most 64 bytes",
                    docs_default: "`id` (actix-session's, so both frameworks share the cookie; django's is `sessionid`)",
                    meaning: "The session cookie's name",
                    status: "supported by the framework helpers (`SessionLayer::from_config`, `session_actix::middleware_from_config`) and the demos",
                },
                /// `session_cookie_age` (django's `SESSION_COOKIE_AGE`), seconds; unset: one day.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_age: Option<u64> = None => {
                    name: "session_cookie_age", kind: U64, show: value, secret: false, django: true,
                    aliases: [],
                    docs_type: "integer seconds, 1 to 3153600000 (100 years)",
                    docs_default: "unset: a store TTL of one day and a cookie that ends with the browser (actix-session's defaults; django's is 1209600, two weeks)",
                    meaning: "How long a session lives: the store TTL of each write, and the cookie's `Max-Age` unless `session_expire_at_browser_close`. `session_redis_key_expire`, when set, still decides the store TTL",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_cookie_domain` (django's `SESSION_COOKIE_DOMAIN`); unset: none.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_domain: Option<String> = None => {
                    name: "session_cookie_domain", kind: Str, show: text, secret: false, django: true,
                    aliases: [],
                    docs_type: "a domain name, at most 253 bytes",
                    docs_default: "unset: the cookie goes back only to the host that set it",
                    meaning: "The cookie's `Domain`",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_cookie_path` (django's `SESSION_COOKIE_PATH`); unset: `/`.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_path: Option<String> = None => {
                    name: "session_cookie_path", kind: Str, show: text, secret: false, django: true,
                    aliases: [],
                    docs_type: "a path starting with `/`, at most 1024 bytes, no `;`, `,` or control characters",
                    docs_default: "`/`",
                    meaning: "The cookie's `Path`",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_cookie_secure` (django's `SESSION_COOKIE_SECURE`); unset: true.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_secure: Option<bool> = None => {
                    name: "session_cookie_secure", kind: Bool, show: boolean, secret: false, django: true,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`True` (django's is `False`)",
                    meaning: "The cookie's `Secure` flag: sent over https only (browsers also send it to `http://127.0.0.1` and `http://localhost`)",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_cookie_httponly` (django's `SESSION_COOKIE_HTTPONLY`); unset: true.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_httponly: Option<bool> = None => {
                    name: "session_cookie_httponly", kind: Bool, show: boolean, secret: false, django: true,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`True`",
                    meaning: "The cookie's `HttpOnly` flag: hidden from scripts",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_cookie_samesite` (django's `SESSION_COOKIE_SAMESITE`); unset: `Lax`.
                #[serde(skip_serializing_if = "Option::is_none")]
                cookie_samesite: Option<String> = None => {
                    name: "session_cookie_samesite", kind: Str, show: text, secret: false, django: true,
                    aliases: [],
                    docs_type: "`Lax`, `Strict` or `'None'` (any case; quoted, since a bare `None` is Python's: unset); `None` needs `session_cookie_secure`",
                    docs_default: "`Lax`",
                    meaning: "The cookie's `SameSite` attribute",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_expire_at_browser_close` (django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`);
                /// unset: true without `session_cookie_age`, false with it.
                #[serde(skip_serializing_if = "Option::is_none")]
                expire_at_browser_close: Option<bool> = None => {
                    name: "session_expire_at_browser_close", kind: Bool, show: boolean, secret: false, django: true,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "unset: `True` without `session_cookie_age`, `False` with it (django's is `False`)",
                    meaning: "A cookie without `Max-Age`, which the browser drops when it closes; the store TTL still applies",
                    status: "supported by the framework helpers and the demos",
                },
                /// `session_save_every_request` (django's `SESSION_SAVE_EVERY_REQUEST`).
                save_every_request: bool = false => {
                    name: "session_save_every_request", kind: Bool, show: flag, secret: false, django: true,
                    aliases: [],
                    docs_type: "boolean",
                    docs_default: "`False`",
                    meaning: "Every request that carries a session cookie refreshes the session's store TTL and re-sends the cookie, even when nothing changed (a load and a `PEXPIRE` when the handler does not touch the session: the load tells the session's own expiry)",
                    status: "supported by the axum layer (`SessionLayer::from_config`); with actix-session, its `TtlExtensionPolicy::OnEveryRequest` (set by `session_actix::middleware_from_config`)",
                },
            }
            inside_values {
                /// django-redis-sessions' pool weight: only inside a pool member; rejected at
                /// the top level.
                weight => {
                    name: "session_redis_weight", kind: Raw, secret: false, django: true,
                    docs_type: "integer 1–4294967295",
                    docs_default: "1",
                    meaning: "Weight of a pool member: only inside a `SESSION_REDIS_POOL` member; at the top level it is an error",
                    status: "supported inside a pool member",
                },
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The files with the option table, and what their links to `docs/` files start with.
    const TABLES: &[(&str, &str)] = &[("docs/configuration.md", ""), ("README.md", "docs/")];
    const HEADER: &str = "| option (env: upper case) |";

    /// The documentation's option tables are the table of this file, rendered; with
    /// `UPDATE_DOCS=1` the test rewrites them instead of failing.
    #[test]
    fn docs_table() {
        let rows: Vec<_> = super::super::option_docs();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let update = std::env::var_os("UPDATE_DOCS").is_some();
        for (file, link_base) in TABLES {
            let path = root.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.split('\n').collect();
            let header = lines
                .iter()
                .position(|l| l.starts_with(HEADER))
                .unwrap_or_else(|| panic!("{file}: no line starting with `{HEADER}`"));
            // The header row, the `|---|` row, then the rows up to the first line that is not one.
            let start = header + 2;
            let end = start
                + lines[start..]
                    .iter()
                    .take_while(|l| l.starts_with('|'))
                    .count();
            let wanted: Vec<String> = rows.iter().map(|r| r.markdown_row(link_base)).collect();
            if lines[start..end] == wanted[..] {
                continue;
            }
            if update {
                let mut new: Vec<&str> = lines[..start].to_vec();
                new.extend(wanted.iter().map(String::as_str));
                new.extend(&lines[end..]);
                std::fs::write(&path, new.join("\n")).unwrap();
                continue;
            }
            let first = (0..wanted.len().max(end - start))
                .find(|i| lines.get(start + i).copied() != wanted.get(*i).map(String::as_str))
                .unwrap_or(0);
            panic!(
                "the option table of {file} differs from the one in \
                 crates/session-core/src/config/options.rs, first at row {}:\n  file:  {}\n  table: {}\n\
                 Edit the table in options.rs (not the file), then regenerate both files with:\n  \
                 UPDATE_DOCS=1 cargo test -p session-core --lib docs_table",
                first + 1,
                lines.get(start + first).copied().unwrap_or("(no row)"),
                wanted.get(first).map(String::as_str).unwrap_or("(no row)"),
            );
        }
    }
}
