//! Digests: one robot's pending messages merged into as few messages as fit DingTalk's
//! size limit, for when an alert storm leaves a robot more messages than its 20 a minute.
//!
//! This module owns the digest's format (title, heading, one entry per alert group,
//! Alertmanager link, keyword, `@` mentions) and the packing of groups into digests. It
//! decides neither when to digest nor what to do with the result (the delivery worker
//! does), and it must stay pure: no I/O, no clock, no config.
//!
//! A digest's text is its heading, then each group's entry, then the footer (link and
//! keyword), then the `@` text, joined by blank lines. Its length is the sum of those
//! parts, so packing can tell whether the next entry fits without building the text.

use std::borrow::Borrow;
use std::collections::HashMap;

use crate::dingtalk::{MAX_TITLE_BYTES, Mention, Message};
use crate::ingest::Status;
use crate::queue::{Envelope, GroupSummary};
use crate::render::cut_at_char_boundary;

/// Between the parts of a digest's text.
const BLANK_LINE: &str = "\n\n";

/// Pending messages merged into one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The merged messages' queue ids, in the order the digest lists them.
    pub ids: Vec<u64>,
    /// The message to send in their place.
    pub message: Message,
}

/// Merges `pending` (one robot's pending messages, oldest first) into as few digests as
/// fit `budget` bytes of title and text each. A single message is returned as it is.
pub fn digests<E: Borrow<Envelope>>(pending: &[E], keyword: &str, budget: usize) -> Vec<Digest> {
    if let [only] = pending {
        let only = only.borrow();
        return vec![Digest {
            ids: vec![only.id],
            message: only.message.clone(),
        }];
    }
    let mut listed: Vec<&Envelope> = pending.iter().map(Borrow::borrow).collect();
    listed.sort_by_key(|e| (e.summary.status != Status::Firing, e.id));

    // The title is cut to its longest; the text takes the rest.
    let text_limit = budget.saturating_sub(MAX_TITLE_BYTES);
    let empty = || Draft::new(text_limit);
    let mut finished = Vec::new();
    let mut draft = empty();
    for envelope in listed {
        let entry = entry(&envelope.summary);
        if !draft.ids.is_empty() && entry.len() > draft.room_for(envelope, keyword) {
            finished.push(std::mem::replace(&mut draft, empty()).finish(keyword));
        }
        let room = draft.room_for(envelope, keyword);
        let entry = if entry.len() <= room {
            entry
        } else {
            cut_entry(&envelope.summary, room)
        };
        draft.push(envelope, entry);
    }
    if !draft.ids.is_empty() {
        finished.push(draft.finish(keyword));
    }
    finished
}

/// A digest being filled.
struct Draft {
    /// Bytes its text may take.
    text_limit: usize,
    ids: Vec<u64>,
    entries: Vec<String>,
    /// Bytes of the entries, each with the blank line after it.
    entries_len: usize,
    frame: Frame,
}

impl Draft {
    fn new(text_limit: usize) -> Self {
        Draft {
            text_limit,
            ids: Vec::new(),
            entries: Vec::new(),
            entries_len: 0,
            frame: Frame::default(),
        }
    }

    /// Bytes left for `envelope`'s entry if it joined this digest.
    fn room_for(&self, envelope: &Envelope, keyword: &str) -> usize {
        let used = self.frame.plus(envelope).len(keyword) + self.entries_len + BLANK_LINE.len();
        self.text_limit.saturating_sub(used)
    }

    fn push(&mut self, envelope: &Envelope, entry: String) {
        self.ids.push(envelope.id);
        self.entries_len += entry.len() + BLANK_LINE.len();
        self.entries.push(entry);
        self.frame = self.frame.plus(envelope);
    }

    fn finish(self, keyword: &str) -> Digest {
        let frame = self.frame;
        let mut text = frame.heading();
        text.push_str(BLANK_LINE);
        for entry in &self.entries {
            text.push_str(entry);
            text.push_str(BLANK_LINE);
        }
        text.push_str(&frame.footer(keyword));
        let at = frame.mention.at_text();
        if !at.is_empty() {
            text.push_str(BLANK_LINE);
            text.push_str(&at);
        }
        // Only a frame that alone exceeds the limit (thousands of mentions, a giant URL or
        // keyword) gets here too long; a cut text is better than an undeliverable one.
        let text = cut_at_char_boundary(&text, self.text_limit).to_owned();
        Digest {
            ids: self.ids,
            message: Message {
                title: frame.title(keyword),
                text,
                mention: frame.mention,
                // A digest of many groups has no one page to open: sent as markdown, or
                // as text by a text robot, whatever the strategies of its messages said.
                buttons: Vec::new(),
                msgtype: None,
            },
        }
    }
}

