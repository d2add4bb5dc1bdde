//! Duplicate claims shared by the replicas: see the parent module on why they are
//! two-phase.

use std::fmt::Write as _;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{Cluster, PENDING, millis, process};

/// What a duplicate claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the claim: queue the notification, then [`Cluster::confirm`].
    Claimed,
    /// Queued within `dedup_window` already: a duplicate.
    Queued,
    /// Another replica is queueing it right now.
    Pending,
    /// Redis cannot be reached: only local duplicate memory applies.
    Unreachable,
}

impl Cluster {
    /// Claims the notification `identity` as pending for this replica.
    pub async fn claim(&self, identity: &str) -> Claim {
        let Some(mut connection) = self.reachable_connection().await else {
            return Claim::Unreachable;
        };
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(self.claim_key(identity))
            .arg(self.pending_value())
            .arg(millis(PENDING));
        match self.run(invocation.invoke_async(&mut connection)).await {
            Some(0i64) => Claim::Claimed,
            Some(1) => Claim::Queued,
            Some(_) => Claim::Pending,
            None => Claim::Unreachable,
        }
    }

    /// Marks `identity` queued for `window`: a duplicate for every replica, as its group's
    /// last notification; the group's one before (`group`, see `accept::dedup::group_of`)
    /// is a duplicate no more.
    pub async fn confirm(&self, identity: &str, group: &str, window: Duration) {
        let Some(mut connection) = self.reachable_connection().await else {
            return;
        };
        let mut invocation = self.scripts.confirm.prepare_invoke();
        invocation
            .key(self.claim_key(identity))
            .key(self.claim_key(&format!("last of {group}")))
            .arg(millis(window).max(1));
        let _: Option<i64> = self.run(invocation.invoke_async(&mut connection)).await;
    }

    /// Drops this replica's pending claim of `identity`: it was not queued.
    pub async fn release(&self, identity: &str) {
        let Some(mut connection) = self.reachable_connection().await else {
            return;
        };
        let mut invocation = self.scripts.release.prepare_invoke();
        invocation
            .key(self.claim_key(identity))
            .arg(self.pending_value());
        let _: Option<i64> = self.run(invocation.invoke_async(&mut connection)).await;
    }

    /// Whether `identity` was marked queued or delivered within its window; `None` when
    /// Redis cannot be reached.
    pub async fn seen(&self, identity: &str) -> Option<bool> {
        let mut connection = self.reachable_connection().await?;
        let mut get = redis::cmd("GET");
        get.arg(self.claim_key(identity));
        let value = self
            .run(get.query_async::<Option<String>>(&mut connection))
            .await?;
        Some(value.as_deref() == Some("queued"))
    }

    /// Takes robot message `msg_id` for this replica for `ttl`: `Some(false)` when a
    /// replica took it before, `None` when Redis cannot be reached.
    pub async fn claim_message(&self, msg_id: &str, ttl: Duration) -> Option<bool> {
        let mut connection = self.reachable_connection().await?;
        let mut set = redis::cmd("SET");
        set.arg(self.claim_key(&format!("robot message {msg_id}")))
            .arg(&process().replica)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl).max(1));
        let taken = self
            .run(set.query_async::<Option<String>>(&mut connection))
            .await?;
        Some(taken.is_some())
    }

    fn claim_key(&self, identity: &str) -> String {
        let hash = Sha256::digest(identity.as_bytes());
        let mut key = format!("{}:claim:", self.config.key_prefix);
        for byte in &hash[..16] {
            let _ = write!(key, "{byte:02x}");
        }
        key
    }

    fn pending_value(&self) -> String {
        format!("pending:{}", process().replica)
    }
}
