//! What the queue holds: messages waiting for a robot, with the brief of their alert
//! group that digests need, and the dead letters.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dingtalk::Message;
use crate::ingest::Status;

/// One message waiting to be sent to one robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Queue position: unique and increasing, also across restarts.
    pub id: u64,
    /// Robot the message is for.
    pub robot: String,
    /// Strategy that produced it, or `direct` for `/dingtalk/{robot}/send`.
    pub strategy: String,
    /// The rendered message.
    pub message: Message,
    /// What a digest needs to list this message's alert group.
    pub summary: GroupSummary,
    /// When the message was accepted.
    pub accepted_at: Timestamp,
}

impl Envelope {
    /// Which (alert group, strategy) the message belongs to, as a hash; `None` without a
    /// group (messages an older release queued).
    pub fn group(&self) -> Option<u64> {
        group_id(&self.summary.group_key, &self.strategy)
    }
}

/// The hash of an alert group's `groupKey` and a strategy, as [`Envelope::group`] says it;
/// `None` for an empty `groupKey`. The same within one process, which is all the queue's
/// ledger needs.
pub fn group_id(group_key: &str, strategy: &str) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    if group_key.is_empty() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    (group_key, strategy).hash(&mut hasher);
    Some(hasher.finish())
}

/// The alert group of a message, in brief: what a digest lists when it merges messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Firing if any alert of the message fires.
    pub status: Status,
    /// The message's title, e.g. `[FIRING:3] HighCPU · critical`.
    pub title: String,
    /// The name of every alert of the message, including any the text had to leave out.
    pub alerts: Vec<String>,
    /// Alertmanager's URL, for the digest's link.
    pub external_url: String,
    /// The alert group's `groupKey`: a newer message of the same group, robot and
    /// strategy supersedes this one while both wait. Empty for messages an older release
    /// queued, which are never superseded.
    #[serde(default)]
    pub group_key: String,
}

/// A message given up on, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message.
    pub envelope: Envelope,
    /// Why it was given up on: DingTalk's error and hint, or its age.
    pub reason: String,
    /// When it was given up on.
    pub at: Timestamp,
}

/// Pending messages of one robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RobotStats {
    /// How many.
    pub depth: usize,
    /// When the oldest was accepted.
    pub oldest: Option<Timestamp>,
}

/// What a store holds, read in one pass at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// Pending messages per robot that has any.
    pub robots: BTreeMap<String, RobotStats>,
    /// Dead letters per robot that has any.
    pub dead: BTreeMap<String, usize>,
    /// The robot, id and [`group_id`] of every pending message that has a group.
    pub grouped: Vec<(String, u64, u64)>,
    /// The highest id pending or dead, 0 when empty.
    pub last_id: u64,
}
