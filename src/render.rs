//! Rendering: one DingTalk message for the alerts of a notification that go to one robot
//! through one strategy.
//!
//! Templates are minijinja, compiled once per config load. Whatever a template produces,
//! the message leaving this module carries one of the robot's keywords in its title and
//! its text, the `@` text of every mention, and fits the size budget (title and text
//! together; [`MESSAGE_BUDGET`] unless DingTalk was seen to take less): when the alerts do
//! not fit, as many as fit are rendered and the text ends with "…and N more alerts" and a
//! link to Alertmanager. Finding how many fit takes a few renders of about
//! that many alerts, however many the group has: a render stops once its text passes the
//! limit, and each alert becomes a template value once, when a template first reads it.
//! Rendering does no I/O.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Environment;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use serde::Serialize;

use crate::dingtalk::{MAX_TITLE_BYTES, MESSAGE_BUDGET, Mention, Message, Robot};
use crate::payload::{Alert, LabelSet, Notification, Status};

/// Name of the built-in template, which a config may override.
pub const DEFAULT_TEMPLATE: &str = "default";
/// The built-in template stays reachable under this name as the fallback for templates
/// that fail at render time.
const BUILTIN: &str = "builtin";

const BUILTIN_TITLE: &str = include_str!("templates/default.title.j2");
const BUILTIN_TEXT: &str = include_str!("templates/default.text.j2");

/// Labels shown in the heading rather than in each alert's label list.
const HEADING_LABELS: [&str; 2] = ["alertname", "severity"];

/// Renders placed by where the earlier ones say the limit lies, after which the search
/// only halves: a safeguard against alerts of very uneven size.
const MAX_GUESSES: usize = 6;
/// Alerts converted to template values before the first render: about one and a half
/// messages' worth with the built-in template. More are converted when a template reads
/// further.
const FIRST_CONVERTED: usize = 64;

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
    /// the robot's people plus `extra_mention`, within the full [`MESSAGE_BUDGET`].
    pub fn render(
        &self,
        template: &str,
        notification: &Notification,
        alert_indexes: &[usize],
        robot: &Robot,
        extra_mention: &Mention,
    ) -> Message {
        self.render_within(
            template,
            notification,
            alert_indexes,
            robot,
            extra_mention,
            MESSAGE_BUDGET,
        )
    }

    /// Like [`render`](Self::render), within `budget` bytes of title and text.
    pub fn render_within(
        &self,
        template: &str,
        notification: &Notification,
        alert_indexes: &[usize],
        robot: &Robot,
        extra_mention: &Mention,
        budget: usize,
    ) -> Message {
        // The title is cut to its longest; the text takes the rest.
        let text_limit = budget.saturating_sub(MAX_TITLE_BYTES);
        let alerts: Vec<&Alert> = alert_indexes
            .iter()
            .filter_map(|&i| notification.alerts.get(i))
            .collect();
        let group = GroupView::new(notification, &alerts, robot.primary_keyword());
        let mention = robot.mention.merged(extra_mention);
        let finish = Finisher::new(&robot.keywords, &mention, &notification.external_url);
        let mut attempts = Attempts {
            renderer: self,
            template,
            group_context: map_entries(&Value::from(Serde(&group))),
            group: &group,
            alerts: &alerts,
            values: Arc::default(),
            reads: Arc::default(),
            finish: &finish,
            hidden_upstream: notification.truncated_alerts,
        };
        attempts.convert(FIRST_CONVERTED);

        // The render with the most alerts that fitted, kept so the answer is not rendered
        // twice. Each that fits shows more alerts than the one before.
        let mut best: Option<(usize, Attempt)> = None;
        let shown = alerts_that_fit(alerts.len(), text_limit, |shown| {
            let attempt = attempts.render(shown, text_limit);
            let probe = attempt.probe();
            if probe.fits(text_limit) {
                best = Some((shown, attempt));
            }
            probe
        });
        // Only when not even one alert fits was the answer not rendered already.
        let Attempt { title, text, .. } = match best {
            Some((most, attempt)) if most == shown => attempt,
            _ => attempts.render(shown, usize::MAX),
        };
        // A render without a limit is never stopped.
        let text = text.unwrap_or_default();
        let text = if text.len() <= text_limit {
            text
        } else {
            // A single alert larger than the limit: cut its body, keep what `finish` adds.
            finish.cut(&text, attempts.omitted(shown), "…", text_limit)
        };
        Message {
            title,
            text,
            mention,
        }
    }

    /// The output of one part of a template, or `None` if it passed the output's limit:
    /// the template is stopped there, as nothing it could write after would make it fit.
    fn render_part(
        &self,
        template: &str,
        part: TemplatePart,
        context: &Value,
        output: &mut LimitedOutput,
    ) -> Result<Option<String>, minijinja::Error> {
        let template = self.env.get_template(&key(template, part))?;
        match template.render_captured_to(context.clone(), &mut *output) {
            Ok(_) => Ok(Some(output.take())),
            Err(_) if output.passed() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The renders of one message with more or fewer of its alerts shown. What templates see
/// is converted to minijinja values once and shared by every render: the group's
/// variables, and the alerts up to the furthest any template has read.
struct Attempts<'a> {
    renderer: &'a Renderer,
    template: &'a str,
    /// The group's variables: each render's context, but for `alerts`.
    group_context: BTreeMap<Value, Value>,
    group: &'a GroupView,
    alerts: &'a [&'a Alert],
    /// The first alerts as templates see them.
    values: Arc<Vec<Value>>,
    reads: Arc<Reads>,
    finish: &'a Finisher<'a>,
    hidden_upstream: u64,
}

