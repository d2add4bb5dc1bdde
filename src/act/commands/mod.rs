//! Commands people write to a robot (`@robot silence 1h alertname=DiskFull`): parsing, in
//! English or Chinese, and doing them through Alertmanager's API v2 and the
//! acknowledgements. Who may command, and from which group, the caller decides
//! ([`crate::stream`]); this module answers every command it is given with the text of a
//! reply, and logs and counts it as the links' actions are.
//!
//! A command acts once however often DingTalk delivers its message: the message's
//! `msgId` is claimed first, in memory and, with `cluster:`, in Redis for every replica.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

mod parse;

pub use parse::{Command, parse};

use parse::USAGE;

use super::alertmanager::{AlertGroup, Matcher};
use super::link::labels_group_id;
use super::{Acknowledgement, Act, AlertmanagerClient, AlertmanagerError};
use crate::cluster::Cluster;
use crate::dingtalk::markdown;
use crate::ingest::Notification;
use crate::route::matcher::{Matcher as LabelMatcher, Op};

/// The most groups `list` shows; it says how many more there are.
const MAX_LISTED: usize = 30;
/// How many message ids each replica remembers to act on each once.
const REMEMBERED: usize = 4096;
/// How long Redis remembers a message id: DingTalk redelivers within minutes.
pub const CLAIM_FOR: Duration = Duration::from_secs(24 * 3600);
/// Who wrote a command.
#[derive(Debug, Clone)]
pub struct Commander {
    /// Their name in DingTalk.
    pub nick: String,
    /// Their staff id.
    pub staff_id: String,
}

impl Commander {
    /// How silences and acknowledgements name them: `nick (staff id)`.
    fn name(&self) -> String {
        format!("{} ({})", self.nick, self.staff_id)
    }
}

/// What a command came to.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The `outcome` label of `actions_total`: `done`, `repeated`, `refused`, `failed`.
    pub outcome: &'static str,
    /// The reply's markdown.
    pub text: String,
    /// How the command changed the handling of groups, if it did.
    pub changed: Option<Changed>,
}

impl Reply {
    fn new(outcome: &'static str, text: impl Into<String>) -> Self {
        Reply {
            outcome,
            text: text.into(),
            changed: None,
        }
    }

    fn changing(mut self, changed: Changed) -> Self {
        self.changed = Some(changed);
        self
    }
}

/// How a command changed the handling of groups: what their cards must show.
#[derive(Debug, Clone)]
pub enum Changed {
    /// The group with this id ([`labels_group_id`]) was acknowledged.
    Acknowledged(String),
    /// The groups with an alert that `matchers` select were silenced (by whom, until
    /// when) or, with `None`, are no longer.
    Silence {
        /// What the silence matches.
        matchers: Vec<LabelMatcher>,
        /// Who silenced them, until when; `None` when the silence was expired.
        silenced: Option<(String, Timestamp)>,
    },
}

impl Changed {
    /// Whether the group of `notification` is one that changed.
    pub fn matches(&self, notification: &Notification) -> bool {
        match self {
            Changed::Acknowledged(group) => {
                labels_group_id(&notification.receiver, &notification.group_labels) == *group
            }
            Changed::Silence { matchers, .. } => notification
                .alerts
                .iter()
                .any(|alert| matchers.iter().all(|m| m.matches(&alert.labels))),
        }
    }

    /// Who silenced the groups, until when.
    pub fn silenced(&self) -> Option<(String, Timestamp)> {
        match self {
            Changed::Silence { silenced, .. } => silenced.clone(),
            Changed::Acknowledged(_) => None,
        }
    }
}

