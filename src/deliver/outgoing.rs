//! What a worker sends at once: one group's newest message (with the older ones it
//! supersedes), or a digest, and how it goes out (as a message, or as the group's card).

use jiff::tz::TimeZone;

use super::Post;
use super::cards::{CardGroup, Cards};
use super::supersede::Line;
use crate::dingtalk::{Message, Robot};
use crate::queue::Envelope;
use crate::render;

/// Messages chosen for one send.
pub(super) struct Outgoing {
    /// The queued messages it covers.
    pub(super) envelopes: Vec<Envelope>,
    pub(super) message: Message,
    pub(super) strategy: String,
    /// How many of `envelopes` a newer state of their group supersedes.
    pub(super) superseded: usize,
    /// Whether it goes as the card of its group (that of the latest envelope, the last).
    pub(super) card: bool,
}

impl Outgoing {
    /// One line: a group's newest message with the older ones it supersedes (noted in the
    /// text, unless it updates the group's card).
    pub(super) fn line(line: Line, zone: &TimeZone, robot: &Robot, budget: usize) -> Self {
        let latest = &line.latest;
        let card = CardGroup::of(robot, &latest.message, &latest.summary).is_some();
        let message = match card {
            true => render::shorten(&latest.message, robot, budget),
            false => line.message(zone, robot, budget),
        };
        Outgoing {
            message,
            strategy: line.latest.strategy.clone(),
            superseded: line.superseded.len(),
            card,
            envelopes: line.into_envelopes(),
        }
    }

    /// How the message goes to `robot`: as its group's card, or as a message.
    pub(super) fn post<'a>(&'a self, cards: &'a Cards, robot: &Robot) -> Post<'a> {
        let latest = self.envelopes.last().filter(|_| self.card);
        match latest.and_then(|latest| CardGroup::of(robot, &latest.message, &latest.summary)) {
            Some(group) => Post::Card(cards, group),
            None => Post::Message,
        }
    }

    pub(super) fn ids(&self) -> Vec<u64> {
        self.envelopes.iter().map(|m| m.id).collect()
    }

    pub(super) fn alerts(&self) -> usize {
        self.envelopes.iter().map(|m| m.summary.alerts.len()).sum()
    }
}
