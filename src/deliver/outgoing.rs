//! What a worker sends at once: one group's newest message (with the older ones it
//! supersedes), or a digest, and how it goes out (as a message, or as the group's card).

use jiff::tz::TimeZone;

use super::Post;
use super::cards::{CardGroup, Cards};
use super::supersede::Line;
use crate::dingtalk::{Message, Robot};
use crate::ingest::Status;
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
    /// For a robot that sends cards: the group's `groupKey`, and whether it resolved.
    pub(super) card: Option<(String, bool)>,
}

impl Outgoing {
    /// One line: a group's newest message with the older ones it supersedes (noted in the
    /// text, unless it updates the group's card).
    pub(super) fn line(line: Line, zone: &TimeZone, robot: &Robot, budget: usize) -> Self {
        let latest = &line.latest;
        let card = (robot.sends_cards(&latest.message) && !latest.summary.group_key.is_empty())
            .then(|| {
                (
                    latest.summary.group_key.clone(),
                    latest.summary.status == Status::Resolved,
                )
            });
        let message = match card {
            Some(_) => render::shorten(&latest.message, robot, budget),
            None => line.message(zone, robot, budget),
        };
        Outgoing {
            message,
            strategy: line.latest.strategy.clone(),
            superseded: line.superseded.len(),
            card,
            envelopes: line.into_envelopes(),
        }
    }

    /// How the message goes: as its group's card, or as a message.
    pub(super) fn post<'a>(&'a self, cards: &'a Cards) -> Post<'a> {
        match &self.card {
            Some((group_key, resolved)) => Post::Card(
                cards,
                CardGroup {
                    group_key,
                    resolved: *resolved,
                },
            ),
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
