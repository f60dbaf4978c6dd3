//! `session_redis_pool`: sessions partitioned between Redis servers by session id.
//!
//! Every operation on a session goes to one member, chosen by **weighted rendezvous hashing**
//! (highest random weight) of the id: each member scores `-weight / ln(u)`, where `u` in (0, 1)
//! comes from the 64-bit XXH3 hash of the member's [identity](crate::config::PoolMember::identity)
//! and the id, and the highest score wins. Each member wins a share of the ids proportional to
//! its weight; adding a member moves only the ids it now wins (about its weight share), and
//! removing one moves only its own ids. The choice depends on the identity (the address), not
//! on the member's position in the list, so reordering the configuration moves nothing.
//!
//! The id exists before the session is created, so a new session is written to the member that
//! later loads it.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::{
    future::{join_all, BoxFuture},
    FutureExt,
};

use crate::backend::scatter;
use xxhash_rust::xxh3::xxh3_64;

use super::redis::RedisBackend;
use crate::{
    plan::{BackendPlan, PoolPlan},
    BackendHealth, Changes, ConfigError, IndexMember, IndexName, LoadedState, Retired,
    SessionBackend, SessionConfig, SessionId, SessionState, StoreError, Version,
};

const NAME: &str = "pool";

struct Member {
    identity: String,
    weight: u32,
    backend: Arc<dyn SessionBackend>,
}

/// Sessions spread over several backends (normally Redis servers) by weighted rendezvous
/// hashing of the session id.
pub struct PoolBackend {
    members: Vec<Member>,
}

impl std::fmt::Debug for PoolBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.members
                    .iter()
                    .map(|m| format!("{} (weight {})", m.identity, m.weight)),
            )
            .finish()
    }
}

/// The rendezvous score of one member for one id: `-weight / ln(u)`.
///
/// The hashed bytes are the identity's length (8 bytes, little endian), the identity and the
/// id, so no two (identity, id) pairs hash the same bytes.
pub fn score(identity: &str, weight: u32, id: &str) -> f64 {
    let mut bytes = Vec::with_capacity(8 + identity.len() + id.len());
    bytes.extend_from_slice(&(identity.len() as u64).to_le_bytes());
    bytes.extend_from_slice(identity.as_bytes());
    bytes.extend_from_slice(id.as_bytes());
    let h = xxh3_64(&bytes);
    // The top 53 bits, centred in their interval: u is never 0 nor 1, so ln(u) < 0.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / u.ln()
}

impl PoolBackend {
    /// A pool of `(identity, weight, backend)` members. Identities must be unique and stable
    /// (they decide where each session lives); weights are ≥ 1.
    ///
    /// # Panics
    /// When `members` is empty or a weight is 0 ([`from_config`](Self::from_config) validates
    /// both).
    pub fn new(members: Vec<(String, u32, Arc<dyn SessionBackend>)>) -> Self {
        assert!(!members.is_empty(), "a pool needs at least one member");
        Self {
            members: members
                .into_iter()
                .map(|(identity, weight, backend)| {
                    assert!(weight >= 1, "pool weights are ≥ 1");
                    Member {
                        identity,
                        weight,
                        backend,
                    }
                })
                .collect(),
        }
    }

    /// The pool the configuration's `session_redis_pool` describes: a shorthand for
    /// [`SessionConfig::plan`] then [`from_plan`](Self::from_plan).
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match config.plan()?.backend {
            BackendPlan::Pool(plan) => Self::from_plan(&plan),
            _ => Err(ConfigError::invalid(
                "session_redis_pool",
                "[]",
                "one or more members",
            )),
        }
    }

    /// One Redis backend per member, each with its own connections. Nothing is connected.
    pub fn from_plan(plan: &PoolPlan) -> Result<Self, ConfigError> {
        let mut members = Vec::with_capacity(plan.members.len());
        for (i, m) in plan.members.iter().enumerate() {
            let backend = RedisBackend::from_plan(&m.redis).map_err(|mut e| {
                e.key = format!("session_redis_pool[{i}].{}", e.key);
                e
            })?;
            members.push((
                m.identity.clone(),
                m.weight,
                Arc::new(backend) as Arc<dyn SessionBackend>,
            ));
        }
        Ok(Self::new(members))
    }

    /// The identities of the members, in configured order.
    pub fn identities(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.identity.as_str()).collect()
    }

    /// The identity of the member that holds `id`.
    pub fn route(&self, id: &SessionId) -> &str {
        &self.member(id).identity
    }

    fn member(&self, id: &SessionId) -> &Member {
        &self.members[self.owner(id)]
    }

    /// The index of the member that holds `id`: the highest score (the first on a tie).
    fn owner(&self, id: &SessionId) -> usize {
        let mut best = 0;
        let mut best_score = f64::NEG_INFINITY;
        for (i, m) in self.members.iter().enumerate() {
            let s = score(&m.identity, m.weight, id.as_str());
            if s > best_score {
                best = i;
                best_score = s;
            }
        }
        best
    }
}