/// A finished title and text, with the first so many alerts shown.
struct Attempt {
    title: String,
    /// `None` if the template passed the limit and was stopped.
    text: Option<String>,
    /// How many alerts the text template had read when it was stopped.
    read: usize,
}

impl Attempt {
    fn probe(&self) -> Probe {
        match &self.text {
            Some(text) => Probe::Finished { bytes: text.len() },
            None => Probe::Stopped { read: self.read },
        }
    }
}

/// Why a template gave no output.
enum Failure {
    /// It read an alert not converted yet, and was stopped: convert this many first.
    Unconverted(usize),
    /// It failed to render (and that was logged).
    Template,
}

impl Attempts<'_> {
    /// Renders the first `shown` alerts, stopping the text template once it passes `limit`
    /// bytes.
    fn render(&mut self, shown: usize, limit: usize) -> Attempt {
        loop {
            match self.try_render(shown, limit) {
                Ok(attempt) => return attempt,
                Err(more) => self.convert(more.min(shown)),
            }
        }
    }

    /// Renders the first `shown` alerts. If a template reads an alert not converted yet,
    /// gives up and returns how many alerts to convert before trying again.
    fn try_render(&self, shown: usize, limit: usize) -> Result<Attempt, usize> {
        let context = self.context(shown);
        let (title, body) = match self.render_parts(self.template, &context, limit) {
            Ok(parts) => parts,
            Err(Failure::Unconverted(more)) => return Err(more),
            Err(Failure::Template) => match self.render_parts(BUILTIN, &context, limit) {
                Ok(parts) => parts,
                Err(Failure::Unconverted(more)) => return Err(more),
                Err(Failure::Template) => {
                    let (title, text) = self.group.plain(&self.alerts[..shown]);
                    (title, Some(text))
                }
            },
        };
        Ok(Attempt {
            title: self.finish.title(&title),
            text: body.map(|body| self.finish.text(body, self.omitted(shown))),
            read: self.reads.read.load(Ordering::Relaxed),
        })
    }

    fn render_parts(
        &self,
        template: &str,
        context: &Value,
        limit: usize,
    ) -> Result<(String, Option<String>), Failure> {
        let render = |part, limit| {
            self.reads.read.store(0, Ordering::Relaxed);
            let mut output = LimitedOutput {
                bytes: Vec::new(),
                limit,
                reads: Arc::clone(&self.reads),
            };
            let result = self
                .renderer
                .render_part(template, part, context, &mut output);
            let unconverted = self.reads.unconverted.load(Ordering::Relaxed);
            if unconverted > 0 {
                // At least twice as many as before, so that the renders given up stay a
                // fraction of the work; and as many as this template would read before
                // passing the limit, at the bytes per alert it wrote so far.
                let converted = self.values.len();
                let to_limit = converted.saturating_mul(limit) / output.bytes.len().max(1);
                return Err(Failure::Unconverted(
                    unconverted.max(2 * converted).max(to_limit),
                ));
            }
            result.map_err(|e| {
                tracing::warn!(
                    message = "Template failed to render; using the built-in one.",
                    template,
                    error = %e
                );
                Failure::Template
            })
        };
        // A title as long as the limit is cut anyway; only the text is stopped early.
        let title = render(TemplatePart::Title, usize::MAX)?.unwrap_or_default();
        Ok((title, render(TemplatePart::Text, limit)?))
    }

    /// The context of a render showing the first `shown` alerts; the title and the text
    /// share it.
    fn context(&self, shown: usize) -> Value {
        self.reads.unconverted.store(0, Ordering::Relaxed);
        let alerts = ShownAlerts {
            values: Arc::clone(&self.values),
            shown,
            reads: Arc::clone(&self.reads),
        };
        let mut context = self.group_context.clone();
        context.insert(Value::from("alerts"), Value::from_object(alerts));
        Value::from(context)
    }

    /// Converts the first `count` alerts (or all there are) to template values.
    fn convert(&mut self, count: usize) {
        let count = count.min(self.alerts.len());
        let values = Arc::make_mut(&mut self.values);
        for alert in &self.alerts[values.len().min(count)..count] {
            let view = AlertView::new(alert, &self.renderer.timezone);
            values.push(Value::from(Serde(&view)));
        }
    }

    /// Alerts the "…and N more" note counts when `shown` are shown.
    fn omitted(&self, shown: usize) -> u64 {
        (self.alerts.len() - shown) as u64 + self.hidden_upstream
    }
}

