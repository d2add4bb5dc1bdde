//! Who is on call: the schedules of `oncall:` ([`schedule`]), and what a strategy's
//! `escalate:` steps ask of them ([`Step`]). Pure, like routing: every question takes the
//! instant it is asked about. Reaching the person is the business of [`crate::escalate`]
//! and of the messages that mention them ([`crate::accept::plan`]).

pub mod schedule;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

pub use schedule::{Handoff, Member, Override, Schedule};

use crate::dingtalk::Mention;

/// The schedules by name.
pub type Schedules = BTreeMap<String, Schedule>;

/// One step of a strategy's escalation: `after` the first firing notification of an
/// episode, reach the member on call of `notify` by `via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// How long after the episode's first firing notification.
    pub after: Duration,
    /// The schedule whose member on call is reached.
    pub notify: String,
    /// How.
    pub via: Via,
    /// The robot that reaches them: a robot of an application for a DING, a webhook
    /// robot for a mention.
    pub robot: String,
}

/// How a step reaches the person on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A DING in the DingTalk app (`remindType` 1).
    DingApp,
    /// A DING by SMS (`remindType` 2).
    DingSms,
    /// A DING by phone call (`remindType` 3).
    DingCall,
    /// A short message in the robot's group that `@`s them.
    Mention,
}

impl Via {
    /// Every way, as `via:` names them.
    pub const ALL: [Via; 4] = [Via::DingApp, Via::DingSms, Via::DingCall, Via::Mention];

    /// The DING's `remindType`; `None` for a mention.
    pub fn remind_type(self) -> Option<u8> {
        match self {
            Via::DingApp => Some(1),
            Via::DingSms => Some(2),
            Via::DingCall => Some(3),
            Via::Mention => None,
        }
    }

    /// The name `via:` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::DingApp => "ding_app",
            Via::DingSms => "ding_sms",
            Via::DingCall => "ding_call",
            Via::Mention => "mention",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the members on call of the schedules `names` are at `now`, as a mention: their
/// mobiles and user ids. Names without a schedule are skipped (`check` refuses them).
pub fn mention<'a>(
    schedules: &Schedules,
    names: impl IntoIterator<Item = &'a String>,
    now: Timestamp,
) -> Mention {
    names
        .into_iter()
        .filter_map(|name| schedules.get(name))
        .fold(Mention::default(), |all, schedule| {
            all.merged(&schedule.on_call(now).mention())
        })
}

/// A schedule now, as `/api/v1/oncall`, the status page and `check` show it.
#[derive(Debug, Clone, Serialize)]
pub struct Shift {
    /// The schedule's name.
    pub schedule: String,
    /// Its time zone.
    pub timezone: String,
    /// Who is on call.
    pub on_call: MemberView,
    /// The next changes of who is on call.
    pub next: Vec<HandoffView>,
}

impl fmt::Display for Shift {
    /// `on call in primary (Asia/Shanghai): 张三; next: 李四 at 2026-12-14 10:00 +08:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "on call in {} ({}): {}",
            self.schedule, self.timezone, self.on_call.name
        )?;
        for (i, handoff) in self.next.iter().enumerate() {
            let lead = if i == 0 { "; next: " } else { ", " };
            write!(f, "{lead}{} at {}", handoff.name, handoff.at)?;
        }
        Ok(())
    }
}

/// A member, without their mobile number.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Their name.
    pub name: String,
    /// Their DingTalk user id, if configured.
    pub user_id: Option<String>,
}

/// One coming change of who is on call.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffView {
    /// When, in the schedule's zone (RFC 3339 with offset).
    pub at: String,
    /// Who is on call from then.
    pub name: String,
}

/// Every schedule at `now`, with its next `handoffs` changes.
pub fn shifts(schedules: &Schedules, now: Timestamp, handoffs: usize) -> Vec<Shift> {
    schedules
        .values()
        .map(|schedule| {
            let member = schedule.on_call(now);
            Shift {
                schedule: schedule.name.clone(),
                timezone: schedule.zone.iana_name().unwrap_or("UTC").to_owned(),
                on_call: MemberView {
                    name: member.name.clone(),
                    user_id: member.user_id.clone(),
                },
                next: schedule
                    .handoffs(now, handoffs)
                    .into_iter()
                    .map(|h| HandoffView {
                        at: h
                            .at
                            .to_zoned_datetime(schedule.zone.clone())
                            .strftime("%Y-%m-%d %H:%M %:z")
                            .to_string(),
                        name: h.member.name.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Who is on call in each schedule at `now`, as templates see them (`oncall.<schedule>`).
pub fn on_call_views(schedules: &Schedules, now: Timestamp) -> BTreeMap<String, OnCallView> {
    schedules
        .iter()
        .map(|(name, schedule)| {
            let member = schedule.on_call(now);
            (name.clone(), OnCallView::of(member))
        })
        .collect()
}

/// The member on call as templates see them: `oncall.<schedule>.name`, `.mobile`,
/// `.user_id` (empty when not configured).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OnCallView {
    /// Their name.
    pub name: String,
    /// Their mobile number, or "".
    pub mobile: String,
    /// Their user id, or "".
    pub user_id: String,
}

impl OnCallView {
    fn of(member: &Member) -> Self {
        OnCallView {
            name: member.name.clone(),
            mobile: member.mobile.clone().unwrap_or_default(),
            user_id: member.user_id.clone().unwrap_or_default(),
        }
    }
}
