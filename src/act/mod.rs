//! The way back: what people do about an alert from its DingTalk message. A message carries
//! links ([`link`]); each names one alert group and one action, signed with the `actions`
//! key and expiring, so that any replica can check it without asking the others. Acting on
//! one silences the group in Alertmanager ([`alertmanager`]) or acknowledges it
//! ([`acks`]).
//!
//! Everything that arrives here came from outside: a link is checked before anything is
//! shown ([`Link::verify`]), nothing acts on a `GET` (the server shows [`Act::state`] and
//! acts only on the page's form), a second press of the same link does nothing new, and
//! every action is logged and counted. This module talks to DingTalk only through the
//! messages the rest of the bridge sends, and knows nothing of HTTP requests.

pub mod acks;
pub mod alertmanager;
pub mod commands;
pub mod link;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

pub use acks::{Acknowledgement, Acks};
pub use alertmanager::{AlertmanagerClient, AlertmanagerError, Silence};
pub use link::{Action, Link, LinkError};

use crate::cluster::Cluster;
use crate::metrics::Metrics;

/// What a group looks like to its action page.
#[derive(Debug, Clone)]
pub struct GroupState {
    /// Its alerts, as Alertmanager has them now.
    pub alerts: Result<Vec<alertmanager::Alert>, AlertmanagerError>,
    /// The active (or pending) silences that cover exactly its matchers.
    pub silences: Result<Vec<Silence>, AlertmanagerError>,
    /// Who acknowledged it.
    pub acknowledged: Option<Acknowledgement>,
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The group is acknowledged: by this person now (`new`), or by the one before.
    Acknowledged {
        /// The group's acknowledgement.
        ack: Acknowledgement,
        /// Whether this press made it.
        new: bool,
    },
    /// The group is silenced: by this press (`new`), or by an earlier press of the link.
    Silenced {
        /// The silence's id.
        id: String,
        /// Until when.
        until: Timestamp,
        /// Whether this press made it.
        new: bool,
    },
    /// The silence was expired.
    Unsilenced {
        /// Its id.
        id: String,
    },
}

/// Why an action was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    /// Alertmanager could not be reached, or refused.
    #[error(transparent)]
    Alertmanager(#[from] AlertmanagerError),
    /// The acknowledgement could not be written.
    #[error(transparent)]
    Acks(#[from] acks::AckError),
    /// The silence to expire is not one of this group's.
    #[error("no active silence {0} of this group")]
    NoSuchSilence(String),
}

impl ActError {
    /// The outcome label of `actions_total`.
    fn outcome(&self) -> &'static str {
        match self {
            ActError::Alertmanager(_) | ActError::Acks(_) => "failed",
            ActError::NoSuchSilence(_) => "refused",
        }
    }
}

/// Acting on groups: the acknowledgements, and one lock per link so that two presses of
/// the same link at once make one silence.
pub struct Act {
    /// Who acknowledged which group.
    pub acks: Arc<Acks>,
    metrics: Arc<Metrics>,
    pressing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The robot messages whose commands this replica did.
    handled: Mutex<commands::Handled>,
}

impl Act {
    /// Acting with `acks`, counted in `metrics`.
    pub fn new(acks: Arc<Acks>, metrics: Arc<Metrics>) -> Self {
        Act {
            acks,
            metrics,
            pressing: Mutex::default(),
            handled: Mutex::default(),
        }
    }

    /// The group of `link` as Alertmanager and the acknowledgements have it.
    pub async fn state(&self, link: &Link, alertmanager: &AlertmanagerClient) -> GroupState {
        let (alerts, silences) = tokio::join!(
            alertmanager.alerts(&link.matchers),
            alertmanager.silences(&link.matchers)
        );
        GroupState {
            alerts,
            silences: silences.map(|all| covering(all, &link.matchers)),
            acknowledged: self.acks.get(&link.group),
        }
    }

    /// Does what `link` names, as `by` with `comment`, at `now` (an acknowledgement shared
    /// with `cluster`'s replicas). A second press of the same link finds what the first
    /// did. Logged and counted either way.
    pub async fn perform(
        &self,
        link: &Link,
        alertmanager: &AlertmanagerClient,
        cluster: Option<&Cluster>,
        by: &str,
        comment: &str,
        now: Timestamp,
    ) -> Result<Done, ActError> {
        let turn = self.turn(&link.id());
        let _pressed = turn.lock().await;
        let done = match link.action {
            Action::Acknowledge => {
                let alerts = alertmanager
                    .alerts(&link.matchers)
                    .await
                    .map(|alerts| alerts.iter().map(alert_name).collect())
                    .unwrap_or_default();
                let ack = Acknowledgement {
                    group: link.group.clone(),
                    by: by.to_owned(),
                    at: now,
                    alerts,
                };
                self.acks
                    .record(ack, cluster)
                    .await
                    .map(|(ack, new)| Done::Acknowledged { ack, new })
                    .map_err(ActError::from)
            }
            Action::Silence { seconds } => {
                self.silence(link, alertmanager, by, comment, now, seconds)
                    .await
            }
        };
        let action = match link.action {
            Action::Acknowledge => "acknowledge",
            Action::Silence { .. } => "silence",
        };
        self.audit(link, action, by, &done);
        done
    }

