//! The Alertmanager webhook payload (version 4).
//!
//! The types are tolerant: fields this bridge does not use are ignored, so payloads of
//! newer Alertmanager versions parse, and optional fields (`truncatedAlerts` among them,
//! which rendering counts in its "…and N more alerts") default. What must be
//! there to route and render an alert is required, so a payload of the wrong shape is
//! rejected with a one-line reason instead of producing an empty message.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{PayloadError, Source};

/// Label or annotation set, sorted by name so messages render deterministically.
pub type LabelSet = BTreeMap<String, String>;

/// One webhook notification: a group of alerts that Alertmanager notifies together.
/// Serialized as it was read (a card's group is kept so its card can be drawn again).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Payload version; Alertmanager has sent "4" since 0.6.
    #[serde(default)]
    pub version: String,
    /// Identifies the alert group across notifications.
    #[serde(default)]
    pub group_key: String,
    /// Alerts omitted by Alertmanager because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert of the group fires, else `resolved`.
    pub status: Status,
    /// Name of the Alertmanager receiver that sent the notification.
    #[serde(default)]
    pub receiver: String,
    /// Labels the group was formed by.
    #[serde(default)]
    pub group_labels: LabelSet,
    /// Labels every alert of the group shares.
    #[serde(default)]
    pub common_labels: LabelSet,
    /// Annotations every alert of the group shares.
    #[serde(default)]
    pub common_annotations: LabelSet,
    /// Alertmanager's own URL, for links back to it.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts of the group.
    pub alerts: Vec<Alert>,
    /// Where the notification came from: set by the source's parser, never read from
    /// the body.
    #[serde(default, skip_serializing_if = "Source::is_alertmanager")]
    pub source: Source,
    /// Grafana: the title its contact point rendered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Grafana: `alerting` or `ok`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Grafana: the message its contact point rendered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Grafana: the organisation the alerts belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
}

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Whether this alert fires or has resolved.
    pub status: Status,
    /// Identifying labels, `alertname` among them.
    #[serde(default)]
    pub labels: LabelSet,
    /// Descriptive annotations such as `summary` and `description`.
    #[serde(default)]
    pub annotations: LabelSet,
    /// When the alert started firing.
    pub starts_at: Timestamp,
    /// When the alert resolved; Alertmanager sends year 1 for "not yet".
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    /// Link to the expression that produced the alert.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the label set (derived for a source without one).
    #[serde(default)]
    pub fingerprint: String,
    /// Grafana: its page for a new silence of the alert.
    #[serde(
        default,
        rename = "silenceURL",
        skip_serializing_if = "String::is_empty"
    )]
    pub silence_url: String,
    /// Grafana: the dashboard of the rule.
    #[serde(
        default,
        rename = "dashboardURL",
        skip_serializing_if = "String::is_empty"
    )]
    pub dashboard_url: String,
    /// Grafana: the panel of the rule.
    #[serde(default, rename = "panelURL", skip_serializing_if = "String::is_empty")]
    pub panel_url: String,
    /// Grafana: the values of the rule's queries and expressions when it fired, by refId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, f64>>,
    /// Grafana: the values as one line of text (its older form).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value_string: String,
    /// Grafana: a screenshot of the panel, when image rendering is set up.
    #[serde(default, rename = "imageURL", skip_serializing_if = "String::is_empty")]
    pub image_url: String,
}

/// The two states an alert or a group can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The alert is active.
    Firing,
    /// The alert has ended.
    Resolved,
}

impl Status {
    /// The lower-case name Alertmanager uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// The alert's name, or "" when it has no `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// When the alert ended, or `None` while it fires (Alertmanager sends `0001-01-01`).
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.ends_at.filter(|t| t.as_second() > 0)
    }
}

impl Notification {
    /// What makes two notifications the same for duplicate suppression: the group, its
    /// status, and each alert's fingerprint, status and `startsAt` (in any order). An
    /// Alertmanager HA pair sends the same notification from both members, with the same
    /// `startsAt`; an alert that fires again after it resolved starts anew, so a group that
    /// fires, resolves and fires again is three notifications, not a duplicate.
    pub fn identity(&self) -> String {
        let mut alerts: Vec<String> = self
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "{}:{}:{}",
                    a.fingerprint,
                    a.status.as_str(),
                    a.starts_at.as_nanosecond()
                )
            })
            .collect();
        alerts.sort_unstable();
        format!(
            "{}|{}|{}",
            self.group_key,
            self.status.as_str(),
            alerts.join(",")
        )
    }
}

/// Parses an Alertmanager webhook body, answering with a one-line reason when it is not
/// a notification.
pub fn parse(body: &[u8]) -> Result<Notification, PayloadError> {
    read(body, Source::Alertmanager)
}

/// Reads `body` as the payload `source` sends in Alertmanager's shape (Alertmanager's own,
/// Grafana's): a notification with at least one alert, marked as from `source`.
pub(super) fn read(body: &[u8], source: Source) -> Result<Notification, PayloadError> {
    let invalid = |reason: String| PayloadError {
        from: source,
        reason,
    };
    let mut notification: Notification =
        serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if notification.alerts.is_empty() {
        return Err(invalid("`alerts` is empty".to_owned()));
    }
    notification.source = source;
    Ok(notification)
}
