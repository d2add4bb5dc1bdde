//! What every message ends with, whatever the template said: a keyword the robot takes
//! (in the title too), the `@` text of its mentions, and a cut that keeps both when the
//! text is too long; and the bridge's own short messages, finished the same way.

use crate::dingtalk::{MAX_TITLE_BYTES, Mention, Message, Robot};

/// Adds to a rendered message what every message must have, whatever the template said.
pub(super) struct Finisher<'a> {
    keywords: &'a [String],
    /// The `@` text of the mentions.
    at: String,
    external_url: &'a str,
}

impl<'a> Finisher<'a> {
    pub(super) fn new(keywords: &'a [String], mention: &Mention, external_url: &'a str) -> Self {
        Finisher {
            keywords,
            at: mention.at_text(),
            external_url,
        }
    }

    /// The title cut to [`MAX_TITLE_BYTES`], with a keyword if it lacks one.
    pub(super) fn title(&self, title: &str) -> String {
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
    pub(super) fn cut(&self, text: &str, omitted: u64, marker: &str, limit: usize) -> String {
        let tail_bytes = self.text(String::new(), omitted).len() + marker.len();
        let cut = cut_at_char_boundary(text, limit.saturating_sub(tail_bytes));
        let text = self.text(format!("{cut}{marker}"), omitted);
        cut_at_char_boundary(&text, limit).to_owned()
    }

    pub(super) fn text(&self, mut text: String, omitted: u64) -> String {
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

/// A short message of the bridge's own for `robot` (an escalation step's): `body` with the
/// keyword it lacks and the `@` text of `mention`.
pub fn notice(robot: &Robot, title: &str, body: String, mention: Mention) -> Message {
    let finish = Finisher::new(&robot.keywords, &mention, "");
    Message {
        title: finish.title(title),
        text: finish.text(body, 0),
        mention,
        buttons: Vec::new(),
        msgtype: None,
    }
}

/// `message`, rendered before for `robot`, cut to `budget` bytes of title and text: for a
/// robot whose budget was lowered after DingTalk said a message was too long. The text is
/// cut at the end of a line, says so, and keeps the keyword and the `@` text.
pub fn shorten(message: &Message, robot: &Robot, budget: usize) -> Message {
    if message.size() <= budget {
        return message.clone();
    }
    let finish = Finisher::new(&robot.keywords, &message.mention, "");
    let title = finish.title(&message.title);
    let limit = budget.saturating_sub(title.len());
    let marker = "\n\n…(shortened: DingTalk takes only shorter messages from this robot)";
    let tail_bytes = finish.text(String::new(), 0).len() + marker.len();
    let body = cut_at_char_boundary(&message.text, limit.saturating_sub(tail_bytes));
    let body = body.rfind('\n').map_or(body, |end| &body[..end]);
    Message {
        text: finish.cut(body, 0, marker, limit),
        title,
        mention: message.mention.clone(),
        buttons: message.buttons.clone(),
        msgtype: message.msgtype,
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
