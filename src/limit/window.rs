//! The per-robot sliding window that keeps sends under DingTalk's limit.
//!
//! DingTalk counts a robot's messages per rolling minute and blocks the robot for ten
//! minutes once it sends more than 20. A token bucket would allow a burst followed by
//! refills that still exceed 20 in some 60 s span, so the window remembers when each of the
//! last `limit` sends happened and lets the next one go only when the oldest of them has
//! left the window. Time is `tokio::time::Instant`, so tests can pause it.
//!
//! The window is measured here, when requests leave; DingTalk measures it when they
//! arrive. If the oldest request of a window took longer to arrive than the newest, the two
//! could land less than a window apart, so sends wait a small margin past the window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::dingtalk::RateLimit;

/// The send times inside the current window for one robot.
#[derive(Debug)]
pub struct RateWindow {
    limit: RateLimit,
    sent: VecDeque<Instant>,
}

impl RateWindow {
    /// An empty window for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        RateWindow {
            limit,
            sent: VecDeque::with_capacity(limit.count as usize),
        }
    }

    /// Changes the limit, keeping the history (after a config reload).
    pub fn set_limit(&mut self, limit: RateLimit) {
        self.limit = limit;
    }

    /// When the next send may happen: `now` if the window has room.
    pub fn next_slot(&mut self, now: Instant) -> Instant {
        self.forget_before(now);
        if self.sent.len() < self.limit.count as usize {
            return now;
        }
        // The send that must leave the window first is the one `limit` sends back.
        let blocking = self.sent[self.sent.len() - self.limit.count as usize];
        blocking + self.span()
    }

    fn span(&self) -> Duration {
        self.limit.span()
    }

    /// Records a send at `now`; call only when `next_slot(now) <= now`.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// How many more sends the window takes at `now`.
    pub fn room(&mut self, now: Instant) -> usize {
        (self.limit.count as usize).saturating_sub(self.in_window(now))
    }

    /// The sends the window holds at `now`, oldest first.
    pub fn sends(&mut self, now: Instant) -> Vec<Instant> {
        self.forget_before(now);
        self.sent.iter().copied().collect()
    }

    /// How many sends the window holds at `now`.
    pub fn in_window(&mut self, now: Instant) -> usize {
        self.forget_before(now);
        self.sent.len()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.sent.front() {
            if now.duration_since(oldest) >= self.span() {
                self.sent.pop_front();
            } else {
                break;
            }
        }
    }
}
