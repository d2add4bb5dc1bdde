//! What templates see: the group's facts and each alert, as serializable views.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::payload::{Alert, LabelSet, Notification, Status};

/// Labels shown in the heading rather than in each alert's label list.
const HEADING_LABELS: [&str; 2] = ["alertname", "severity"];

/// Facts about the whole group, computed once per message; with `alerts`, what templates
/// see.
#[derive(Serialize)]
pub(super) struct GroupView {
    status: &'static str,
    firing_count: usize,
    resolved_count: usize,
    alertname: String,
    severity: String,
    group_labels: LabelSet,
    common_labels: LabelSet,
    common_annotations: LabelSet,
    external_url: String,
    receiver: String,
    keyword: String,
}

impl GroupView {
    pub(super) fn new(notification: &Notification, alerts: &[&Alert], keyword: &str) -> Self {
        let firing_count = alerts.iter().filter(|a| a.status == Status::Firing).count();
        let status = if firing_count > 0 {
            Status::Firing
        } else {
            Status::Resolved
        };
        let common = |name: &str| {
            notification
                .group_labels
                .get(name)
                .or_else(|| notification.common_labels.get(name))
                .or_else(|| alerts.first().and_then(|a| a.labels.get(name)))
                .cloned()
                .unwrap_or_default()
        };
        GroupView {
            status: status.as_str(),
            firing_count,
            resolved_count: alerts.len() - firing_count,
            alertname: common("alertname"),
            severity: common("severity"),
            group_labels: notification.group_labels.clone(),
            common_labels: notification.common_labels.clone(),
            common_annotations: notification.common_annotations.clone(),
            external_url: notification.external_url.clone(),
            receiver: notification.receiver.clone(),
            keyword: keyword.to_owned(),
        }
    }

    /// Title and text without any template, for when even the built-in one fails: the
    /// alerts still reach the group.
    pub(super) fn plain(&self, alerts: &[&Alert]) -> (String, String) {
        let names: Vec<&str> = alerts.iter().map(|a| a.name()).collect();
        (
            format!("[{}] {}", self.status.to_uppercase(), self.alertname),
            names.join("\n\n"),
        )
    }
}

/// One alert as templates see it.
#[derive(Serialize)]
pub(super) struct AlertView<'a> {
    status: &'static str,
    name: &'a str,
    severity: &'a str,
    labels: &'a LabelSet,
    /// Labels other than those in the heading, for the alert's details.
    key_labels: BTreeMap<&'a str, &'a str>,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: Option<String>,
    generator_url: &'a str,
    fingerprint: &'a str,
}

impl<'a> AlertView<'a> {
    pub(super) fn new(alert: &'a Alert, timezone: &TimeZone) -> Self {
        let in_zone = |t: Timestamp| {
            t.to_zoned_datetime(timezone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        AlertView {
            status: alert.status.as_str(),
            name: alert.name(),
            severity: alert.labels.get("severity").map_or("", String::as_str),
            labels: &alert.labels,
            key_labels: alert
                .labels
                .iter()
                .filter(|(k, _)| !HEADING_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            annotations: &alert.annotations,
            starts_at: in_zone(alert.starts_at),
            ends_at: alert.ended_at().map(in_zone),
            generator_url: &alert.generator_url,
            fingerprint: &alert.fingerprint,
        }
    }
}
