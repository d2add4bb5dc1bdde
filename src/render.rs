//! Rendering: one DingTalk message for the alerts of a notification that go to one robot
//! through one strategy.
//!
//! Templates are minijinja, compiled once per config load. Whatever a template produces,
//! the message leaving this module carries one of the robot's keywords in its title and
//! its text, the `@` text of every mention, and fits DingTalk's 20000-byte limit: when the
//! alerts do not fit, as many as fit are rendered and the text ends with "…and N more
//! alerts" and a link to Alertmanager. Rendering does no I/O.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Environment;
use serde::Serialize;

use crate::dingtalk::{MAX_TEXT_BYTES, Mention, Message, Robot};
use crate::payload::{Alert, LabelSet, Notification, Status};

/// Name of the built-in template, which a config may override.
pub const DEFAULT_TEMPLATE: &str = "default";
/// The built-in template stays reachable under this name as the fallback for templates
/// that fail at render time.
const BUILTIN: &str = "builtin";
/// Titles longer than this are cut; DingTalk shows only the start in the notification.
const MAX_TITLE_BYTES: usize = 256;

const BUILTIN_TITLE: &str = include_str!("templates/default.title.j2");
const BUILTIN_TEXT: &str = include_str!("templates/default.text.j2");

/// Labels shown in the heading rather than in each alert's label list.
const HEADING_LABELS: [&str; 2] = ["alertname", "severity"];

/// A message template as written in the config.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    /// Name strategies refer to.
    pub name: String,
    /// Template for the message title.
    pub title: String,
    /// Template for the message text.
    pub text: String,
}

/// Which part of a template a compile error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePart {
    /// The `title` template.
    Title,
    /// The `text` template.
    Text,
}

/// A template that does not compile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template {name:?}: {message}")]
pub struct TemplateError {
    /// The template's name.
    pub name: String,
    /// Title or text.
    pub part: TemplatePart,
    /// Line within that template, when known (1-based).
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Compiled templates plus what rendering needs from the config.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    timezone: TimeZone,
}

