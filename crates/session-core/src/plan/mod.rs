//! The typed plan: a [`SessionConfig`] turned, once, into what to build.
//!
//! `SessionConfig` is the option bag in the format users of Odoo's `session_redis` and of
//! django-redis-sessions know: about fifty flat options, most of which apply to one topology
//! only. [`SessionConfig::plan`] is the one place that checks the bag, applies the defaults
//! and reads the TLS files. Its result holds, for each kind of backend, only the fields that
//! apply to it (as fred's `ServerConfig` does), with durations and sizes already defaulted, so
//! nothing downstream decides the topology again or builds a [`ConfigError`]:
//! [`backends::build`](crate::backends::build) is one `match` over [`BackendPlan`].
//!
//! ```
//! use session_core::{plan::BackendPlan, SessionConfig};
//!
//! let config = SessionConfig::from_sources(None, [("SESSION_REDIS_MODE", "False")]).unwrap();
//! let plan = config.plan().unwrap();
//! assert!(matches!(plan.backend, BackendPlan::File(_)));
//! ```

mod cookie;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "tls")]
mod tls;

use std::path::PathBuf;

pub use self::cookie::{CookiePlan, SameSitePolicy, DEFAULT_SESSION_TTL};
#[cfg(feature = "cluster")]
pub use self::redis::ClusterPlan;
#[cfg(feature = "redis")]
pub use self::redis::{
    Auth, ConnectionPlan, PoolMemberPlan, PoolPlan, RedisPlan, Strategy, Topology,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_SOCKET_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT,
};
#[cfg(feature = "sentinel")]
pub use self::redis::{SentinelPlan, DEFAULT_SENTINEL_PORT};
#[cfg(feature = "tls")]
pub use self::tls::TlsPlan;

use crate::{
    config::{BackendMode, Mode},
    ConfigError, SessionConfig, TtlRule,
};

/// Everything a [`SessionStore`](crate::SessionStore) is built from.
#[derive(Debug)]
#[non_exhaustive]
pub struct Plan {
    /// Where sessions live.
    pub backend: BackendPlan,
    /// `session_redis_key_expire` as a rule.
    pub ttl: TtlRule,
    /// `session_redis_migrate_from_filestore`: the file store whose sessions move into
    /// `backend` at start-up.
    pub migrate_from: Option<FilePlan>,
    /// `session_redis_max_session_size`: the most bytes one session may hold; `None` when 0
    /// (unlimited).
    pub max_session_size: Option<usize>,
    /// The `session_cookie_*` settings, for the framework crates.
    pub cookie: CookiePlan,
}

/// One backend, with only the fields its kind uses.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendPlan {
    /// In process memory (never from a configuration; for tests and quick starts).
    Memory,
    /// The file store (`session_redis_mode = False`).
    File(FilePlan),
    /// One Redis deployment: standalone, Sentinel or Cluster.
    #[cfg(feature = "redis")]
    Redis(Box<RedisPlan>),
    /// `session_redis_pool`: sessions partitioned between Redis servers.
    #[cfg(feature = "redis")]
    Pool(PoolPlan),
    /// `session_redis_multi_backends`: backends with read / write / delete modes.
    Multi(MultiPlan),
}

impl BackendPlan {
    /// Makes every storing backend of the plan keep the index of `key`
    /// (`session_redis_index_key`, one for the whole store: each pool member and each
    /// backend of a multi-backend keeps the entries of the sessions it stores).
    pub fn set_index_key(&mut self, key: &str) {
        match self {
            BackendPlan::Memory => {}
            BackendPlan::File(file) => file.index_key = Some(key.to_owned()),
            #[cfg(feature = "redis")]
            BackendPlan::Redis(redis) => redis.index_key = Some(key.to_owned()),
            #[cfg(feature = "redis")]
            BackendPlan::Pool(pool) => {
                for member in &mut pool.members {
                    member.redis.index_key = Some(key.to_owned());
                }
            }
            BackendPlan::Multi(multi) => {
                for member in &mut multi.backends {
                    member.plan.set_index_key(key);
                }
            }
        }
    }
}

