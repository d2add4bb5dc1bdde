//! The gate every send to one robot passes: the rolling rate window, the pause after
//! DingTalk's rate-limit answer, the pacing of the window's last slots, the message size
//! DingTalk was last seen to accept, and the robot's last outcome.
//!
//! The state sits behind a plain mutex that is held only for short critical sections and
//! never across I/O, so the queue API and the metrics read it while a send hangs. A check
//! and the record it guards happen in one critical section: [`Gate::reserve`] either
//! records a send starting now or says when one may start. Sends of one robot also go one
//! at a time through the robot's [`Lane`], a separate async lock that only senders take:
//! it keeps the recorded start of a send where the request really leaves, and the
//! connection to DingTalk reused.
//!
//! Time is `tokio::time::Instant`, so tests can pause it. No I/O here.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::RateWindow;
use crate::dingtalk::{MESSAGE_BUDGET, MIN_BUDGET, RateLimit, Robot};

/// Pause after DingTalk says the robot sends too fast; it blocks for 10 minutes at most.
pub const FIRST_PAUSE: Duration = Duration::from_secs(60);
/// Longest pause after repeated rate-limit answers.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// Slots kept back for digests once a storm starts: a quarter of the window, at least one.
/// Once no more than these are left, sends are spaced evenly over the window, so that the
/// rest of a storm gathers into the next digests instead of using up the window at once.
pub fn paced_slots(limit: RateLimit) -> usize {
    (limit.count as usize / 4).max(1)
}

/// A robot's last failure, for the queue API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// What went wrong (no credentials).
    pub error: String,
    /// What to check.
    pub hint: String,
    /// When.
    pub at: Timestamp,
}

/// What the queue API shows of a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateView {
    /// When a rate-limit pause ends, if the robot is paused.
    pub paused_until: Option<Instant>,
    /// Sends in the current window.
    pub in_window: usize,
    /// The last failure since the last success.
    pub last_error: Option<LastError>,
    /// When DingTalk last accepted a message.
    pub last_delivery: Option<Timestamp>,
    /// Bytes of title and text a message may take, lowered when DingTalk refused one as
    /// too long.
    pub size_budget: usize,
}

/// The shared state of one robot's sends. See the module documentation.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    lane: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    window: RateWindow,
    paused_until: Option<Instant>,
    next_pause: Duration,
    last_send: Option<Instant>,
    last_error: Option<LastError>,
    last_delivery: Option<Timestamp>,
    size_budget: usize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: Mutex::new(State {
                window: RateWindow::new(RateLimit::DINGTALK),
                paused_until: None,
                next_pause: FIRST_PAUSE,
                last_send: None,
                last_error: None,
                last_delivery: None,
                size_budget: MESSAGE_BUDGET,
            }),
            lane: tokio::sync::Mutex::new(()),
        }
    }
}

impl State {
    /// When the next send may start under `limit`: the window, a pause, and pacing.
    fn next_slot(&mut self, limit: RateLimit, now: Instant) -> Instant {
        self.window.set_limit(limit);
        let mut ready = self.window.next_slot(now);
        if let Some(paused_until) = self.paused_until {
            ready = ready.max(paused_until);
        }
        if let Some(last) = self.last_send
            && self.window.room(now) <= paced_slots(limit)
        {
            ready = ready.max(last + limit.window / limit.count);
        }
        ready
    }
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a send starting at `now` if `limit`, a pause and pacing allow it;
    /// otherwise says when one may start. The one way a send is recorded.
    pub fn reserve(&self, limit: RateLimit, now: Instant) -> Result<(), Instant> {
        let mut state = self.lock();
        let ready = state.next_slot(limit, now);
        if ready > now {
            return Err(ready);
        }
        state.window.record(now);
        state.last_send = Some(now);
        Ok(())
    }

    /// Records a send starting at `at` that a wider window (the one the replicas of a
    /// cluster share) granted.
    pub fn record(&self, at: Instant) {
        let mut state = self.lock();
        state.window.record(at);
        state.last_send = Some(at);
    }

    /// This gate's sends in the window at `now`, oldest first.
    pub fn sends(&self, now: Instant) -> Vec<Instant> {
        self.lock().window.sends(now)
    }

    /// When the next send may start, without recording anything.
    pub fn next_slot(&self, limit: RateLimit, now: Instant) -> Instant {
        self.lock().next_slot(limit, now)
    }

    /// Sends `limit` still allows in the window at `now`.
    pub fn room(&self, limit: RateLimit, now: Instant) -> usize {
        let mut state = self.lock();
        state.window.set_limit(limit);
        state.window.room(now)
    }