/// A map's entries, or none if `value` is not a map.
fn map_entries(value: &Value) -> BTreeMap<Value, Value> {
    value
        .try_iter()
        .into_iter()
        .flatten()
        .filter_map(|key| Some((key.clone(), value.get_item(&key).ok()?)))
        .collect()
}

/// How far a template read into `alerts`.
#[derive(Debug, Default)]
struct Reads {
    /// One past the furthest alert read.
    read: AtomicUsize,
    /// One past the furthest alert read that was not converted yet; 0 if none.
    unconverted: AtomicUsize,
}

/// `alerts` in a template: the first `shown` alerts of the message. A template that reads
/// one not converted yet gets nothing, and its render is stopped and done again.
#[derive(Debug)]
struct ShownAlerts {
    values: Arc<Vec<Value>>,
    shown: usize,
    reads: Arc<Reads>,
}

impl Object for ShownAlerts {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = key.as_usize().filter(|&index| index < self.shown)?;
        let value = self.values.get(index);
        let reads = if value.is_some() {
            &self.reads.read
        } else {
            &self.reads.unconverted
        };
        reads.fetch_max(index + 1, Ordering::Relaxed);
        value.cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.shown)
    }
}

/// Collects a template's output. Fails the write that takes it past `limit` bytes, and any
/// after the template read an alert not converted yet: either stops the template.
struct LimitedOutput {
    bytes: Vec<u8>,
    limit: usize,
    reads: Arc<Reads>,
}

impl LimitedOutput {
    fn passed(&self) -> bool {
        self.bytes.len() > self.limit
    }