/// The file store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    /// Its root directory (`session_filestore_path`, or the default).
    pub root: PathBuf,
    /// `session_redis_index_key`: the session key whose values index sessions.
    pub index_key: Option<String>,
    /// `session_redis_max_session_size` (`None` when 0): bounds the files the store reads
    /// and writes ([`FileBackend::with_max_session_size`](crate::backends::file::FileBackend::with_max_session_size)).
    pub max_session_size: Option<usize>,
}

/// `session_redis_multi_backends`.
#[derive(Debug)]
pub struct MultiPlan {
    /// The backends, in the order loads ask them.
    pub backends: Vec<MultiMemberPlan>,
    /// The rule for sessions a load copies into the write backends.
    pub ttl: TtlRule,
}

/// One backend of a [`MultiPlan`].
#[derive(Debug)]
pub struct MultiMemberPlan {
    /// Its name, unique, as in errors and health reports.
    pub name: String,
    /// Its modes.
    pub modes: Vec<BackendMode>,
    /// What it is.
    pub plan: BackendPlan,
}

impl SessionConfig {
    /// Checks the configuration ([`validate`](Self::validate)), applies the defaults and
    /// reads the TLS files: the one step between the option bag and the backends. Nothing is
    /// connected.
    ///
    /// A configuration that asks for a backend whose cargo feature was compiled out
    /// (`sentinel`, `cluster`, `tls`, `redis`, `file`) is an error naming the feature.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        self.validate()?;
        let ttl = TtlRule::new(self.key_expire_duration());
        let mut backend = backend(self, ttl)?;
        if let Some(key) = &self.index_key {
            backend.set_index_key(key);
        }
        let limit = max_session_size(self);
        limit_files(&mut backend, limit);
        Ok(Plan {
            backend,
            ttl,
            // The file store's own index (if it kept one), for lookups while sessions move.
            migrate_from: self.migrate_from_filestore.then(|| FilePlan {
                index_key: self.index_key.clone(),
                max_session_size: limit,
                ..file(self)
            }),
            max_session_size: limit,
            cookie: self.cookie_plan()?,
        })
    }
}

/// The backend of a validated configuration: the multi-backend when
/// `session_redis_multi_backends` is set, else the pool when `session_redis_pool` is set (the
/// two are exclusive), else Redis in its mode, else the file store.
fn backend(config: &SessionConfig, ttl: TtlRule) -> Result<BackendPlan, ConfigError> {
    if !config.multi_backends.is_empty() {
        let mut backends = Vec::with_capacity(config.multi_backends.len());
        for b in &config.multi_backends {
            // Each backend's own `key_expire` is refused by `validate`: the rule is global.
            let plan = backend(&b.config, ttl).map_err(|mut e| {
                e.key = format!("session_redis_multi_backends[{:?}].{}", b.name, e.key);
                e
            })?;
            backends.push(MultiMemberPlan {
                name: b.name.clone(),
                modes: b.modes.clone(),
                plan,
            });
        }
        return Ok(BackendPlan::Multi(MultiPlan { backends, ttl }));
    }
    if !config.pool.is_empty() {
        #[cfg(feature = "redis")]
        return redis::pool(config).map(BackendPlan::Pool);
        #[cfg(not(feature = "redis"))]
        return Err(ConfigError::feature_disabled(
            "session_redis_pool",
            "(set)",
            "redis",
        ));
    }
    match config.mode {
        Mode::Disabled => {
            if cfg!(feature = "file") {
                Ok(BackendPlan::File(file(config)))
            } else {
                Err(ConfigError::feature_disabled(
                    "session_redis_mode",
                    "False",
                    "file",
                ))
            }
        }
        #[cfg(feature = "redis")]
        Mode::Redis | Mode::Sentinel | Mode::Cluster => {
            redis::redis(config).map(|p| BackendPlan::Redis(Box::new(p)))
        }
        #[cfg(not(feature = "redis"))]
        mode => Err(ConfigError::feature_disabled(
            "session_redis_mode",
            mode.as_str(),
            "redis",
        )),
    }
}

fn file(config: &SessionConfig) -> FilePlan {
    FilePlan {
        root: config.filestore_path(),
        index_key: None,
        // The store's limit, the top-level one (`limit_files`), not a multi-backend
        // member's own setting.
        max_session_size: None,
    }
}