impl PoolBackend {
    /// A batch operation on `items` (each with the id `id_of` gives): every member that owns
    /// some of them gets those in one call of `op`, all members at once; one answer per
    /// item, in order, errors naming their member. A member that owns none is not called:
    /// its empty call still waited for a connection, so a member that does not answer held
    /// up every batch (each move of a multi-backend) of sessions that live on the others.
    async fn per_member<T: Clone, R>(
        &self,
        items: &[T],
        id_of: fn(&T) -> &SessionId,
        op: impl Fn(Arc<dyn SessionBackend>, Vec<T>) -> BoxFuture<'static, Vec<Result<R, StoreError>>>,
    ) -> Vec<Result<R, StoreError>> {
        let groups = self.positions(items.iter().map(id_of));
        let answers = join_all(groups.iter().zip(&self.members).map(|(positions, m)| {
            let call = (!positions.is_empty()).then(|| {
                let batch = positions.iter().map(|&p| items[p].clone()).collect();
                op(Arc::clone(&m.backend), batch)
            });
            async move {
                match call {
                    Some(call) => tagged(m, call.await),
                    None => Vec::new(),
                }
            }
        }))
        .await;
        scatter(items.len(), &groups, answers)
    }

    /// For each member (in order), the positions in `ids` of the ids it owns.
    fn positions<'a>(&self, ids: impl Iterator<Item = &'a SessionId>) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.members.len()];
        for (position, id) in ids.enumerate() {
            let owner = self.owner(id);
            groups[owner].push(position);
        }
        groups
    }
}

/// A member's batch answers with the member named in their errors.
fn tagged<R>(m: &Member, answers: Vec<Result<R, StoreError>>) -> Vec<Result<R, StoreError>> {
    answers
        .into_iter()
        .map(|answer| answer.map_err(|e| tag(m, e)))
        .collect()
}

/// Names the member in an error, so an operator sees which server is down.
fn tag(member: &Member, e: StoreError) -> StoreError {
    e.within(&format!("{NAME}[{}]", member.identity))
}

#[async_trait]
impl SessionBackend for PoolBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        let m = self.member(id);
        m.backend.load(id, touch).await.map_err(|e| tag(m, e))
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        let m = self.member(id);
        m.backend
            .load_versioned(id, touch)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        let m = self.member(id);
        m.backend
            .load_versioned_from_primary(id)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        let m = self.member(id);
        m.backend
            .load_in_place(id, touch)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend
            .apply_versioned(id, version, after, changes, ttl)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        let m = self.member(id);
        m.backend.load_with_ttl(id).await.map_err(|e| tag(m, e))
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend
            .create(id, state, ttl)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend
            .replace(id, state, ttl)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend
            .apply(id, changes, ttl)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend.touch(id, ttl).await.map_err(|e| tag(m, e))
    }

    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        copy: u64,
    ) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend
            .touch_tagged(id, ttl, copy)
            .await
            .map_err(|e| tag(m, e))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let m = self.member(id);
        m.backend.delete(id).await.map_err(|e| tag(m, e))
    }

    // The batch forms: each member gets the part of the batch it owns, as one batch (one
    // pipeline), all members at once.

    async fn load_many_with_ttl(
        &self,
        ids: &[SessionId],
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        self.per_member(
            ids,
            |id| id,
            |b, batch| async move { b.load_many_with_ttl(&batch).await }.boxed(),
        )
        .await
    }

    async fn create_many(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>)],
    ) -> Vec<Result<bool, StoreError>> {
        self.per_member(
            sessions,
            |(id, _, _)| id,
            |b, batch| async move { b.create_many(&batch).await }.boxed(),
        )
        .await
    }

    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        self.per_member(
            sessions,
            |(id, _, _, _)| id,
            |b, batch| async move { b.create_many_tagged(&batch).await }.boxed(),
        )
        .await
    }

    async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        self.per_member(
            ids,
            |id| id,
            |b, batch| async move { b.delete_many(&batch).await }.boxed(),
        )
        .await
    }

    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        self.per_member(
            moves,
            |(id, _)| id,
            |b, batch| async move { b.retire_many(&batch).await }.boxed(),
        )
        .await
    }

    // The index: each member keeps the entries of the sessions it owns (the write that adds
    // to an entry goes to the session's member, in the same round trip as the write); a
    // lookup asks every member at once.

    fn index_key(&self) -> Option<&str> {
        self.members.first().and_then(|m| m.backend.index_key())
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        let m = self.member(id);
        m.backend.index_add(index, id).await.map_err(|e| tag(m, e))
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let answers = join_all(self.members.iter().map(|m| async move {
            m.backend
                .index_members(index, oldest)
                .await
                .map_err(|e| tag(m, e))
        }))
        .await;
        let mut members = Vec::new();
        for answer in answers {
            members.extend(answer?);
        }
        crate::backend::keep_oldest(&mut members, oldest);
        Ok(members)
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        let groups = self.positions(members.iter().map(|m| &m.id));
        let answers = join_all(groups.iter().zip(&self.members).map(|(positions, m)| {
            let part: Vec<IndexMember> = positions.iter().map(|&p| members[p].clone()).collect();
            async move {
                if part.is_empty() {
                    return Ok(());
                }
                m.backend
                    .index_remove(index, &part)
                    .await
                    .map_err(|e| tag(m, e))
            }
        }))
        .await;
        answers.into_iter().collect()
    }

    async fn health(&self) -> Vec<BackendHealth> {
        crate::backend::health_of_parts(
            self.members
                .iter()
                .map(|m| (format!("{NAME}[{}]", m.identity), m.backend.as_ref())),
        )
        .await
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        self.member(id).backend.place(id)
    }

    fn name(&self) -> &str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_stable_across_releases() {
        // A changed hash would move every session: pin one value.
        let s = score("127.0.0.1:6379/0", 1, "abc");
        assert_eq!(s, score("127.0.0.1:6379/0", 1, "abc"));
        assert!(s > 0.0 && s.is_finite());
        assert_eq!(xxh3_64(b"abc"), 0x78af5f94892f3950);
    }
}
