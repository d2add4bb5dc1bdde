//! One on-call schedule: a rotation of members with handoffs at a wall-clock time of its
//! time zone, and overrides that put someone else on call for a while. Pure: every
//! question takes the instant it is asked about.
//!
//! Handoffs are computed on the zone's wall clock: the `k`-th shift starts at the first
//! handoff plus `k` rotations, read as a local date and time, so a weekly handoff at
//! Monday 10:00 stays at 10:00 across a change of daylight saving time. The first member
//! is on call before the first handoff and during the first shift.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::dingtalk::Mention;

/// A person a schedule puts on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// How messages and pages name them.
    pub name: String,
    /// Their mobile number: what a webhook robot's `@` takes.
    pub mobile: Option<String>,
    /// Their DingTalk user id (staff id): what `atUserIds`, DINGs and 1:1 messages take.
    pub user_id: Option<String>,
}

impl Member {
    /// Them as a mention: their mobile and their user id, those they have.
    pub fn mention(&self) -> Mention {
        Mention {
            all: false,
            mobiles: self.mobile.iter().cloned().collect(),
            user_ids: self.user_id.iter().cloned().collect(),
        }
    }
}

/// Someone on call in place of the rotation, from `from` up to (not including) `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// When it begins.
    pub from: Timestamp,
    /// When it ends.
    pub to: Timestamp,
    /// Index of the member in [`Schedule::members`].
    pub member: usize,
}

/// A named rotation of members. See the module documentation.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Its name in `oncall:`.
    pub name: String,
    /// The zone its handoffs and overrides are written in.
    pub zone: TimeZone,
    /// The length of one shift, on the wall clock.
    pub every: SignedDuration,
    /// The start of the first shift, on the wall clock.
    pub first: DateTime,
    /// In rotation order; never empty.
    pub members: Vec<Member>,
    /// Ordered by `from`, none overlapping.
    pub overrides: Vec<Override>,
}

/// A change of who is on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff<'a> {
    /// When.
    pub at: Timestamp,
    /// Who is on call from then.
    pub member: &'a Member,
}

/// At most this many changes are looked for when listing handoffs: overrides end and
/// begin between rotations, and each may or may not change who is on call.
const MAX_CANDIDATES: usize = 256;

impl Schedule {
    /// Who is on call at `now`.
    pub fn on_call(&self, now: Timestamp) -> &Member {
        &self.members[self.member_at(now)]
    }

    /// The next `count` changes of who is on call after `now`, in order.
    pub fn handoffs(&self, now: Timestamp, count: usize) -> Vec<Handoff<'_>> {
        let mut candidates: Vec<Timestamp> = self
            .overrides
            .iter()
            .flat_map(|o| [o.from, o.to])
            .filter(|at| *at > now)
            .collect();
        if self.members.len() > 1 {
            let shift = self.shift_at(now).unwrap_or(0);
            let rotations = (1..).map(|k| shift + k).map(|k| self.shift_start(k));
            candidates.extend(rotations.take(count + self.overrides.len() * 2 + 1));
        }
        candidates.sort();
        candidates.dedup();
        candidates.truncate(MAX_CANDIDATES);
        let mut current = self.member_at(now);
        let mut handoffs = Vec::new();
        for at in candidates {
            let next = self.member_at(at);
            if next != current {
                handoffs.push(Handoff {
                    at,
                    member: &self.members[next],
                });
                current = next;
                if handoffs.len() == count {
                    break;
                }
            }
        }
        handoffs
    }

    /// The index of the member on call at `now`.
    fn member_at(&self, now: Timestamp) -> usize {
        if let Some(o) = self.overrides.iter().find(|o| o.from <= now && now < o.to) {
            return o.member;
        }
        match self.shift_at(now) {
            Some(shift) => (shift % self.members.len() as i64) as usize,
            None => 0,
        }
    }

    /// The number of the shift running at `now`; `None` before the first.
    fn shift_at(&self, now: Timestamp) -> Option<i64> {
        let local = self.zone.to_datetime(now);
        let since = local.duration_since(self.first);
        if since.is_negative() {
            return None;
        }
        Some(since.as_secs() / self.every.as_secs().max(1))
    }

    /// When shift `k` starts.
    fn shift_start(&self, k: i64) -> Timestamp {
        let local = self
            .every
            .checked_mul(i32::try_from(k).unwrap_or(i32::MAX))
            .and_then(|offset| self.first.checked_add(offset).ok())
            .unwrap_or(DateTime::MAX);
        self.zone
            .to_ambiguous_timestamp(local)
            .compatible()
            .unwrap_or(Timestamp::MAX)
    }
}