    /// Expires silence `id`, if it is an active silence of the group of `link`.
    pub async fn unsilence(
        &self,
        link: &Link,
        alertmanager: &AlertmanagerClient,
        by: &str,
        id: &str,
    ) -> Result<Done, ActError> {
        let done = async {
            let ours = covering(alertmanager.silences(&link.matchers).await?, &link.matchers);
            if !ours.iter().any(|silence| silence.id == id) {
                return Err(ActError::NoSuchSilence(id.to_owned()));
            }
            alertmanager.expire_silence(id).await?;
            Ok(Done::Unsilenced { id: id.to_owned() })
        }
        .await;
        self.audit(link, "unsilence", by, &done);
        done
    }

    /// Counts and logs a refused link: `invalid` or `expired`.
    pub fn refused(&self, error: LinkError) {
        let outcome = match error {
            LinkError::Invalid => "invalid",
            LinkError::Expired => "expired",
        };
        self.metrics.action("unknown", outcome);
        tracing::warn!(message = "Action refused.", %outcome, reason = %error);
    }

    async fn silence(
        &self,
        link: &Link,
        alertmanager: &AlertmanagerClient,
        by: &str,
        comment: &str,
        now: Timestamp,
        seconds: u64,
    ) -> Result<Done, ActError> {
        let marker = marker(link);
        let earlier = covering(alertmanager.silences(&link.matchers).await?, &link.matchers)
            .into_iter()
            .find(|silence| silence.comment.contains(&marker));
        if let Some(silence) = earlier {
            return Ok(Done::Silenced {
                id: silence.id,
                until: silence.ends_at,
                new: false,
            });
        }
        let comment = match comment.trim() {
            "" => format!("From DingTalk through alertmanager-dingtalk ({marker})."),
            said => format!("{said} (from DingTalk through alertmanager-dingtalk, {marker})"),
        };
        let length = Duration::from_secs(seconds);
        let matchers = link
            .matchers
            .iter()
            .map(|(name, value)| alertmanager::Matcher::equal(name, value))
            .collect();
        let id = alertmanager
            .create_silence(matchers, now, length, by, &comment)
            .await?;
        let until = now
            .checked_add(jiff::SignedDuration::from_secs(
                i64::try_from(seconds).unwrap_or(i64::MAX),
            ))
            .unwrap_or(Timestamp::MAX);
        Ok(Done::Silenced {
            id,
            until,
            new: true,
        })
    }

    /// The lock of the link with `id`, made on first use.
    fn turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut pressing = self.pressing.lock().unwrap_or_else(|p| p.into_inner());
        // Locks nobody waits on any more are dropped, so the map stays small.
        pressing.retain(|_, lock| Arc::strong_count(lock) > 1);
        pressing.entry(id.to_owned()).or_default().clone()
    }

    /// Logs and counts what `action` on the group of `link` by `by` came to; never the
    /// link itself.
    fn audit(&self, link: &Link, action: &str, by: &str, done: &Result<Done, ActError>) {
        let (outcome, detail) = match done {
            Ok(Done::Acknowledged { new: true, .. } | Done::Silenced { new: true, .. })
            | Ok(Done::Unsilenced { .. }) => ("done", String::new()),
            Ok(_) => ("repeated", String::new()),
            Err(error) => (error.outcome(), error.to_string()),
        };
        self.metrics.action(action, outcome);
        tracing::info!(
            message = "Action.",
            %action,
            group = %link.group,
            link = %link.id(),
            %by,
            %outcome,
            %detail,
        );
    }
}

/// The mark a silence of `link` carries in its comment, to be found again.
fn marker(link: &Link) -> String {
    format!("link {}", link.id())
}

/// The silences of `all` that are active or pending and match exactly `matchers`.
fn covering(all: Vec<Silence>, matchers: &[(String, String)]) -> Vec<Silence> {
    all.into_iter()
        .filter(|silence| matches!(silence.status.state.as_str(), "active" | "pending"))
        .filter(|silence| {
            let mut theirs: Vec<(&str, &str)> = silence
                .matchers
                .iter()
                .filter(|m| !m.is_regex && m.is_equal)
                .map(|m| (m.name.as_str(), m.value.as_str()))
                .collect();
            let mut ours: Vec<(&str, &str)> = matchers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            theirs.sort_unstable();
            ours.sort_unstable();
            theirs == ours && silence.matchers.len() == matchers.len()
        })
        .collect()
}

fn alert_name(alert: &alertmanager::Alert) -> String {
    alert.labels.get("alertname").cloned().unwrap_or_default()
}
