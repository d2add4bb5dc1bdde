//! Routing: which strategies, and so which robots, each alert of a notification goes to.
//!
//! Strategies are evaluated top to bottom per alert. The first whose matchers all hold
//! takes the alert; with `continue: true` evaluation goes on to the next ones. A matched
//! strategy may still hold the alert back (outside its `active_time`, or a resolved alert
//! with `send_resolved: false`), as Alertmanager's mute intervals do: the alert is not
//! passed on to later strategies because of that. Routing is a pure function of the
//! strategies, the alerts and the current time.

pub mod matcher;

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use crate::dingtalk::{Mention, MsgType};
use crate::ingest::{Alert, Status};
use crate::oncall::Step;
use matcher::Matcher;

/// A notification strategy: which alerts go to which robots, and when.
#[derive(Debug, Clone)]
pub struct Strategy {
    /// Unique name, used in metrics and logs.
    pub name: String,
    /// All must hold for an alert to match; none means every alert matches.
    pub matchers: Vec<Matcher>,
    /// Robots that receive the matched alerts.
    pub robots: Vec<String>,
    /// Whether resolved alerts are sent.
    pub send_resolved: bool,
    /// Added to each robot's own mention.
    pub mention: Mention,
    /// People to mention too, named by labels of the message's alerts.
    pub mention_from_labels: LabelMentions,
    /// The on-call schedules whose member on call its messages mention too.
    pub mention_oncall: Vec<String>,
    /// Who is reached, and how, while a firing group of this strategy is neither
    /// acknowledged nor resolved ([`crate::escalate`]).
    pub escalate: Vec<Step>,
    /// When this strategy sends; always when `None`.
    pub active_time: Option<ActiveTime>,
    /// Whether later strategies are evaluated after this one matched.
    pub continue_matching: bool,
    /// Name of the message template.
    pub template: String,
    /// The message type of its messages, if not each robot's own.
    pub msgtype: Option<MsgType>,
}

/// Mentions taken from alert labels: `mention.mobiles_from_label` and
/// `mention.user_ids_from_label` of a strategy. Never `@all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMentions {
    /// The label whose value is a mobile number to mention.
    pub mobiles: Option<String>,
    /// The label whose value is a DingTalk user id to mention.
    pub user_ids: Option<String>,
}

impl LabelMentions {
    /// The people the `alerts` name in the labels, each once, in order. A value that is
    /// not a mobile number (digits, `-`, an optional leading `+`) or a user id (no
    /// spaces, no `@`, at most 64 bytes) is left out: labels come from scraped targets.
    pub fn of<'a>(&self, alerts: impl IntoIterator<Item = &'a Alert>) -> Mention {
        let mut mention = Mention::default();
        for alert in alerts {
            let value = |label: &Option<String>| label.as_ref().and_then(|l| alert.labels.get(l));
            if let Some(mobile) = value(&self.mobiles).filter(|m| is_mobile(m))
                && !mention.mobiles.contains(mobile)
            {
                mention.mobiles.push(mobile.clone());
            }
            if let Some(id) = value(&self.user_ids).filter(|id| is_user_id(id))
                && !mention.user_ids.contains(id)
            {
                mention.user_ids.push(id.clone());
            }
        }
        mention
    }
}

fn is_mobile(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value);
    (5..=20).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && digits.bytes().filter(u8::is_ascii_digit).count() >= 5
}

fn is_user_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && !value.contains('@')
        && !value.chars().any(char::is_whitespace)
}

/// A weekly window in a time zone, such as Monday to Friday 09:00–18:00.
#[derive(Debug, Clone)]
pub struct ActiveTime {
    /// Days on which the window opens.
    pub days: Vec<Weekday>,
    /// Opening time.
    pub start: Time,
    /// Closing time (exclusive); earlier than `start` for a window across midnight.
    pub end: Time,
    /// Zone the days and times are read in.
    pub timezone: TimeZone,
}

impl ActiveTime {
    /// Whether `now` falls in the window. A window that crosses midnight belongs to the day
    /// it opens on: Friday 22:00–06:00 includes Saturday 03:00 but not Monday 03:00.
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned_datetime(self.timezone.clone());
        let (day, time) = (local.weekday(), local.time());
        if self.start < self.end {
            self.days.contains(&day) && self.start <= time && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start)
                || (self.days.contains(&day.previous()) && time < self.end)
        }
    }
}

impl fmt::Display for ActiveTime {
    /// `Mon Tue Wed 09:00–18:00 Asia/Shanghai`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for day in &self.days {
            write!(f, "{} ", &format!("{day:?}")[..3])?;
        }
        write!(
            f,
            "{}–{} {}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M"),
            self.timezone.iana_name().unwrap_or_default()
        )
    }
}

/// Why a matched alert was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The strategy's `active_time` window is closed.
    Inactive,
    /// The alert resolved and the strategy has `send_resolved: false`.
    Resolved,
}

impl Held {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Inactive => "inactive",
            Held::Resolved => "resolved",
        }
    }
}

/// The result of routing one notification.
#[derive(Debug, Default)]
pub struct Routes {
    /// Alert indexes per (strategy index, robot name), in alert order: one message each.
    pub messages: BTreeMap<(usize, String), Vec<usize>>,
    /// Per alert index, the names of the strategies it matched (for `render` output).
    pub matched: Vec<Vec<String>>,
    /// Alerts matched but held back: (alert index, strategy index, why).
    pub held: Vec<(usize, usize, Held)>,
    /// Alerts no strategy matched.
    pub unrouted: Vec<usize>,
}

/// Routes every alert through `strategies` at time `now`.
pub fn route(strategies: &[Strategy], alerts: &[Alert], now: Timestamp) -> Routes {
    let mut routes = Routes {
        matched: vec![Vec::new(); alerts.len()],
        ..Routes::default()
    };
    for (alert_index, alert) in alerts.iter().enumerate() {
        for (strategy_index, strategy) in strategies.iter().enumerate() {
            if !strategy.matchers.iter().all(|m| m.matches(&alert.labels)) {
                continue;
            }
            routes.matched[alert_index].push(strategy.name.clone());
            match hold_reason(strategy, alert, now) {
                Some(why) => routes.held.push((alert_index, strategy_index, why)),
                None => {
                    for robot in &strategy.robots {
                        routes
                            .messages
                            .entry((strategy_index, robot.clone()))
                            .or_default()
                            .push(alert_index);
                    }
                }
            }
            if !strategy.continue_matching {
                break;
            }
        }
        if routes.matched[alert_index].is_empty() {
            routes.unrouted.push(alert_index);
        }
    }
    routes
}

fn hold_reason(strategy: &Strategy, alert: &Alert, now: Timestamp) -> Option<Held> {
    if alert.status == Status::Resolved && !strategy.send_resolved {
        return Some(Held::Resolved);
    }
    match &strategy.active_time {
        Some(window) if !window.contains(now) => Some(Held::Inactive),
        _ => None,
    }
}
