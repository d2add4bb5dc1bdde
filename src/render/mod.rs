//! Rendering: one DingTalk message for the alerts of a notification that go to one robot
//! through one strategy.
//!
//! Templates are minijinja, compiled once per config load. Whatever a template produces,
//! the message leaving this module carries one of the robot's keywords in its title and
//! its text, the `@` text of every mention, and fits the size budget (title and text
//! together; the robot's [`message_budget`](Robot::message_budget) unless DingTalk was seen
//! to take less): when the alerts do
//! not fit, as many as fit are rendered and the text ends with "…and N more alerts" and a
//! link to Alertmanager. Finding how many fit takes a few renders of about
//! that many alerts, however many the group has: a render stops once its text passes the
//! limit, and each alert becomes a template value once, when a template first reads it.
//! Rendering does no I/O.

mod attempts;
mod extras;
mod finish;
mod fit;
mod strict;
mod view;

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Environment;
use minijinja::value::{Serde, Value};

use crate::dingtalk::{MAX_BUTTON_BYTES, MAX_TITLE_BYTES, Mention, Message, MsgType, Robot};
use crate::ingest::{Alert, Notification};
use attempts::{Attempt, Attempts, LimitedOutput, map_entries};
use fit::alerts_that_fit;
use view::GroupView;

pub use extras::{ActionLink, Actions, Extras, Handling};
use finish::Finisher;
pub use finish::{cut_at_char_boundary, notice, shorten};

/// Name of the built-in template, which a config may override.
pub const DEFAULT_TEMPLATE: &str = "default";
/// The built-in template stays reachable under this name as the fallback for templates
/// that fail at render time.
const BUILTIN: &str = "builtin";

const BUILTIN_TITLE: &str = include_str!("templates/default.title.j2");
const BUILTIN_TEXT: &str = include_str!("templates/default.text.j2");
/// The built-in Chinese template: 告警/恢复, 级别, 开始时间, 持续时间.
pub const DEFAULT_ZH_TEMPLATE: &str = "default-zh";
const BUILTIN_ZH_TITLE: &str = include_str!("templates/default-zh.title.j2");
const BUILTIN_ZH_TEXT: &str = include_str!("templates/default-zh.text.j2");

/// The work one render of a template may do, in minijinja's fuel (about one instruction,
/// or 64 bytes of data, each): a template that loops without end fails instead of
/// holding up a worker, and the built-in one is used. A full message of the built-in
/// templates takes a small part of it (the 1000-alert golden files are rendered under it).
const FUEL: u64 = 2_000_000;

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
        env.set_fuel(Some(FUEL));
        // Replaces minijinja's HTML `escape`, of no use in DingTalk markdown.
        env.add_filter("escape", |value: &str| {
            crate::dingtalk::markdown::escape(value)
        });
        let builtin = [
            (BUILTIN, BUILTIN_TITLE, BUILTIN_TEXT),
            (DEFAULT_TEMPLATE, BUILTIN_TITLE, BUILTIN_TEXT),
            (DEFAULT_ZH_TEMPLATE, BUILTIN_ZH_TITLE, BUILTIN_ZH_TEXT),
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

    /// The places template `name` reads a variable templates are not given (a typo such
    /// as `alert.lables`), at most one per part, found by rendering it on sample alerts
    /// with someone on call of each of the `schedules`.
    pub fn unknown_variables(&self, name: &str, schedules: &[&str]) -> Vec<TemplateError> {
        strict::unknown_variables(self, name, schedules)
    }

    /// Whether a template of that name exists.
    pub fn has_template(&self, name: &str) -> bool {
        self.env
            .get_template(&key(name, TemplatePart::Text))
            .is_ok()
    }

    /// Renders the alerts at `alert_indexes` of `notification` for `robot` at `now`, with
    /// the `extras` of the strategy (more people to mention, another message type), within
    /// the robot's full budget ([`Robot::message_budget`]).
    pub fn render(
        &self,
        template: &str,
        notification: &Notification,
        alert_indexes: &[usize],
        robot: &Robot,
        extras: &Extras,
        now: Timestamp,
    ) -> Message {
        self.render_within(
            template,
            notification,
            alert_indexes,
            robot,
            extras,
            robot.message_budget(),
            now,
        )
    }

    /// Like [`render`](Self::render), within `budget` bytes of title and text.
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of `render`, plus the budget"
    )]
    pub fn render_within(
        &self,
        template: &str,
        notification: &Notification,
        alert_indexes: &[usize],
        robot: &Robot,
        extras: &Extras,
        budget: usize,
        now: Timestamp,
    ) -> Message {
        let alerts: Vec<&Alert> = alert_indexes
            .iter()
            .filter_map(|&i| notification.alerts.get(i))
            .collect();
        let actions = extras.actions.as_deref();
        let buttons = match extras.msgtype.unwrap_or(robot.msgtype) {
            MsgType::ActionCard | MsgType::Card => {
                view::buttons(notification, &alerts, robot.primary_keyword(), actions)
            }
            MsgType::Markdown | MsgType::Text => Vec::new(),
        };
        // Buttons beyond the budget's margin for them (action links) take from the text.
        let button_bytes: usize = buttons.iter().map(|b| b.title.len() + b.url.len()).sum();
        let over_margin = button_bytes.saturating_sub(MAX_BUTTON_BYTES);
        // The title is cut to its longest; the text takes the rest.
        let text_limit = budget.saturating_sub(MAX_TITLE_BYTES + over_margin);
        let mut group = GroupView::new(notification, &alerts, robot.primary_keyword(), now)
            .with_on_call(&extras.schedules);
        if let Some(actions) = actions {
            group = group.with_actions(actions, buttons.is_empty(), &self.timezone);
        }
        let (mention, shown) = if robot.can_mention() {
            let all = robot
                .mention
                .merged(&extras.mention)
                .merged(&extras.on_call);
            (all.clone(), all)
        } else {
            // Reached 1:1 (`Robot::one_to_one_body`), not named in the group.
            let reached = Mention {
                user_ids: extras.on_call.user_ids.clone(),
                ..Mention::default()
            };
            (reached, Mention::default())
        };
        let finish = Finisher::new(&robot.keywords, &shown, &notification.external_url);
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
            buttons,
            msgtype: extras.msgtype,
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

fn key(name: &str, part: TemplatePart) -> String {
    match part {
        TemplatePart::Title => format!("{name}.title"),
        TemplatePart::Text => format!("{name}.text"),
    }
}
