//! The environment a demo reads: the process's, or one given by a test that runs demos with
//! different settings side by side in one process (setting process variables from a test
//! would race every other test thread of the binary).

/// The variables a demo reads its settings from (`SESSION_SECRET`, `SESSION_COOKIE_SECURE`,
/// `SESSION_CONFIG`, `SESSION_REDIS_*`, ...).
///
/// ```
/// use session_e2e::DemoEnv;
///
/// let env = DemoEnv::from_vars([("SESSION_COOKIE_SECURE", "true")]);
/// assert_eq!(env.get("SESSION_COOKIE_SECURE"), Some("true"));
/// assert_eq!(env.get("SESSION_SECRET"), None);
/// ```
#[derive(Clone, Default)]
pub struct DemoEnv {
    vars: Vec<(String, String)>,
}

impl std::fmt::Debug for DemoEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values hold secrets (`SESSION_SECRET`, passwords in `SESSION_REDIS_URL`): names only.
        f.debug_struct("DemoEnv")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl DemoEnv {
    /// The process environment. A variable of the demos (its name starts with `SESSION_`)
    /// whose value is not UTF-8 is an error naming it, as session-core's own
    /// `SessionConfig::from_env` reports; other such variables are left out.
    pub fn process() -> Result<Self, String> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            match value.into_string() {
                Ok(value) => vars.push((name.to_owned(), value)),
                Err(_) if name.to_ascii_uppercase().starts_with("SESSION_") => {
                    return Err(format!(
                        "{name}: the value is not UTF-8; expected a UTF-8 value"
                    ))
                }
                Err(_) => {}
            }
        }
        Ok(Self { vars })
    }

    /// Exactly these variables, as if they were the whole environment.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name` (exact, case-sensitive, as `std::env::var`), if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        // The last one wins, as a later `export` would.
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The names of every variable.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }

    /// Every variable, for session-core's `SessionConfig::from_env_vars`.
    pub fn vars(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.vars.iter().cloned()
    }
}
