//! What a render takes beside the alerts and the robot: what a strategy adds to a robot's
//! settings, and what the messages of a group offer people to do about it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::dingtalk::{Mention, MsgType};
use crate::oncall::OnCallView;

/// What a strategy adds to, or changes of, a robot's settings for its messages, and what
/// the messages of the group offer people to do.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// People to mention beside the robot's.
    pub mention: Mention,
    /// The members on call the robot or the strategy mention: mentioned by a webhook
    /// robot with the others, reached 1:1 by a robot of an application (whose group
    /// messages mention nobody).
    pub on_call: Mention,
    /// Who is on call now, by schedule, for templates (`oncall.<schedule>.name`).
    pub schedules: Arc<BTreeMap<String, OnCallView>>,
    /// The message type, if not the robot's.
    pub msgtype: Option<MsgType>,
    /// Links that act on the group (with `actions:`), and who acknowledged it.
    pub actions: Option<Arc<Actions>>,
}

/// What a message offers people to do about its group, and what was done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// Acknowledge, then one silence per duration.
    pub links: Vec<ActionLink>,
    /// Who acknowledged or silenced the group.
    pub handling: Handling,
}

/// How people are handling a group, as its messages show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handling {
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, Timestamp)>,
    /// Who silenced it, and until when: shown on a card updated when it was silenced.
    pub silenced: Option<(String, Timestamp)>,
}

/// One link that acts on a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLink {
    /// What the built-in English template shows: `Acknowledge`, `Silence 1h`.
    pub label: String,
    /// What the built-in Chinese template shows: `认领`, `静默 1小时`.
    pub label_zh: String,
    /// Where it leads.
    pub url: String,
}
