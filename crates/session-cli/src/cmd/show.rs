//! `sessionctl show ID`: where a session is, its keys, their sizes and its TTL.

use std::path::Path;

use serde::Serialize;
use session_core::SessionId;

use crate::{args::ShowArgs, failure::Failure, load, parts, text::printable};

#[derive(Serialize)]
struct Shown {
    part: String,
    /// Remaining lifetime in milliseconds; `null`: no expiry.
    ttl_ms: Option<u64>,
    keys: Vec<Key>,
}

#[derive(Serialize)]
struct Key {
    key: String,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// Reads the session from every part (without touching it, and without moving it between
/// the backends of a multi-backend); fails when no part has it.
pub async fn run(config: Option<&Path>, json: bool, args: ShowArgs) -> Result<(), Failure> {
    let id = crate::ids::one(args.id.as_deref(), args.ids_from.as_ref())?;
    let (_config, plan) = load::app_config(config)?;
    let mut shown = Vec::new();
    for part in parts::parts(&plan.backend)? {
        let found = part
            .backend
            .load_with_ttl(&id)
            .await
            .map_err(|e| Failure::store(e).context(&part.name))?;
        let Some((state, ttl)) = found else { continue };
        let mut keys: Vec<Key> = state
            .into_iter()
            .map(|(key, value)| Key {
                bytes: value.len(),
                value: args.values.then_some(value),
                key,
            })
            .collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        shown.push(Shown {
            part: part.name.clone(),
            ttl_ms: ttl.map(|t| t.as_millis() as u64),
            keys,
        });
    }
    if shown.is_empty() {
        return Err(Failure::failed(
            "no such session in any part of the configured backend (expired, revoked, or another configuration)",
        ));
    }
    if json {
        out!("{}", crate::text::json_pretty(&shown))?;
        return Ok(());
    }
    for s in &shown {
        let ttl = s.ttl_ms.map_or("no expiry".to_owned(), |ms| {
            format!("{:.1} s", ms as f64 / 1000.0)
        });
        // A part's name holds the configuration's text (a multi-backend's backend names).
        out!("part: {}", printable(&s.part))?;
        out!("ttl:  {ttl}")?;
        out!("keys: {}", s.keys.len())?;
        // Keys and values are whatever a client stored (an old hash layout's values are
        // raw bytes, not JSON): escaped, so that none can drive the terminal (--json
        // output is escaped too, as JSON: `crate::text::json`).
        for k in &s.keys {
            let key = printable(&k.key);
            match &k.value {
                Some(v) => out!("  {key:<24} {:>8} B  {}", k.bytes, printable(v))?,
                None => out!("  {key:<24} {:>8} B", k.bytes)?,
            }
        }
    }
    Ok(())
}

/// A session id from the command line; the error never repeats it.
pub fn parse_id(text: &str) -> Result<SessionId, Failure> {
    SessionId::parse(text.trim()).map_err(|e| Failure::usage(format!("{e} (the session id given)")))
}
