//! How messages leave the queue: acknowledged once DingTalk accepted them, or buried as
//! dead letters; and what the store could not be told yet (a full disk), kept here and
//! written by [`Queue::settle`]. Meanwhile those messages are neither counted nor handed
//! out again.

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

use jiff::Timestamp;

use super::ledger::{Burial, Unsettled};
use super::{Envelope, Queue, QueueError};

impl Queue {
    /// Removes messages of `robot` that DingTalk accepted. If the store fails, they are
    /// removed from the count and kept from being handed out again, and [`settle`]
    /// (Self::settle) writes the removal later.
    pub async fn ack(self: &Arc<Self>, robot: &str, ids: Vec<u64>) -> Result<(), QueueError> {
        let robot = robot.to_owned();
        let result = self
            .off_the_runtime(move |queue| queue.ack_blocking(&robot, &ids))
            .await;
        self.changes.notify_waiters();
        result
    }

    fn ack_blocking(&self, robot: &str, ids: &[u64]) -> Result<(), QueueError> {
        let result = self.store.remove(robot, ids);
        self.ledger.ungrouped(robot, ids.iter().copied());
        match &result {
            Ok(removed) => self.ledger.take(robot, *removed),
            Err(_) => {
                let mut unsettled = self.unsettled_map();
                let robot_unsettled = unsettled.entry(robot.to_owned()).or_default();
                robot_unsettled.removals.extend(ids);
                self.ledger.take(robot, ids.len());
            }
        }
        self.reread_oldest(robot);
        result.map(|_| ())
    }

    /// Moves messages of `robot` that cannot be delivered to the dead letters. If the
    /// store fails, they are kept as [`ack`](Self::ack) keeps removals.
    pub async fn bury(
        self: &Arc<Self>,
        robot: &str,
        messages: Vec<Envelope>,
        reason: String,
    ) -> Result<(), QueueError> {
        let robot = robot.to_owned();
        let result = self
            .off_the_runtime(move |queue| queue.bury_blocking(&robot, messages, reason))
            .await;
        self.changes.notify_waiters();
        result
    }

    fn bury_blocking(
        &self,
        robot: &str,
        messages: Vec<Envelope>,
        reason: String,
    ) -> Result<(), QueueError> {
        let at = Timestamp::now();
        let result = self.store.bury(&messages, &reason, at);
        self.ledger.ungrouped(robot, messages.iter().map(|m| m.id));
        match &result {
            Ok(removed) => self.ledger.take(robot, *removed),
            Err(_) => self.ledger.take(robot, messages.len()),
        }
        self.ledger.buried(robot, messages.len());
        if result.is_err() {
            let mut unsettled = self.unsettled_map();
            let robot_unsettled = unsettled.entry(robot.to_owned()).or_default();
            robot_unsettled.burials.push(Burial {
                messages,
                reason,
                at,
            });
        }
        self.reread_oldest(robot);
        result.map(|_| ())
    }

    /// How many acknowledgements and burials of `robot` the store has yet to write.
    pub fn unsettled(&self, robot: &str) -> usize {
        self.unsettled_map().get(robot).map_or(0, Unsettled::len)
    }

    /// Acknowledgements and burials of every robot the store has yet to write.
    pub fn total_unsettled(&self) -> usize {
        self.unsettled_map().values().map(Unsettled::len).sum()
    }

    /// Writes what [`ack`](Self::ack) and [`bury`](Self::bury) could not, stopping at the
    /// first failure; what is not written stays for the next call.
    pub async fn settle(self: &Arc<Self>, robot: &str) -> Result<(), QueueError> {
        let robot = robot.to_owned();
        self.off_the_runtime(move |queue| queue.settle_blocking(&robot))
            .await
    }

    fn settle_blocking(&self, robot: &str) -> Result<(), QueueError> {
        let (removals, burials) = match self.unsettled_map().get(robot) {
            Some(u) => (
                u.removals.iter().copied().collect::<Vec<_>>(),
                u.burials.clone(),
            ),
            None => return Ok(()),
        };
        if !removals.is_empty() {
            self.store.remove(robot, &removals)?;
            self.settled(robot, |u| u.removals.retain(|id| !removals.contains(id)));
        }
        // Only this robot's worker buries and settles, so the first burial stays the
        // first until it is written.
        for burial in burials {
            self.store
                .bury(&burial.messages, &burial.reason, burial.at)?;
            self.settled(robot, |u| {
                u.burials.remove(0);
            });
        }
        Ok(())
    }

    /// Applies `written` to what `robot` has unsettled, and forgets the robot's entry once
    /// it is empty.
    fn settled(&self, robot: &str, written: impl FnOnce(&mut Unsettled)) {
        let mut unsettled = self.unsettled_map();
        if let Some(robot_unsettled) = unsettled.get_mut(robot) {
            written(robot_unsettled);
            if robot_unsettled.is_empty() {
                unsettled.remove(robot);
            }
        }
    }

    pub(super) fn unsettled_map(&self) -> MutexGuard<'_, BTreeMap<String, Unsettled>> {
        self.unsettled.lock().unwrap_or_else(|p| p.into_inner())
    }
}
