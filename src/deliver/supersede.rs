//! A group's newer state supersedes its pending older ones: when a robot is paused or
//! backlogged, a group that fires and resolves several times must not reach the group as a
//! train of stale messages. Of the pending messages of one (alert group, strategy), only
//! the newest goes out, where the oldest waited in the queue, with a note of what changed
//! while they waited ("fired 3× and resolved 3× since 08:00") that names every alert of the
//! older messages the newest does not. The older ones leave the queue when the newest is
//! delivered, as a digest's merged messages do: settled, not dead-lettered.
//!
//! Pure: no I/O, no clock (times are the messages' own), no config but what is passed in.
//! Messages without an alert group (queued by an older release) are never superseded.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use jiff::tz::TimeZone;

use crate::dingtalk::{Message, Robot};
use crate::ingest::Status;
use crate::queue::{Envelope, GroupSummary};
use crate::render;

/// One message to send in place of one or more pending ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The newest message of its group.
    pub latest: Envelope,
    /// The older messages of the same group and strategy it replaces, oldest first.
    pub superseded: Vec<Envelope>,
}

/// `pending` (one robot's messages, oldest first) as the lines to send: each group's
/// newest message with the older ones it supersedes, in the order their oldest message
/// was queued. A group whose note would take more than a quarter of `budget` bytes is not
/// merged: its messages go as they are.
pub fn supersede(pending: Vec<Envelope>, zone: &TimeZone, budget: usize) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::with_capacity(pending.len());
    let mut line_of: HashMap<u64, usize> = HashMap::new();
    for envelope in pending {
        let group = envelope.group();
        match group.and_then(|group| line_of.get(&group)) {
            Some(&index) => {
                let line = &mut lines[index];
                let older = std::mem::replace(&mut line.latest, envelope);
                line.superseded.push(older);
            }
            None => {
                if let Some(group) = group {
                    line_of.insert(group, lines.len());
                }
                lines.push(Line {
                    latest: envelope,
                    superseded: Vec::new(),
                });
            }
        }
    }
    lines
        .into_iter()
        .flat_map(|line| {
            if line.note(zone).len() > budget / 4 {
                line.unmerged()
            } else {
                vec![line]
            }
        })
        .collect()
}

impl Line {
    /// Every message of the line, oldest first: what leaves the queue when it is sent.
    pub fn into_envelopes(self) -> Vec<Envelope> {
        let mut all = self.superseded;
        all.push(self.latest);
        all
    }

    /// The message to send: the newest, with the note at the end of its text, within
    /// `budget` bytes of title and text for `robot`.
    pub fn message(&self, zone: &TimeZone, robot: &Robot, budget: usize) -> Message {
        let note = self.note(zone);
        if note.is_empty() {
            return render::shorten(&self.latest.message, robot, budget);
        }
        let appended = format!("\n\n{note}");
        let mut message = render::shorten(
            &self.latest.message,
            robot,
            budget.saturating_sub(appended.len()),
        );
        message.text.push_str(&appended);
        message
    }

    /// The line as one envelope for a digest: the newest, and for a line of more than one,
    /// a copy whose summary names every alert of the line and whose title carries what
    /// changed.
    pub fn for_digest(&self, zone: &TimeZone) -> Cow<'_, Envelope> {
        if self.superseded.is_empty() {
            return Cow::Borrowed(&self.latest);
        }
        let mut envelope = self.latest.clone();
        let GroupSummary { title, alerts, .. } = &mut envelope.summary;
        title.push_str(&format!(" ({})", self.changes(zone)));
        alerts.extend(self.missing_names());
        Cow::Owned(envelope)
    }

    /// What changed while the line's messages waited, with the alerts only the older
    /// messages named; empty for a line of one message.
    fn note(&self, zone: &TimeZone) -> String {
        if self.superseded.is_empty() {
            return String::new();
        }
        let mut note = format!(
            "While waiting to be sent, this group {}; this is its latest state.",
            self.changes(zone)
        );
        let missing = self.missing_names();
        if !missing.is_empty() {
            note.push_str(" Also in the earlier messages: ");
            note.push_str(&missing.join(", "));
            note.push('.');
        }
        note
    }

    /// E.g. `fired 3× and resolved 3× since 08:00`.
    fn changes(&self, zone: &TimeZone) -> String {
        let all = self.superseded.iter().chain([&self.latest]);
        let (mut fired, mut resolved) = (0, 0);
        for envelope in all {
            match envelope.summary.status {
                Status::Firing => fired += 1,
                Status::Resolved => resolved += 1,
            }
        }
        let first = self.superseded.first().unwrap_or(&self.latest).accepted_at;
        let first = first.to_zoned_datetime(zone.clone());
        let last = self.latest.accepted_at.to_zoned_datetime(zone.clone());
        let format = if first.date() == last.date() {
            "%H:%M"
        } else {
            "%Y-%m-%d %H:%M"
        };
        let since = first.strftime(format).to_string();
        match (fired, resolved) {
            (fired, 0) => format!("fired {fired}× since {since}"),
            (0, resolved) => format!("resolved {resolved}× since {since}"),
            (fired, resolved) => format!("fired {fired}× and resolved {resolved}× since {since}"),
        }
    }

    /// Names of alerts the older messages carried and the newest does not, in the order
    /// first seen.
    fn missing_names(&self) -> Vec<String> {
        let named: BTreeSet<&str> = self
            .latest
            .summary
            .alerts
            .iter()
            .map(String::as_str)
            .collect();
        let mut seen = BTreeSet::new();
        self.superseded
            .iter()
            .flat_map(|e| &e.summary.alerts)
            .filter(|name| !named.contains(name.as_str()) && seen.insert(name.as_str()))
            .cloned()
            .collect()
    }

    /// Each message of the line on a line of its own.
    fn unmerged(self) -> Vec<Line> {
        self.into_envelopes()
            .into_iter()
            .map(|latest| Line {
                latest,
                superseded: Vec::new(),
            })
            .collect()
    }
}
