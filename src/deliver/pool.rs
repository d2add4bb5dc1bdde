//! Pools: which member sends a pool's next message, and what each member's answers say
//! about it.
//!
//! A pool's messages wait in the pool's own queue (`pool:<name>`), never in a member's, so
//! each goes out once whichever member sends it, and digests and duplicate suppression
//! are the pool's. A member that cannot deliver now is passed over, and the pool's
//! pending messages go through the others:
//! - paused after DingTalk's "too fast" (130101): its gate's slot is the pause's end;
//! - failing (no answer, or DingTalk's trouble): backed off as a single robot would be;
//! - refused (the robot's fault, [`SendError::is_robots_fault`]: a revoked token, a
//!   removed keyword, a disabled robot): passed over for [`REFUSED_FOR`], then given one
//!   message to show whether it was mended.
//!
//! While any member can deliver, nothing is a dead letter because a member refused it;
//! only when every member was refused does a refusal bury the message, as it would for a
//! lone robot. Members are tried in the order [`Members::order`] gives.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{Delivery, Failure};
use crate::dingtalk::{Retry, Robot, SendError};
use crate::limit::{self, Gate, Gates};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

/// How long a refused member is passed over before one message tries it again.
pub const REFUSED_FOR: Duration = Duration::from_mins(10);

/// Why a member was passed over, as `pool_members_skipped_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// DingTalk refused the robot itself.
    Refused,
    /// Its sends fail; backed off.
    Failing,
    /// DingTalk paused it for sending too fast.
    Paused,
}

impl Skip {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Refused => "refused",
            Skip::Failing => "failing",
            Skip::Paused => "paused",
        }
    }
}

/// What this replica knows of one member's health.
#[derive(Debug, Clone, Default)]
struct Health {
    /// When DingTalk last refused the robot, and why.
    refused: Option<(Instant, String)>,
    /// Until when it is backed off, and after how many failures in a row.
    failing: Option<(Instant, u32)>,
}

impl Health {
    /// Since when and why DingTalk refused the robot, while that still passes it over at
    /// `now` (for [`REFUSED_FOR`]).
    fn refused_at(&self, now: Instant) -> Option<&(Instant, String)> {
        self.refused
            .as_ref()
            .filter(|(since, _)| now < *since + REFUSED_FOR)
    }

    /// Until when it is backed off and after how many failures, while that is after `now`.
    fn failing_at(&self, now: Instant) -> Option<(Instant, u32)> {
        self.failing.filter(|(until, _)| *until > now)
    }
}

/// The health of every pool member, by robot name.
#[derive(Debug, Default)]
pub struct Members(Mutex<BTreeMap<String, Health>>);

impl Members {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Health>> {
        // Every critical section leaves the map consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The members of a pool configured in `snapshot`, each with when it may send, in
    /// the order to try them at `now`: those neither refused nor failing first, the
    /// earliest slot (then the most room) first; then the failing, the soonest back first;
    /// then the refused, the longest refused first.
    pub fn order(
        &self,
        snapshot: &Snapshot,
        gates: &Gates,
        members: &[String],
        now: Instant,
    ) -> Vec<(Arc<Robot>, Instant)> {
        let health = self.lock();
        let mut ranked: Vec<_> = members
            .iter()
            .filter_map(|name| snapshot.config.robots.get(name))
            .map(|robot| {
                let gate = gates.gate(&robot.name);
                let slot = gate.next_slot(robot.rate_limit, now);
                let room = gate.room(robot.rate_limit, now);
                let known = health.get(&robot.name);
                let refused = known.and_then(|h| h.refused_at(now));
                let rank = match (refused, known.and_then(|h| h.failing_at(now))) {
                    (Some((since, _)), _) => (2, *since),
                    (None, Some((until, _))) => (1, until),
                    (None, None) => (0, slot),
                };
                (rank, usize::MAX - room, robot.clone(), slot.max(rank.1))
            })
            .collect();
        ranked.sort_unstable_by_key(|(rank, fuller, _, _)| (*rank, *fuller));
        ranked
            .into_iter()
            .map(|(_, _, robot, ready)| (robot, ready))
            .collect()
    }

    /// Whether `member` is neither refused nor failing at `now`, and its gate not paused.
    pub fn is_up(&self, gates: &Gates, member: &str, now: Instant) -> bool {
        let held = self
            .lock()
            .get(member)
            .is_some_and(|h| h.refused_at(now).is_some() || h.failing_at(now).is_some());
        !held && !gates.is_paused(member, now)
    }

    /// Why `member` is passed over at `now`, for the status page; `None` while it is up.
    pub fn why_down(&self, gates: &Gates, member: &str, now: Instant) -> Option<String> {
        let health = self.lock().get(member).cloned().unwrap_or_default();
        if let Some((since, why)) = health.refused_at(now) {
            let again = (*since + REFUSED_FOR)
                .saturating_duration_since(now)
                .as_secs();
            return Some(format!("refused: {why}; tried again in {again}s"));
        }
        if let Some((until, failures)) = health.failing_at(now) {
            let again = until.saturating_duration_since(now).as_secs();
            return Some(format!(
                "failing ({failures} in a row); tried again in {again}s"
            ));
        }
        gates
            .is_paused(member, now)
            .then(|| "paused by DingTalk".to_owned())
    }

