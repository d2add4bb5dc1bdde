//! What templates see: the group's facts and each alert, as serializable views.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::Actions;
use crate::dingtalk::{Button, MAX_BUTTON_BYTES};
use crate::ingest::{Alert, LabelSet, Notification, Source, Status};
use crate::oncall::OnCallView;

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
    /// Where the notification came from (`alertmanager`, `grafana`, `hertzbeat`), and
    /// that tool's name, for the link to `external_url`.
    source: &'static str,
    source_name: &'static str,
    /// What Grafana's contact point rendered (`title`, `message`), its `state`
    /// (`alerting`, `ok`) and `org_id`; HertzBeat's title. Empty from Alertmanager.
    title: String,
    message: String,
    state: String,
    org_id: Option<i64>,
    keyword: String,
    /// The links that act on the group, for the text (an action card shows them as
    /// buttons instead): `label`, `label_zh`, `url`.
    actions: Vec<ActionView>,
    /// Who acknowledged the group, and when (`by`, `at`), if anyone did.
    acknowledged: Option<HandledView>,
    /// Who silenced the group, and until when (`by`, `at`), on a card updated when it
    /// was silenced.
    silenced: Option<HandledView>,
    /// Who is on call now, by schedule: `name`, `mobile`, `user_id`.
    oncall: BTreeMap<String, OnCallView>,
    /// When the message is rendered: firing alerts' durations run to here.
    #[serde(skip)]
    pub(super) now: Timestamp,
}

impl GroupView {
    pub(super) fn new(
        notification: &Notification,
        alerts: &[&Alert],
        keyword: &str,
        now: Timestamp,
    ) -> Self {
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
                .filter(|value| !value.is_empty())
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
            source: notification.source.as_str(),
            source_name: notification.source.title(),
            title: notification.title.clone(),
            message: notification.message.clone(),
            state: notification.state.clone(),
            org_id: notification.org_id,
            keyword: keyword.to_owned(),
            actions: Vec::new(),
            acknowledged: None,
            silenced: None,
            oncall: BTreeMap::new(),
            now,
        }
    }

    /// The group with who is on call now, by schedule.
    pub(super) fn with_on_call(mut self, schedules: &BTreeMap<String, OnCallView>) -> Self {
        self.oncall = schedules.clone();
        self
    }

    /// The group as `actions` leave it: who acknowledged it (shown at `timezone`), and its
    /// links when the text carries them (`in_text`).
    pub(super) fn with_actions(
        mut self,
        actions: &Actions,
        in_text: bool,
        timezone: &TimeZone,
    ) -> Self {
        if in_text {
            self.actions = actions
                .links
                .iter()
                .map(|link| ActionView {
                    label: link.label.clone(),
                    label_zh: link.label_zh.clone(),
                    url: link.url.clone(),
                })
                .collect();
        }
        let shown = |(by, at): &(String, Timestamp)| HandledView {
            by: by.clone(),
            at: at
                .to_zoned_datetime(timezone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
        };
        self.acknowledged = actions.handling.acknowledged.as_ref().map(shown);
        self.silenced = actions.handling.silenced.as_ref().map(shown);
        self
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

/// A link that acts on the group, as templates see it.
#[derive(Serialize)]
struct ActionView {
    label: String,
    label_zh: String,
    url: String,
}

/// Who acknowledged (or silenced) the group, and when (until when), as templates see it.
#[derive(Serialize)]
struct HandledView {
    by: String,
    at: String,
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
    /// How long it has fired (to now), or fired (to its end): `45s`, `12m`, `3h 5m`,
    /// `2d 4h`.
    duration: String,
    /// The page for a new silence of the alert: Grafana's own (`silenceURL`), or
    /// Alertmanager's with the alert's labels as matchers; `""` without either.
    silence_url: String,
    /// Grafana's dashboard and panel of the rule; `""` when it has none.
    dashboard_url: &'a str,
    panel_url: &'a str,
    /// Grafana's screenshot of the panel, only when it is an http(s) address.
    image_url: &'a str,
    /// The values of the rule's queries when it fired, by refId (Grafana); whole
    /// numbers as integers, so that `1` does not read `1.0`.
    values: Option<BTreeMap<&'a str, serde_json::Value>>,
    /// The same as one line, as older Grafana sends it.
    value_string: &'a str,
}

impl<'a> AlertView<'a> {
    pub(super) fn new(alert: &'a Alert, timezone: &TimeZone, group: &GroupView) -> Self {
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
            duration: short_duration(
                alert
                    .ended_at()
                    .unwrap_or(group.now)
                    .duration_since(alert.starts_at),
            ),
            silence_url: match group.source {
                "alertmanager" => silence_url(&group.external_url, &alert.labels),
                _ => alert.silence_url.clone(),
            },
            dashboard_url: &alert.dashboard_url,
            panel_url: &alert.panel_url,
            image_url: Some(alert.image_url.as_str())
                .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
                .unwrap_or_default(),
            values: alert
                .values
                .as_ref()
                .filter(|values| !values.is_empty())
                .map(|values| {
                    values
                        .iter()
                        .map(|(name, v)| (name.as_str(), number(*v)))
                        .collect()
                }),
            value_string: &alert.value_string,
        }
    }
}

/// `value` as JSON: an integer when it is a whole number that fits one.
fn number(value: f64) -> serde_json::Value {
    let whole = value.fract() == 0.0 && value.abs() < 1e15;
    #[expect(clippy::cast_possible_truncation, reason = "whole and within i64")]
    let as_integer = whole.then(|| serde_json::Value::from(value as i64));
    as_integer.unwrap_or_else(|| serde_json::Value::from(value))
}

/// `d` in at most two units: `45s`, `12m`, `3h 5m`, `2d 4h` (`0s` when negative).
pub(super) fn short_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs().max(0);
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{minutes}m"),
        3600..86_400 if minutes == 0 => format!("{hours}h"),
        3600..86_400 => format!("{hours}h {minutes}m"),
        _ if hours == 0 => format!("{days}d"),
        _ => format!("{days}d {hours}h"),
    }
}