/// The message ids this replica has acted on, oldest first, bounded.
#[derive(Debug, Default)]
pub struct Handled {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Handled {
    /// Whether `id` is new here; remembers it.
    pub fn first(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

impl Act {
    /// Does `text`, written by `by` in message `msg_id`, if `by` is `allowed` to command,
    /// and says what came of it; `None` when the message was handled before (here, or
    /// with `cluster` by any replica).
    pub async fn command(
        &self,
        text: &str,
        msg_id: &str,
        (by, allowed): (&Commander, bool),
        alertmanager: &AlertmanagerClient,
        cluster: Option<&Cluster>,
        now: Timestamp,
    ) -> Option<Reply> {
        if !self.first_time(msg_id, cluster).await {
            tracing::info!(
                message = "A robot message delivered again; done once already.",
                msg_id
            );
            return None;
        }
        let (action, reply) = match parse(text) {
            Ok(command) if !allowed => (
                command.action(),
                Reply::new(
                    "refused",
                    format!(
                        "{} may not command this robot: ask for your staff id to be added to its `command_users`.",
                        markdown::escape(&by.nick)
                    ),
                ),
            ),
            Ok(command) => {
                let action = command.action();
                let reply = self.run(command, by, alertmanager, cluster, now).await;
                (
                    action,
                    reply.unwrap_or_else(|e| {
                        tracing::warn!(message = "A command failed in Alertmanager.", error = %e);
                        Reply::new(
                            "failed",
                            "Alertmanager could not be reached or refused; nothing was done (the bridge's log says why).",
                        )
                    }),
                )
            }
            Err(wrong) => (
                "unknown",
                Reply::new(
                    "refused",
                    format!("{}.\n\n{USAGE}", markdown::escape(&wrong)),
                ),
            ),
        };
        self.metrics.action(action, reply.outcome);
        tracing::info!(
            message = "Command.",
            %action,
            by = %by.name(),
            msg_id,
            outcome = reply.outcome,
        );
        Some(reply)
    }

    /// Whether no replica has taken message `msg_id` yet; takes it.
    async fn first_time(&self, msg_id: &str, cluster: Option<&Cluster>) -> bool {
        let here = self
            .handled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first(msg_id);
        match cluster {
            Some(cluster) if here => cluster.claim_message(msg_id, CLAIM_FOR).await != Some(false),
            _ => here,
        }
    }

    async fn run(
        &self,
        command: Command,
        by: &Commander,
        alertmanager: &AlertmanagerClient,
        cluster: Option<&Cluster>,
        now: Timestamp,
    ) -> Result<Reply, AlertmanagerError> {
        Ok(match command {
            Command::Help => Reply::new("done", USAGE),
            Command::List => {
                let groups = firing(alertmanager.alert_groups().await?);
                Reply::new("done", self.listing(&groups))
            }
            Command::Ack(number) => {
                let groups = firing(alertmanager.alert_groups().await?);
                let Some(group) = groups.get(number - 1) else {
                    return Ok(Reply::new(
                        "refused",
                        format!(
                            "There is no group {number}: `list` shows {} now.",
                            groups.len()
                        ),
                    ));
                };
                let id = labels_group_id(&group.receiver.name, &group.labels);
                let ack = Acknowledgement {
                    group: id.clone(),
                    by: by.name(),
                    at: now,
                    alerts: group.alerts.iter().map(super::alert_name).collect(),
                };
                match self.acks.record(ack, cluster).await {
                    Ok((ack, true)) => Reply::new(
                        "done",
                        format!(
                            "Acknowledged {} as {}.",
                            describe(group),
                            markdown::escape(&ack.by)
                        ),
                    )
                    .changing(Changed::Acknowledged(id)),
                    Ok((ack, false)) => Reply::new(
                        "repeated",
                        format!(
                            "{} was acknowledged by {} already.",
                            describe(group),
                            markdown::escape(&ack.by)
                        ),
                    ),
                    Err(error) => {
                        tracing::error!(message = "Cannot record an acknowledgement.", %error);
                        Reply::new(
                            "failed",
                            "The acknowledgement could not be recorded; nothing was done.",
                        )
                    }
                }
            }
            Command::Silence { length, matchers } => {
                let api = matchers.iter().map(api_matcher).collect();
                let comment = "From DingTalk through alertmanager-dingtalk (a robot command).";
                let id = alertmanager
                    .create_silence(api, now, length, &by.name(), comment)
                    .await?;
                let until = now.checked_add(length).unwrap_or(Timestamp::MAX);
                Reply::new(
                    "done",
                    format!("Silenced until {until:.0}: silence `{id}`."),
                )
                .changing(Changed::Silence {
                    matchers,
                    silenced: Some((by.name(), until)),
                })
            }
            Command::Unsilence(id) => {
                let silence = alertmanager.silence(&id).await?;
                if !silence.comment.contains("through alertmanager-dingtalk") {
                    return Ok(Reply::new(
                        "refused",
                        format!(
                            "Silence `{id}` was not made through DingTalk; expire it in Alertmanager."
                        ),
                    ));
                }
                if silence.status.state == "expired" {
                    return Ok(Reply::new(
                        "repeated",
                        format!("Silence `{id}` has expired already."),
                    ));
                }
                alertmanager.expire_silence(&id).await?;
                let matchers = silence.matchers.iter().filter_map(label_matcher).collect();
                Reply::new("done", format!("Expired silence `{id}`.")).changing(Changed::Silence {
                    matchers,
                    silenced: None,
                })
            }
        })
    }

    /// The numbered list of `groups`, with who acknowledged each.
    fn listing(&self, groups: &[AlertGroup]) -> String {
        if groups.is_empty() {
            return "No alert fires.".to_owned();
        }
        let mut text = String::from("Firing alert groups (告警组):\n\n");
        for (number, group) in (1..).zip(groups.iter().take(MAX_LISTED)) {
            let silenced = group
                .alerts
                .iter()
                .filter(|a| !a.status.silenced_by.is_empty())
                .count();
            let _ = write!(
                text,
                "{number}. {} — {} firing",
                describe(group),
                group.alerts.len()
            );
            if silenced > 0 {
                let _ = write!(text, ", {silenced} silenced");
            }
            if let Some(ack) = self
                .acks
                .get(&labels_group_id(&group.receiver.name, &group.labels))
            {
                let _ = write!(text, "; acknowledged by {}", markdown::escape(&ack.by));
            }
            text.push('\n');
        }
        if groups.len() > MAX_LISTED {
            let _ = write!(text, "\n… and {} more.", groups.len() - MAX_LISTED);
        }
        text
    }
}

/// The groups with at least one alert, in a stable order, so that `ack <number>` finds
/// the group `list` showed under it.
fn firing(mut groups: Vec<AlertGroup>) -> Vec<AlertGroup> {
    groups.retain(|group| !group.alerts.is_empty());
    groups.sort_by(|a, b| (&a.labels, &a.receiver.name).cmp(&(&b.labels, &b.receiver.name)));
    groups
}

/// A group in a line: its labels and receiver.
fn describe(group: &AlertGroup) -> String {
    let labels: Vec<String> = group
        .labels
        .iter()
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    markdown::escape(&format!(
        "{{{}}} ({})",
        labels.join(", "),
        group.receiver.name
    ))
}

/// A matcher of Alertmanager's API as the bridge matches labels with it.
fn label_matcher(matcher: &Matcher) -> Option<LabelMatcher> {
    let op = match (matcher.is_regex, matcher.is_equal) {
        (false, true) => Op::Equal,
        (false, false) => Op::NotEqual,
        (true, true) => Op::Regex,
        (true, false) => Op::NotRegex,
    };
    LabelMatcher::new(&matcher.name, op, &matcher.value).ok()
}

/// A matcher as Alertmanager's API takes it.
fn api_matcher(matcher: &LabelMatcher) -> Matcher {
    Matcher {
        name: matcher.name().to_owned(),
        value: matcher.value().to_owned(),
        is_regex: matches!(matcher.op(), Op::Regex | Op::NotRegex),
        is_equal: matches!(matcher.op(), Op::Equal | Op::Regex),
    }
}
