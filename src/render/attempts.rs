//! The renders of one message with more or fewer of its alerts shown, sharing the work:
//! what templates see is converted to minijinja values once, the alerts only as far as a
//! template reads, and a render is stopped once its text passes the limit.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};

use super::fit::Probe;
use super::view::{AlertView, GroupView};
use super::{BUILTIN, Finisher, Renderer, TemplatePart};
use crate::ingest::Alert;

/// The renders of one message with more or fewer of its alerts shown. What templates see
/// is converted to minijinja values once and shared by every render: the group's
/// variables, and the alerts up to the furthest any template has read.
pub(super) struct Attempts<'a> {
    pub(super) renderer: &'a Renderer,
    pub(super) template: &'a str,
    /// The group's variables: each render's context, but for `alerts`.
    pub(super) group_context: BTreeMap<Value, Value>,
    pub(super) group: &'a GroupView,
    pub(super) alerts: &'a [&'a Alert],
    /// The first alerts as templates see them.
    pub(super) values: Arc<Vec<Value>>,
    pub(super) reads: Arc<Reads>,
    pub(super) finish: &'a Finisher<'a>,
    pub(super) hidden_upstream: u64,
}

/// A finished title and text, with the first so many alerts shown.
pub(super) struct Attempt {
    pub(super) title: String,
    /// `None` if the template passed the limit and was stopped.
    pub(super) text: Option<String>,
    /// How many alerts the text template had read when it was stopped.
    pub(super) read: usize,
}

impl Attempt {
    pub(super) fn probe(&self) -> Probe {
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
    pub(super) fn render(&mut self, shown: usize, limit: usize) -> Attempt {
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
    pub(super) fn convert(&mut self, count: usize) {
        let count = count.min(self.alerts.len());
        let values = Arc::make_mut(&mut self.values);
        for alert in &self.alerts[values.len().min(count)..count] {
            let view = AlertView::new(alert, &self.renderer.timezone, self.group);
            values.push(Value::from(Serde(&view)));
        }
    }

    /// Alerts the "…and N more" note counts when `shown` are shown.
    pub(super) fn omitted(&self, shown: usize) -> u64 {
        (self.alerts.len() - shown) as u64 + self.hidden_upstream
    }
}

/// A map's entries, or none if `value` is not a map.
pub(super) fn map_entries(value: &Value) -> BTreeMap<Value, Value> {
    value
        .try_iter()
        .into_iter()
        .flatten()
        .filter_map(|key| Some((key.clone(), value.get_item(&key).ok()?)))
        .collect()
}

/// How far a template read into `alerts`.
#[derive(Debug, Default)]
pub(super) struct Reads {
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
pub(super) struct LimitedOutput {
    pub(super) bytes: Vec<u8>,
    pub(super) limit: usize,
    pub(super) reads: Arc<Reads>,
}

impl LimitedOutput {
    pub(super) fn passed(&self) -> bool {
        self.bytes.len() > self.limit
    }

    pub(super) fn take(&mut self) -> String {
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