/// Gives every file store of `plan` the store's `session_redis_max_session_size`.
fn limit_files(plan: &mut BackendPlan, limit: Option<usize>) {
    match plan {
        BackendPlan::File(file) => file.max_session_size = limit,
        BackendPlan::Multi(multi) => {
            for member in &mut multi.backends {
                limit_files(&mut member.plan, limit);
            }
        }
        _ => {}
    }
}

/// `session_redis_max_session_size` as a limit: `None` when 0 (unlimited).
fn max_session_size(config: &SessionConfig) -> Option<usize> {
    // `validate` bounds it well below usize::MAX.
    (config.max_session_size > 0)
        .then(|| usize::try_from(config.max_session_size).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(pairs: &[(&str, &str)]) -> Result<Plan, ConfigError> {
        SessionConfig::builder()
            .env(pairs.iter().copied())
            .build()?
            .plan()
    }

    /// A feature, the environment that needs it, and the option its error names.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    /// Each backend's option names its cargo feature when the build left it out (run by CI
    /// with `--no-default-features` and with each feature alone).
    #[test]
    fn a_compiled_out_backend_names_its_feature() {
        let cases: &[Case] = &[
            ("redis", &[], "session_redis_mode"),
            (
                "file",
                &[("SESSION_REDIS_MODE", "False")],
                "session_redis_mode",
            ),
            (
                "sentinel",
                &[
                    ("SESSION_REDIS_SENTINEL_LIST", "[('127.0.0.1', 26379)]"),
                    ("SESSION_REDIS_SENTINEL_MASTER_ALIAS", "mymaster"),
                ],
                "session_redis_mode",
            ),
            (
                "cluster",
                &[
                    ("SESSION_REDIS_MODE", "cluster"),
                    ("SESSION_REDIS_HOST", "127.0.0.1:7000"),
                ],
                "session_redis_mode",
            ),
            ("tls", &[("SESSION_REDIS_SSL", "True")], "session_redis_ssl"),
            (
                "tls",
                &[("SESSION_REDIS_URL", "rediss://:hunter2@127.0.0.1:6380")],
                "session_redis_url",
            ),
        ];
        let enabled = |feature: &str| match feature {
            "redis" => cfg!(feature = "redis"),
            "file" => cfg!(feature = "file"),
            "sentinel" => cfg!(feature = "sentinel"),
            "cluster" => cfg!(feature = "cluster"),
            _ => cfg!(feature = "tls"),
        };
        for (feature, pairs, key) in cases {
            let result = plan_of(pairs);
            // Sentinel, cluster and TLS need the redis feature first.
            let needs = if *feature == "file" { "file" } else { "redis" };
            if !enabled(needs) {
                let err = result.unwrap_err();
                assert!(
                    err.expected.contains(&format!("`{needs}` cargo feature")),
                    "{err}"
                );
                continue;
            }
            if enabled(feature) {
                assert!(result.is_ok(), "{feature}: {:?}", result.err());
                continue;
            }
            let err = result.unwrap_err();
            assert_eq!(err.key, *key, "{err}");
            assert_eq!(
                err.kind,
                crate::ConfigErrorKind::FeatureDisabled { feature },
                "{err}"
            );
            assert!(
                err.expected.contains(&format!("`{feature}` cargo feature")),
                "{err}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn the_plan_holds_only_what_its_kind_uses() {
        let plan = plan_of(&[("SESSION_REDIS_KEY_EXPIRE", "60")]);
        if !cfg!(feature = "redis") {
            return;
        }
        let plan = plan.unwrap();
        assert_eq!(
            plan.ttl.key_expire(),
            Some(std::time::Duration::from_secs(60))
        );
        assert!(plan.migrate_from.is_none());
        #[cfg(feature = "redis")]
        {
            let BackendPlan::Redis(redis) = plan.backend else {
                panic!("a Redis plan: {:?}", plan.backend);
            };
            assert!(matches!(redis.topology, Topology::Standalone(_)));
            assert_eq!(redis.connection, ConnectionPlan::default());
        }
    }
}