    /// Waits for this robot's lane: held by one sender from before its reservation to
    /// DingTalk's answer (in passthrough, across the shorter sends after a "too long").
    pub async fn lane(&self) -> Lane<'_> {
        Lane {
            gate: self,
            _held: self.lane.lock().await,
        }
    }

    /// Waits for this robot's lane until `deadline`; `None` if it stayed taken. Takes a
    /// free lane without setting up a timer.
    pub async fn lane_until(&self, deadline: Instant) -> Option<Lane<'_>> {
        let held = match self.lane.try_lock() {
            Ok(held) => held,
            Err(_) => tokio::time::timeout_at(deadline, self.lane.lock())
                .await
                .ok()?,
        };
        Some(Lane {
            gate: self,
            _held: held,
        })
    }

    /// Notes DingTalk's acceptance: pauses start again from a minute, the error is cleared.
    pub fn succeeded(&self, at: Timestamp) {
        let mut state = self.lock();
        state.next_pause = FIRST_PAUSE;
        state.paused_until = None;
        state.last_error = None;
        state.last_delivery = Some(at);
    }

    /// Notes a failure.
    pub fn failed(&self, error: LastError) {
        self.lock().last_error = Some(error);
    }

    /// Pauses the robot from `now` after a rate-limit answer; returns the pause, which
    /// doubles with each answer up to [`MAX_PAUSE`].
    pub fn pause(&self, now: Instant) -> Duration {
        let mut state = self.lock();
        let pause = state.next_pause;
        state.paused_until = Some(now + pause);
        state.next_pause = (pause * 2).min(MAX_PAUSE);
        pause
    }

    /// Pauses the robot until `until` unless it is paused for longer already: a pause
    /// another replica of a cluster started. The next pause of this gate's own still
    /// starts from its own count.
    pub fn paused_elsewhere(&self, until: Instant) {
        let mut state = self.lock();
        state.paused_until = Some(state.paused_until.map_or(until, |own| own.max(until)));
    }

    /// Lowers the size budget below `refused` bytes, which DingTalk refused as too long,
    /// but not below [`MIN_BUDGET`]; returns the new budget. Each refusal takes a quarter
    /// off, so a few answers find whatever DingTalk counts.
    pub fn shrink(&self, refused: usize) -> usize {
        let mut state = self.lock();
        state.size_budget = (state.size_budget.min(refused) / 4 * 3).max(MIN_BUDGET);
        state.size_budget
    }

    /// Bytes of title and text a message to `robot` may take: its API's budget, lower
    /// once DingTalk refused a message as too long.
    pub fn size_budget(&self, robot: &Robot) -> usize {
        self.lock().size_budget.min(robot.message_budget())
    }

    /// The state as the queue API shows it at `now`.
    pub fn view(&self, now: Instant) -> GateView {
        let mut state = self.lock();
        GateView {
            paused_until: state.paused_until.filter(|until| *until > now),
            in_window: state.window.in_window(now),
            last_error: state.last_error.clone(),
            last_delivery: state.last_delivery,
            size_budget: state.size_budget,
        }
    }
}

/// One robot's turn to send: while it is held, no other send of the robot starts.
#[derive(Debug)]
pub struct Lane<'a> {
    gate: &'a Gate,
    _held: tokio::sync::MutexGuard<'a, ()>,
}

impl<'g> Lane<'g> {
    /// The robot's gate.
    pub fn gate(&self) -> &Gate {
        self.gate
    }

    /// Records a send starting now, waiting for the slot first if need be; `Err` with the
    /// slot's instant if it is after `deadline`. The [`Reserved`] is what a send takes.
    pub async fn reserve(
        &self,
        limit: RateLimit,
        deadline: Option<Instant>,
    ) -> Result<Reserved<'_, 'g>, Instant> {
        loop {
            match self.try_reserve(limit, Instant::now()) {
                Ok(reserved) => return Ok(reserved),
                Err(slot) if deadline.is_some_and(|deadline| slot > deadline) => {
                    return Err(slot);
                }
                Err(slot) => tokio::time::sleep_until(slot).await,
            }
        }
    }

    /// Records a send starting at `now` if the gate allows it; otherwise says when.
    pub fn try_reserve(&self, limit: RateLimit, now: Instant) -> Result<Reserved<'_, 'g>, Instant> {
        self.gate.reserve(limit, now)?;
        Ok(Reserved { lane: self })
    }

    /// Records a send starting at `at` that the window the replicas of a cluster share
    /// granted (see [`Gate::record`]).
    pub fn granted(&self, at: Instant) -> Reserved<'_, 'g> {
        self.gate.record(at);
        Reserved { lane: self }
    }
}

/// One send recorded in the robot's window, on its lane: `deliver::send` takes it, so no
/// message goes out without a reservation, and one reservation makes one send.
#[derive(Debug)]
pub struct Reserved<'l, 'g> {
    lane: &'l Lane<'g>,
}

impl Reserved<'_, '_> {
    /// The robot's gate.
    pub fn gate(&self) -> &Gate {
        self.lane.gate
    }
}