    fn take(&mut self) -> String {
        // minijinja writes whole `str`s.
        String::from_utf8(std::mem::take(&mut self.bytes))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl io::Write for LimitedOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.reads.unconverted.load(Ordering::Relaxed) > 0 {
            return Err(io::Error::other(
                "the template read an alert not converted yet",
            ));
        }
        self.bytes.extend_from_slice(bytes);
        if self.passed() {
            return Err(io::Error::other("the text passed the size limit"));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one render told [`alerts_that_fit`].
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// The finished text has this many bytes.
    Finished { bytes: usize },
    /// The template passed the limit after reading this many alerts, and was stopped.
    Stopped { read: usize },
}

impl Probe {
    fn fits(self, limit: usize) -> bool {
        matches!(self, Probe::Finished { bytes } if bytes <= limit)
    }
}

/// How many of `count` alerts to show, where `probe(k)` renders the first `k`: all of them
/// if they fit, otherwise a `k` that fits while `k + 1` does not (for a text that grows
/// with every alert, the most that fit), and 1 if not even one fits.
///
/// A render that passes the limit is stopped there, so no render costs much more than the
/// alerts that fit. The first shows all alerts. The next ones go where the last render
/// that passed the limit was stopped, or where a straight line through the sizes of
/// finished ones reaches the limit: with alerts of even size, the answer and one more.
/// After [`MAX_GUESSES`] the search halves the range that is left.
fn alerts_that_fit(count: usize, limit: usize, mut probe: impl FnMut(usize) -> Probe) -> usize {
    let first = probe(count);
    if count <= 1 || first.fits(limit) {
        return count;
    }
    // The most alerts known to fit with the text's bytes, and the fewest known not to.
    let mut fit: Option<(usize, usize)> = None;
    let (mut too_many, mut too_long) = (count, first);
    // The last two finished renders, for the line.
    let mut finished: [Option<(usize, usize)>; 2] = [None, None];
    if let Probe::Finished { bytes } = first {
        finished[1] = Some((count, bytes));
    }
    let mut guesses = 0;
    loop {
        let most = fit.map_or(0, |(shown, _)| shown);
        if too_many == most + 1 {
            return most.max(1);
        }
        let guess = match too_long {
            _ if guesses == MAX_GUESSES => None,
            // The alert being written when the limit passed is the first that does not fit,
            // unless the template read them all first.
            Probe::Stopped { read } if read < too_many => Some(read.saturating_sub(1)),
            Probe::Stopped { .. } => None,
            Probe::Finished { bytes } => match fit {
                Some(fit) => extrapolate(limit, Some((too_many, bytes)), fit),
                None => finished[1].and_then(|to| extrapolate(limit, finished[0], to)),
            },
        };
        if guess.is_some() {
            guesses += 1;
        }
        let shown = guess
            .unwrap_or(most + (too_many - most) / 2)
            .clamp(most + 1, too_many - 1);
        let result = probe(shown);
        if let Probe::Finished { bytes } = result {
            finished = [finished[1], Some((shown, bytes))];
            if bytes <= limit {
                fit = Some((shown, bytes));
                continue;
            }
        }
        (too_many, too_long) = (shown, result);
    }
}

/// Where the straight line through `from` and `to` (alerts shown, bytes), or through `to`
/// and the origin, reaches `limit` bytes: the most alerts that fit if each one adds as
/// many bytes as those did. `None` if the line does not rise.
fn extrapolate(limit: usize, from: Option<(usize, usize)>, to: (usize, usize)) -> Option<usize> {
    let wide = |n: usize| n as i128;
    let (from_shown, from_bytes) = from.unwrap_or((0, 0));
    let (shown, bytes) = (wide(to.0), wide(to.1));
    let (mut more_shown, mut more_bytes) = (shown - wide(from_shown), bytes - wide(from_bytes));
    if more_shown < 0 {
        (more_shown, more_bytes) = (-more_shown, -more_bytes);
    }
    if more_shown == 0 || more_bytes <= 0 {
        return None;
    }
    let at_limit = shown + ((wide(limit) - bytes) * more_shown).div_euclid(more_bytes);
    Some(usize::try_from(at_limit).unwrap_or(0))
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
    /// The `@` text of the mentions.
    at: String,
    external_url: &'a str,
}

impl<'a> Finisher<'a> {
    fn new(keywords: &'a [String], mention: &Mention, external_url: &'a str) -> Self {
        Finisher {
            keywords,
            at: mention.at_text(),
            external_url,
        }
    }

    /// The title cut to [`MAX_TITLE_BYTES`], with a keyword if it lacks one.
    fn title(&self, title: &str) -> String {
        let title = title.trim();
        let cut = cut_at_char_boundary(title, MAX_TITLE_BYTES);
        match self.missing_keyword(cut) {
            Some(keyword) => {
                let suffix = format!(" · {keyword}");
                let room = MAX_TITLE_BYTES.saturating_sub(suffix.len());
                format!("{}{suffix}", cut_at_char_boundary(title, room))
            }
            None => cut.to_owned(),
        }
    }

    /// `text` cut to `limit` bytes in all, ending in `marker` and what [`text`](Self::text)
    /// adds.
    fn cut(&self, text: &str, omitted: u64, marker: &str, limit: usize) -> String {
        let tail_bytes = self.text(String::new(), omitted).len() + marker.len();
        let cut = cut_at_char_boundary(text, limit.saturating_sub(tail_bytes));
        let text = self.text(format!("{cut}{marker}"), omitted);
        cut_at_char_boundary(&text, limit).to_owned()
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
        if !self.at.is_empty() {
            text.push_str("\n\n");
            text.push_str(&self.at);
        }
        text
    }

    fn missing_keyword(&self, text: &str) -> Option<&str> {
        let first = self.keywords.first()?;
        (!self.keywords.iter().any(|k| text.contains(k.as_str()))).then_some(first.as_str())
    }
}

/// `message`, rendered before for `robot`, cut to `budget` bytes of title and text: for a
/// robot that DingTalk said the message was too long for. The text is cut at the end of a
/// line, says so, and keeps the keyword and the `@` text.
pub fn shorten(message: &Message, robot: &Robot, budget: usize) -> Message {
    if message.size() <= budget {
        return message.clone();
    }
    let finish = Finisher::new(&robot.keywords, &message.mention, "");
    let title = finish.title(&message.title);
    let limit = budget.saturating_sub(title.len());
    let marker = "\n\n…(shortened: DingTalk refused the whole message as too long)";
    let tail_bytes = finish.text(String::new(), 0).len() + marker.len();
    let body = cut_at_char_boundary(&message.text, limit.saturating_sub(tail_bytes));
    let body = body.rfind('\n').map_or(body, |end| &body[..end]);
    Message {
        text: finish.cut(body, 0, marker, limit),
        title,
        mention: message.mention.clone(),
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

/// Facts about the whole group, computed once per message; with `alerts`, what templates
/// see.
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
    fn plain(&self, alerts: &[&Alert]) -> (String, String) {
        let names: Vec<&str> = alerts.iter().map(|a| a.name()).collect();
        (
            format!("[{}] {}", self.status.to_uppercase(), self.alertname),
            names.join("\n\n"),
        )
    }
}

/// One alert as templates see it.
#[derive(Serialize)]
struct AlertView<'a> {
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
    fn new(alert: &'a Alert, timezone: &TimeZone) -> Self {
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