/// Alertmanager's page for a new silence with `labels` as its matchers, as Alertmanager's
/// own default template links it (`__alert_silence_link` in its template/default.tmpl):
/// `EXTERNAL_URL/#/silences/new?filter={name="value",...}`, percent-encoded.
pub(super) fn silence_url(external_url: &str, labels: &LabelSet) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    let matchers: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let value = value.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{name}=\"{value}\"")
        })
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    format!(
        "{}/#/silences/new?filter={}",
        external_url.trim_end_matches('/'),
        utf8_percent_encode(&filter, NON_ALPHANUMERIC)
    )
}

/// The most buttons an action card carries: DingTalk's `sampleActionCard5` for robots of
/// applications.
const MAX_BUTTONS: usize = 5;

/// The buttons of an action card for `alerts` of `notification`. With `actions`, its links
/// (Acknowledge, the silences), then View in Alertmanager, however many bytes they take
/// (the caller leaves them room in the text's budget). Without: View in Alertmanager,
/// Silence (Alertmanager's page for a silence of the labels the alerts share, or of the
/// one alert) and Source (the first alert's expression), each only when there is a page
/// to open, and no more than fit [`MAX_BUTTON_BYTES`]. At most [`MAX_BUTTONS`]. The
/// keyword rides in the first title, so that a keyword check that reads the buttons finds
/// it too.
pub(super) fn buttons(
    notification: &Notification,
    alerts: &[&Alert],
    keyword: &str,
    actions: Option<&Actions>,
) -> Vec<Button> {
    let external_url = notification.external_url.trim_end_matches('/');
    let (candidates, byte_cap) = match actions.filter(|a| !a.links.is_empty()) {
        Some(actions) => {
            let links = actions
                .links
                .iter()
                .map(|link| (link.label.clone(), link.url.clone()));
            let view = (view_label(notification), external_url.to_owned());
            (links.chain([view]).collect(), usize::MAX)
        }
        None => (page_buttons(notification, alerts), MAX_BUTTON_BYTES),
    };
    let mut buttons = Vec::new();
    let mut bytes = 0;
    for (title, url) in candidates {
        let title = match (buttons.is_empty(), keyword) {
            (true, keyword) if !keyword.is_empty() => format!("{title} · {keyword}"),
            _ => title.to_owned(),
        };
        if url.is_empty() || bytes + title.len() + url.len() > byte_cap {
            continue;
        }
        bytes += title.len() + url.len();
        buttons.push(Button { title, url });
        if buttons.len() == MAX_BUTTONS {
            break;
        }
    }
    buttons
}

/// "View in" the tool the notification came from.
fn view_label(notification: &Notification) -> String {
    format!("View in {}", notification.source.title())
}

/// The source's pages for `alerts` of `notification`, as button titles and addresses
/// (`""` where there is none): its own page, a new silence (Alertmanager's for the labels
/// the alerts share, or Grafana's for the first alert), the first alert's expression,
/// and Grafana's panel.
fn page_buttons(notification: &Notification, alerts: &[&Alert]) -> Vec<(String, String)> {
    let external_url = notification.external_url.trim_end_matches('/');
    let shared = match alerts {
        [only] => only.labels.clone(),
        _ => notification.common_labels.clone(),
    };
    let first =
        |url: fn(&Alert) -> &String| alerts.first().map_or_else(String::new, |a| url(a).clone());
    let silence = match notification.source {
        Source::Alertmanager if !shared.is_empty() => silence_url(external_url, &shared),
        Source::Alertmanager => String::new(),
        Source::Grafana | Source::HertzBeat => first(|a| &a.silence_url),
    };
    vec![
        (view_label(notification), external_url.to_owned()),
        ("Silence".to_owned(), silence),
        ("Source".to_owned(), first(|a| &a.generator_url)),
        ("Panel".to_owned(), first(|a| &a.panel_url)),
    ]
}
