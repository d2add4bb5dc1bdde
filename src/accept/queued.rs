//! Queued mode: the messages of a notification are committed to the queue before the
//! webhook is answered 200, and the robots' workers deliver them from there. A commit to
//! the queue file or one with a cluster claim to confirm, and what follows it, run in a
//! task of their own, so a client that goes away mid-commit leaves neither a stored
//! message without a woken worker nor a duplicate claim for a notification that was not
//! stored. (An append to memory completes in one step: nothing can come between it and
//! the wake.)

use std::sync::Arc;

use jiff::Timestamp;

use super::{AcceptError, messages};
use crate::accept::dedup::{self, Dedup, Taken};
use crate::accept::plan::PlannedMessage;
use crate::cluster::Cluster;
use crate::deliver::Delivery;
use crate::ingest::Notification;
use crate::queue::{Envelope, QueueError};
use crate::render::Handling;
use crate::snapshot::Snapshot;

/// Routes, renders and durably queues `notification` (or, with `direct_robot`, all of it
/// for that robot) under `snapshot`, the messages saying who `acknowledged` the group;
/// returns how many messages were queued, 0 for a duplicate.
pub async fn accept(
    delivery: &Arc<Delivery>,
    dedup: &Arc<Dedup>,
    snapshot: &Snapshot,
    notification: &Notification,
    direct_robot: Option<&str>,
    handling: Handling,
) -> Result<usize, AcceptError> {
    let config = &snapshot.config;
    let identity = dedup::identity(notification, direct_robot);
    if !dedup.claim(&identity, config.dedup_window) {
        return Ok(0);
    }
    let shared = match &snapshot.cluster {
        Some(cluster) => match dedup
            .claim_shared(cluster, &identity, config.dedup_window)
            .await
        {
            Ok(true) => Some(Shared {
                cluster: cluster.clone(),
                window: config.dedup_window,
            }),
            Ok(false) => None,
            Err(Taken::Duplicate) => return Ok(0),
            Err(Taken::Pending) => return Err(AcceptError::QueueingElsewhere),
        },
        None => None,
    };
    let planned = match messages(delivery, snapshot, notification, direct_robot, handling) {
        Ok(planned) => planned,
        Err(error) => {
            forget(dedup, &identity, shared.as_ref()).await;
            return Err(error);
        }
    };
    let count = planned.len();
    let (envelopes, robots) = envelopes(delivery, planned);
    // A commit that writes a file, or tells Redis, must not stop halfway.
    let in_a_task = delivery.queue.commits_on_a_thread() || shared.is_some();
    let committed = commit(
        delivery.clone(),
        Claimed {
            dedup: dedup.clone(),
            identity,
            shared,
        },
        envelopes,
        robots,
        config.max_pending,
    );
    let result = if in_a_task {
        match tokio::spawn(committed).await {
            Ok(result) => result,
            // Only a panic in the task: the messages may or may not be stored.
            Err(error) => Err(QueueError::Store(format!("queueing failed: {error}"))),
        }
    } else {
        committed.await
    };
    result.map(|()| count).map_err(AcceptError::from)
}

/// The claim of a notification: in this replica's memory, and in the cluster's if any.
struct Claimed {
    dedup: Arc<Dedup>,
    identity: String,
    shared: Option<Shared>,
}

/// A pending claim in the cluster, to confirm once queued.
struct Shared {
    cluster: Arc<Cluster>,
    window: std::time::Duration,
}

/// Queues `envelopes` and wakes their robots' workers, then marks the notification queued
/// for the cluster; or forgets the claim: a notification that was not queued is no
/// duplicate when it comes again.
async fn commit(
    delivery: Arc<Delivery>,
    claimed: Claimed,
    envelopes: Vec<Envelope>,
    robots: Vec<String>,
    max_pending: usize,
) -> Result<(), QueueError> {
    let Claimed {
        dedup,
        identity,
        shared,
    } = claimed;
    if let Err(error) = delivery.queue.push(envelopes, max_pending).await {
        forget(&dedup, &identity, shared.as_ref()).await;
        return Err(error);
    }
    for robot in robots {
        delivery.wake(&robot);
    }
    if let Some(shared) = shared {
        let group = dedup::group_of(&identity);
        shared
            .cluster
            .confirm(&identity, group, shared.window)
            .await;
    }
    Ok(())
}

/// Queues `planned` again, with no duplicate claim (a card drawn again), and wakes their
/// robots' workers.
pub(super) async fn requeue(
    delivery: &Arc<Delivery>,
    snapshot: &Snapshot,
    planned: Vec<PlannedMessage>,
) -> Result<(), String> {
    let (envelopes, robots) = envelopes(delivery, planned);
    delivery
        .queue
        .push(envelopes, snapshot.config.max_pending)
        .await
        .map_err(|e| e.to_string())?;
    for robot in robots {
        delivery.wake(&robot);
    }
    Ok(())
}

async fn forget(dedup: &Dedup, identity: &str, shared: Option<&Shared>) {
    dedup.forget(identity);
    if let Some(shared) = shared {
        shared.cluster.release(identity).await;
    }
}

/// `planned` as envelopes accepted now, and the robots they go to.
fn envelopes(delivery: &Delivery, planned: Vec<PlannedMessage>) -> (Vec<Envelope>, Vec<String>) {
    let robots = planned.iter().map(|m| m.robot.clone()).collect();
    let accepted_at = Timestamp::now();
    let envelopes = planned
        .into_iter()
        .map(|m| envelope(delivery, m, accepted_at))
        .collect();
    (envelopes, robots)
}

fn envelope(delivery: &Delivery, message: PlannedMessage, accepted_at: Timestamp) -> Envelope {
    Envelope {
        id: delivery.queue.next_id(),
        robot: message.robot,
        strategy: message.strategy,
        message: message.message,
        summary: message.summary,
        accepted_at,
    }
}