impl Renderer {
    /// Compiles the built-in template and `sources`, collecting every error.
    pub fn new(sources: &[TemplateSource], timezone: TimeZone) -> Result<Self, Vec<TemplateError>> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid");
        env.set_syntax(syntax);
        let builtin = [
            (BUILTIN, BUILTIN_TITLE, BUILTIN_TEXT),
            (DEFAULT_TEMPLATE, BUILTIN_TITLE, BUILTIN_TEXT),
        ];
        let mut errors = Vec::new();
        let all = builtin.into_iter().chain(
            sources
                .iter()
                .map(|s| (s.name.as_str(), s.title.as_str(), s.text.as_str())),
        );
        for (name, title, text) in all {
            for (part, source) in [(TemplatePart::Title, title), (TemplatePart::Text, text)] {
                if let Err(e) = env.add_template_owned(key(name, part), source.to_owned()) {
                    errors.push(TemplateError {
                        name: name.to_owned(),
                        part,
                        line: e.line(),
                        message: e.detail().unwrap_or("syntax error").to_owned(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(Renderer { env, timezone })
        } else {
            Err(errors)
        }
    }

    /// Whether a template of that name exists.
    pub fn has_template(&self, name: &str) -> bool {
        self.env
            .get_template(&key(name, TemplatePart::Text))
            .is_ok()
    }

    /// Renders the alerts at `alert_indexes` of `notification` for `robot`, mentioning
    /// the robot's people plus `extra_mention`.
    pub fn render(
        &self,
        template: &str,
        notification: &Notification,
        alert_indexes: &[usize],
        robot: &Robot,
        extra_mention: &Mention,
    ) -> Message {
        let alerts: Vec<&Alert> = alert_indexes
            .iter()
            .filter_map(|&i| notification.alerts.get(i))
            .collect();
        let shaped: Vec<AlertView> = alerts.iter().map(|a| self.alert_view(a)).collect();
        let context = GroupView::new(notification, &alerts, robot.primary_keyword());
        let mention = robot.mention.merged(extra_mention);
        let finish = Finisher {
            keywords: &robot.keywords,
            mention: &mention,
            external_url: &notification.external_url,
        };
        let hidden_upstream = notification.truncated_alerts;

        let attempt = |shown: usize| -> (String, String) {
            let view = Context {
                group: &context,
                alerts: &shaped[..shown],
            };
            let (title, body) = self
                .render_parts(template, &view)
                .or_else(|_| self.render_parts(BUILTIN, &view))
                .unwrap_or_else(|_| context.plain(&shaped[..shown]));
            let omitted = (shaped.len() - shown) as u64 + hidden_upstream;
            (finish.title(&title), finish.text(body, omitted))
        };

        let (title, text) = attempt(shaped.len());
        if text.len() <= MAX_TEXT_BYTES {
            return Message {
                title,
                text,
                mention,
            };
        }
        // Find the largest number of alerts that fits; at least one is always shown.
        let (mut fits, mut too_many) = (1, shaped.len());
        while too_many - fits > 1 {
            let middle = fits + (too_many - fits) / 2;
            if attempt(middle).1.len() <= MAX_TEXT_BYTES {
                fits = middle;
            } else {
                too_many = middle;
            }
        }
        let (title, text) = attempt(fits);
        let text = if text.len() <= MAX_TEXT_BYTES {
            text
        } else {
            // A single alert larger than the limit: cut its body, keep what `finish` adds.
            let omitted = (shaped.len() - fits) as u64 + hidden_upstream;
            let tail_bytes = finish.text(String::new(), omitted).len() + "…".len();
            let cut = cut_at_char_boundary(&text, MAX_TEXT_BYTES.saturating_sub(tail_bytes));
            let text = finish.text(format!("{cut}…"), omitted);
            cut_at_char_boundary(&text, MAX_TEXT_BYTES).to_owned()
        };
        Message {
            title,
            text,
            mention,
        }
    }

    fn render_parts(&self, template: &str, view: &Context<'_>) -> Result<(String, String), String> {
        let render = |part| -> Result<String, String> {
            self.env
                .get_template(&key(template, part))
                .and_then(|t| t.render(minijinja::value::Serde(view)))
                .map_err(|e| {
                    tracing::warn!(
                        message = "Template failed to render; using the built-in one.",
                        template,
                        error = %e
                    );
                    e.to_string()
                })
        };
        Ok((render(TemplatePart::Title)?, render(TemplatePart::Text)?))
    }

    fn alert_view(&self, alert: &Alert) -> AlertView {
        let in_zone = |t: Timestamp| {
            t.to_zoned_datetime(self.timezone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        AlertView {
            status: alert.status.as_str(),
            name: alert.name().to_owned(),
            severity: alert.labels.get("severity").cloned().unwrap_or_default(),
            labels: alert.labels.clone(),
            key_labels: alert
                .labels
                .iter()
                .filter(|(k, _)| !HEADING_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            annotations: alert.annotations.clone(),
            starts_at: in_zone(alert.starts_at),
            ends_at: alert.ended_at().map(in_zone),
            generator_url: alert.generator_url.clone(),
            fingerprint: alert.fingerprint.clone(),
        }
    }
}

fn key(name: &str, part: TemplatePart) -> String {
    match part {
        TemplatePart::Title => format!("{name}.title"),
        TemplatePart::Text => format!("{name}.text"),
    }
}

/// Adds to a rendered message what every message must have, whatever the template said.
struct Finisher<'a> {
    keywords: &'a [String],
    mention: &'a Mention,
    external_url: &'a str,
}

impl Finisher<'_> {
    fn title(&self, title: &str) -> String {
        let title = cut_at_char_boundary(title.trim(), MAX_TITLE_BYTES);
        match self.missing_keyword(title) {
            Some(keyword) => format!("{title} · {keyword}"),
            None => title.to_owned(),
        }
    }

    fn text(&self, mut text: String, omitted: u64) -> String {
        if omitted > 0 {
            let alerts = if omitted == 1 { "alert" } else { "alerts" };
            text.push_str(&format!("\n\n…and {omitted} more {alerts}"));
            if !self.external_url.is_empty() {
                text.push_str(&format!(
                    " · [see all in Alertmanager]({})",
                    self.external_url
                ));
            }
        }
        if let Some(keyword) = self.missing_keyword(&text) {
            text.push_str(&format!("\n\n{keyword}"));
        }
        let at = self.mention.at_text();
        if !at.is_empty() {
            text.push_str("\n\n");
            text.push_str(&at);
        }
        text
    }

    fn missing_keyword(&self, text: &str) -> Option<&str> {
        let first = self.keywords.first()?;
        (!self.keywords.iter().any(|k| text.contains(k.as_str()))).then_some(first.as_str())
    }
}

/// The longest prefix of `text` no longer than `max` bytes that ends on a char boundary.
pub fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What templates see: the group, and the alerts shown in this message.
#[derive(Serialize)]
struct Context<'a> {
    #[serde(flatten)]
    group: &'a GroupView,
    alerts: &'a [AlertView],
}

/// Facts about the whole group, computed once per message.
#[derive(Serialize)]
struct GroupView {
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
    fn new(notification: &Notification, alerts: &[&Alert], keyword: &str) -> Self {
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
    fn plain(&self, alerts: &[AlertView]) -> (String, String) {
        let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        (
            format!("[{}] {}", self.status.to_uppercase(), self.alertname),
            names.join("\n\n"),
        )
    }
}

/// One alert as templates see it.
#[derive(Serialize)]
struct AlertView {
    status: &'static str,
    name: String,
    severity: String,
    labels: LabelSet,
    /// Labels other than those in the heading, for the alert's details.
    key_labels: BTreeMap<String, String>,
    annotations: LabelSet,
    starts_at: String,
    ends_at: Option<String>,
    generator_url: String,
    fingerprint: String,
}
