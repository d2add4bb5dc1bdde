//! An episode as it is stored: a flat map of fields, the same in `escalations.redb` and in
//! Redis, where each field is written by one writer and the first write of a field wins:
//!
//! - `{id}`: the [`Episode`], written when its first firing notification is accepted;
//! - `{id}/claim/{step}/{attempt}`: when a replica started attempt 1 or 2 of a step;
//! - `{id}/done/{step}`: the step's [`Done`] record;
//! - `{id}/ack`: who acknowledged the group, once the bridge saw it ([`Acked`]).
//!
//! Claims are what make a step happen once: the replica whose claim is written performs the
//! step. A claim not followed by its record within [`LEASE`] was cut off (the replica
//! stopped in the middle of its DingTalk call): attempt 2 may be claimed, so a step is
//! repeated at most once and never skipped. Pure: reading the fields and deciding what is
//! due take the time as a parameter.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ingest::LabelSet;
use crate::oncall::Step;

/// How long a claimed step may take before another attempt may be claimed: longer than
/// any DingTalk call with its token fetch and one retry takes.
pub const LEASE: Duration = Duration::from_secs(120);

/// One firing episode of an alert group under one strategy with `escalate:` steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The group's `groupKey`.
    pub group_key: String,
    /// The strategy whose steps it takes.
    pub strategy: String,
    /// Alertmanager's receiver of the group.
    pub receiver: String,
    /// The group's labels (its `group_by`).
    pub group_labels: LabelSet,
    /// What DINGs and the status page call the group, e.g. `[FIRING:1] HighCPU · critical`
    /// (as its first firing notification had it).
    pub title: String,
    /// When the bridge accepted its first firing notification.
    pub started: Timestamp,
}

/// A step taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// When it was taken.
    pub at: Timestamp,
    /// How: `ding_app`, `ding_sms`, `ding_call` or `mention`.
    pub via: String,
    /// Who was on call and reached.
    pub member: String,
    /// `sent`, `refused`, or `skipped` (nobody to reach).
    pub outcome: String,
    /// A DING's `openDingId`, for a later step to ask whether it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_ding_id: Option<String>,
}

/// An acknowledgement, as the episode keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// An episode with what was done in it, read from its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its id: [`id`] of its group and strategy.
    pub id: String,
    /// The episode.
    pub episode: Episode,
    /// Claims by (step, attempt): when each was made.
    pub claims: BTreeMap<(usize, u8), Timestamp>,
    /// Steps taken, by index.
    pub done: BTreeMap<usize, Done>,
    /// Who acknowledged it, once seen.
    pub acked: Option<Acked>,
}

/// What to do about a step now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Claim attempt `1` or `2` of step `index` and take it.
    Claim {
        /// The step.
        index: usize,
        /// The attempt.
        attempt: u8,
    },
    /// Nothing before `at` (the next step's time, or a claim's lease running out).
    Wait {
        /// When to look again.
        at: Timestamp,
    },
    /// Every step is taken, or given up on.
    Finished,
}

/// The id of the episode of `group_key` under `strategy`: short, and safe in a field name.
pub fn id(group_key: &str, strategy: &str) -> String {
    crate::act::link::group_id(&format!("{group_key}\u{0}{strategy}"))
}

/// The field of the episode itself.
pub fn episode_field(id: &str) -> String {
    id.to_owned()
}

/// The field of attempt `attempt` of step `index`.
pub fn claim_field(id: &str, index: usize, attempt: u8) -> String {
    format!("{id}/claim/{index}/{attempt}")
}

/// The field of step `index`'s record.
pub fn done_field(id: &str, index: usize) -> String {
    format!("{id}/done/{index}")
}

/// The field of the acknowledgement.
pub fn ack_field(id: &str) -> String {
    format!("{id}/ack")
}

/// Every episode in `fields`; fields of episodes that are gone, or that cannot be read,
/// are left out.
pub fn read(fields: &BTreeMap<String, String>) -> Vec<Stored> {
    let mut episodes: BTreeMap<&str, Stored> = BTreeMap::new();
    for (field, value) in fields {
        if field.contains('/') {
            continue;
        }
        match serde_json::from_str::<Episode>(value) {
            Ok(episode) => {
                let stored = Stored {
                    id: field.clone(),
                    episode,
                    claims: BTreeMap::new(),
                    done: BTreeMap::new(),
                    acked: None,
                };
                episodes.insert(field, stored);
            }
            Err(error) => tracing::warn!(
                message = "Skipping an escalation episode that cannot be read.",
                episode = %field,
                %error,
            ),
        }
    }
    for (field, value) in fields {
        let mut parts = field.split('/');
        let (Some(id), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(stored) = episodes.get_mut(id) else {
            continue;
        };
        let index = parts.next().and_then(|i| i.parse::<usize>().ok());
        match (kind, index, parts.next()) {
            ("claim", Some(index), Some(attempt)) => {
                let at = value.parse::<Timestamp>().ok();
                if let (Ok(attempt), Some(at)) = (attempt.parse::<u8>(), at) {
                    stored.claims.insert((index, attempt), at);
                }
            }
            ("done", Some(index), None) => {
                if let Ok(done) = serde_json::from_str(value) {
                    stored.done.insert(index, done);
                }
            }
            ("ack", None, None) => stored.acked = serde_json::from_str(value).ok(),
            _ => {}
        }
    }
    episodes.into_values().collect()
}

/// The fields of episode `id` among `fields`: what removing it removes.
pub fn fields_of<'a>(fields: &'a BTreeMap<String, String>, id: &'a str) -> Vec<&'a String> {
    fields
        .keys()
        .filter(|field| {
            field.as_str() == id || field.strip_prefix(id).is_some_and(|r| r.starts_with('/'))
        })
        .collect()
}

impl Stored {
    /// What to do next about its `steps` at `now`. Steps are in order of `after`; the
    /// first not taken decides.
    pub fn due(&self, steps: &[Step], now: Timestamp) -> Due {
        for (index, step) in steps.iter().enumerate() {
            if self.done.contains_key(&index) {
                continue;
            }
            let at = self.episode.started + step.after;
            if now < at {
                return Due::Wait { at };
            }
            return match (self.claims.get(&(index, 1)), self.claims.get(&(index, 2))) {
                (None, _) => Due::Claim { index, attempt: 1 },
                (Some(first), None) if now >= *first + LEASE => Due::Claim { index, attempt: 2 },
                (Some(first), None) => Due::Wait { at: *first + LEASE },
                // Both attempts were cut off: given up on, the next step goes on.
                (Some(_), Some(second)) if now >= *second + LEASE => continue,
                (Some(_), Some(second)) => Due::Wait {
                    at: *second + LEASE,
                },
            };
        }
        Due::Finished
    }
}