/// What a digest's text has around its entries, and what decides it.
#[derive(Clone, Default)]
struct Frame {
    firing: usize,
    resolved: usize,
    /// The first non-empty Alertmanager URL of the digest's groups.
    external_url: String,
    /// Everyone the digest's messages mention.
    mention: Mention,
}

impl Frame {
    /// This frame with `envelope`'s group added.
    fn plus(&self, envelope: &Envelope) -> Frame {
        let mut next = self.clone();
        match envelope.summary.status {
            Status::Firing => next.firing += 1,
            Status::Resolved => next.resolved += 1,
        }
        if next.external_url.is_empty() {
            next.external_url.clone_from(&envelope.summary.external_url);
        }
        next.mention = self.mention.merged(&envelope.message.mention);
        next
    }

    /// Bytes of the text around the entries: heading, footer, `@` text and blank lines.
    fn len(&self, keyword: &str) -> usize {
        let at = self.mention.at_text().len();
        let at = if at == 0 { 0 } else { BLANK_LINE.len() + at };
        self.heading().len() + BLANK_LINE.len() + self.footer(keyword).len() + at
    }

    /// E.g. `[DIGEST] 37 alert groups: 30 firing, 7 resolved`.
    fn summary(&self) -> String {
        let groups = self.firing + self.resolved;
        let noun = if groups == 1 { "group" } else { "groups" };
        format!(
            "[DIGEST] {groups} alert {noun}: {} firing, {} resolved",
            self.firing, self.resolved
        )
    }

    fn title(&self, keyword: &str) -> String {
        let title = match keyword {
            "" => self.summary(),
            _ => format!("{} · {keyword}", self.summary()),
        };
        cut_at_char_boundary(&title, MAX_TITLE_BYTES).to_owned()
    }

    fn heading(&self) -> String {
        format!("### {}", self.summary())
    }

    /// The link to Alertmanager and the keyword, which the robot needs in every text.
    fn footer(&self, keyword: &str) -> String {
        match (self.external_url.as_str(), keyword) {
            ("", keyword) => keyword.to_owned(),
            (url, "") => format!("[Alertmanager]({url})"),
            (url, keyword) => format!("[Alertmanager]({url}) · {keyword}"),
        }
    }
}

/// A group's entry: its title in bold, then its alert names as a list.
fn entry(summary: &GroupSummary) -> String {
    let lines: Vec<String> = name_lines(&summary.alerts)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    let mut entry = bold(&summary.title);
    if !lines.is_empty() {
        entry.push_str(BLANK_LINE);
        entry.push_str(&lines.join("\n"));
    }
    entry
}

/// A group's entry cut to `room` bytes: as many name lines as fit, then how many alerts
/// were left out.
fn cut_entry(summary: &GroupSummary, room: usize) -> String {
    let total = summary.alerts.len();
    // Room for the closing line, whatever the count left out turns out to be.
    let reserve = BLANK_LINE.len() + more_alerts(total).len();
    let title = cut_at_char_boundary(&summary.title, room.saturating_sub(reserve + 4));
    let mut entry = bold(title);
    let mut shown = 0;
    for (index, (line, count)) in name_lines(&summary.alerts).into_iter().enumerate() {
        let separator = if index == 0 { BLANK_LINE } else { "\n" };
        if entry.len() + separator.len() + line.len() + reserve > room {
            break;
        }
        entry.push_str(separator);
        entry.push_str(&line);
        shown += count;
    }
    if shown < total {
        entry.push_str(BLANK_LINE);
        entry.push_str(&more_alerts(total - shown));
    }
    entry
}

/// `- Name`, or `- Name ×3` for a name that occurs three times, in first-seen order, with
/// how many alerts each line stands for.
fn name_lines(alerts: &[String]) -> Vec<(String, usize)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for name in alerts {
        let at = *position.entry(name).or_insert_with(|| {
            counts.push((name, 0));
            counts.len() - 1
        });
        counts[at].1 += 1;
    }
    counts
        .into_iter()
        .map(|(name, count)| match count {
            1 => (format!("- {name}"), count),
            _ => (format!("- {name} ×{count}"), count),
        })
        .collect()
}

fn more_alerts(omitted: usize) -> String {
    let noun = if omitted == 1 { "alert" } else { "alerts" };
    format!("…and {omitted} more {noun}")
}

fn bold(text: &str) -> String {
    format!("**{text}**")
}
