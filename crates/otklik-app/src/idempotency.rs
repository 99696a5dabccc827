//! Idempotency keys: a retried POST with the same key returns what the first one made.
//!
//! The key is written in the same transaction as the object it created, so either both exist or
//! neither does. When two identical requests race, the loser's transaction fails on the key's
//! unique rule and it answers with the winner's object.

use otklik_store::{IdempotencyRecord, Mutation, Store, StoreError, UnitOfWork};
use sha2::{Digest, Sha256};

use crate::{AppError, AppResult};

/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 200;

/// A key sent with a request, bound to who sent it and what the request was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub principal: String,
    pub key: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// Validates the key and fingerprints the request (method, path, body).
    pub fn new(
        principal: String,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> AppResult<Self> {
        let key = key.trim();
        if key.is_empty()
            || key.chars().count() > MAX_KEY_CHARS
            || key.chars().any(char::is_control)
        {
            return Err(AppError::Domain(otklik_domain::DomainError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_CHARS} printable characters"),
            )));
        }
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update([0]);
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(body);
        Ok(Self {
            principal,
            key: key.to_owned(),
            fingerprint: hex::encode(hasher.finalize()),
        })
    }
}

/// What committing a unit under a key produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed<T> {
    /// The unit was committed now.
    Fresh(T),
    /// An earlier request with this key made `resource_id`; nothing was done now.
    Replayed(uuid::Uuid),
}

/// The earlier result for `key`, if the same request was already made.
pub async fn find_replay(
    store: &dyn Store,
    key: Option<&IdempotencyKey>,
) -> AppResult<Option<uuid::Uuid>> {
    let Some(key) = key else { return Ok(None) };
    match store.find_idempotency_key(&key.principal, &key.key).await? {
        Some(record) if record.fingerprint == key.fingerprint => Ok(Some(record.resource_id)),
        Some(_) => Err(AppError::IdempotencyKeyReused),
        None => Ok(None),
    }
}

/// Commits `unit`, recording `key` (if any) as having produced `resource_id`.
pub async fn commit_with_key(
    store: &dyn Store,
    mut unit: UnitOfWork,
    key: Option<&IdempotencyKey>,
    resource_kind: &str,
    resource_id: uuid::Uuid,
    now: jiff::Timestamp,
) -> AppResult<Committed<otklik_store::CommitReceipt>> {
    if let Some(key) = key {
        unit.push(Mutation::ClaimIdempotencyKey(IdempotencyRecord {
            principal: key.principal.clone(),
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            resource_kind: resource_kind.to_owned(),
            resource_id,
            created_at: now,
        }));
    }
    match store.commit(unit).await {
        Ok(receipt) => Ok(Committed::Fresh(receipt)),
        Err(StoreError::Conflict { constraint })
            if constraint == "idempotency_keys" && key.is_some() =>
        {
            // A concurrent twin won the race; answer with its result.
            match find_replay(store, key).await? {
                Some(resource_id) => Ok(Committed::Replayed(resource_id)),
                None => Err(AppError::Store(StoreError::Conflict { constraint })),
            }
        }
        Err(error) => Err(error.into()),
    }
}