    /// Whether a member of `members` other than `member` is not refused at `now`: one
    /// that may still deliver what `member` cannot.
    pub fn another_can_deliver(&self, members: &[String], member: &str, now: Instant) -> bool {
        let health = self.lock();
        members
            .iter()
            .filter(|m| *m != member)
            .any(|m| health.get(m).is_none_or(|h| h.refused_at(now).is_none()))
    }

    /// Notes that `member` of `pool` delivered: whatever was wrong with it is over.
    pub fn delivered(&self, pool: &str, member: &str) {
        let was = self.lock().remove(member);
        if was.is_some_and(|h| h.refused.is_some() || h.failing.is_some()) {
            tracing::info!(message = "Pool member delivers again.", %pool, robot = %member);
        }
    }

    /// Notes that `member` of `pool` failed with `error` and passes the message to the
    /// others: refused when it is the robot's fault, else backed off by `backoff` for its
    /// failures in a row. Logged and counted.
    pub fn failed(
        &self,
        metrics: &Metrics,
        (pool, member): (&str, &str),
        error: &SendError,
        backoff: impl Fn(u32) -> Duration,
    ) {
        let now = Instant::now();
        let why = error.to_string();
        let skip = {
            let mut health = self.lock();
            let entry = health.entry(member.to_owned()).or_default();
            if error.is_robots_fault() {
                entry.refused = Some((now, why.clone()));
                Skip::Refused
            } else {
                let failures = entry.failing.map_or(0, |(_, n)| n) + 1;
                entry.failing = Some((now + backoff(failures), failures));
                Skip::Failing
            }
        };
        self.skipped(metrics, (pool, member), skip, &why);
    }

    /// Logs and counts that `member` of `pool` was passed over for `skip`.
    pub fn skipped(&self, metrics: &Metrics, (pool, member): (&str, &str), skip: Skip, why: &str) {
        metrics.pools.skipped(pool, member, skip.as_str());
        tracing::warn!(
            message = "Pool member passed over; its messages go through the others.",
            %pool,
            robot = %member,
            reason = skip.as_str(),
            error = %why,
        );
    }
}

/// What sends the next message of the queue of `queued_for` (a robot, or a pool), its
/// gate, and when it may: the robot itself, or the member [`Members::order`] puts first.
/// `None` for a pool none of whose members is configured.
pub(super) fn sender(
    delivery: &Delivery,
    snapshot: &Snapshot,
    queued_for: &Arc<Robot>,
    now: Instant,
) -> Option<(Arc<Robot>, Arc<Gate>, Instant)> {
    let (robot, ready) = match queued_for.pool_members() {
        None => (queued_for.clone(), None),
        Some(members) => {
            let order = delivery
                .pools
                .order(snapshot, &delivery.gates, members, now);
            let (member, ready) = order.into_iter().next()?;
            (member, Some(ready))
        }
    };
    let gate = delivery.gate(&robot.name);
    let ready = ready.unwrap_or_else(|| gate.next_slot(robot.rate_limit, now));
    Some((robot, gate, ready))
}

/// How many more sends the window of `queued_for` takes now: a robot's own room (in
/// `gate`, its own), or the room of a pool's members that are up, together.
pub(super) fn room(
    delivery: &Delivery,
    snapshot: &Snapshot,
    queued_for: &Robot,
    gate: &Gate,
) -> usize {
    let Some(members) = queued_for.pool_members() else {
        return limit::room(snapshot, gate, queued_for);
    };
    let now = Instant::now();
    members
        .iter()
        .filter(|m| delivery.pools.is_up(&delivery.gates, m, now))
        .filter_map(|m| snapshot.config.robots.get(m))
        .map(|member| limit::room(snapshot, &delivery.gate(&member.name), member))
        .sum()
}

/// After `member` of the pool `queued_for` failed with `failure`: whether the message is
/// left in the pool's queue for the others (the member paused, failing, or refused while
/// another may deliver), rather than handled as a lone robot's failure.
pub fn passes_on(
    delivery: &Delivery,
    queued_for: &Robot,
    member: &Robot,
    failure: &Failure,
) -> bool {
    let Some(members) = queued_for.pool_members() else {
        return false;
    };
    let pool_member = (queued_for.name.as_str(), member.name.as_str());
    let (metrics, pools) = (&delivery.metrics, &delivery.pools);
    match failure.retry {
        Retry::AfterPause => {
            let why = failure.error.to_string();
            pools.skipped(metrics, pool_member, Skip::Paused, &why);
            true
        }
        Retry::Later => {
            pools.failed(metrics, pool_member, &failure.error, backoff);
            true
        }
        Retry::Never if failure.error.is_robots_fault() => {
            let others = pools.another_can_deliver(members, &member.name, Instant::now());
            pools.failed(metrics, pool_member, &failure.error, backoff);
            others
        }
        Retry::Never | Retry::Shorter => false,
    }
}

/// The backoff of a member after `failures` in a row: a lone robot's, without jitter.
fn backoff(failures: u32) -> Duration {
    super::backoff(failures, 1.0)
}
