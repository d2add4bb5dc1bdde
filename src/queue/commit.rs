//! Group commit: appends to a durable store go to one thread that writes everything
//! waiting in one transaction, so concurrent webhooks share one fsync, and that makes
//! what the workers left unsynced durable when no webhook comes.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::ledger::Depths;
use super::{Envelope, QueueError, Store};

/// Messages to append, and where to say whether they were.
pub(super) type Commit = (Vec<Envelope>, oneshot::Sender<Result<(), QueueError>>);

/// How often the commit thread makes changes left unsynced durable when no commit does.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Appends `messages` to `store` and counts them in.
pub(super) fn append(
    store: &dyn Store,
    depths: &Depths,
    messages: &[Envelope],
) -> Result<(), QueueError> {
    store.append(messages)?;
    for message in messages {
        depths.add(&message.robot, 1);
    }
    Ok(())
}

/// Writes what is waiting in one transaction: while one commit (and its fsync) runs,
/// the next webhooks' messages gather and share the following one. When no webhook comes
/// for a while, makes what the workers left unsynced durable.
pub(super) fn commit_loop(store: &dyn Store, depths: &Depths, commits: &mpsc::Receiver<Commit>) {
    loop {
        let first = match commits.recv_timeout(SYNC_EVERY) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // A failure is logged by the store, and tried again at the next tick.
                let _ = store.sync();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        batch.extend(commits.try_iter());
        let messages: Vec<Envelope> = batch
            .iter()
            .flat_map(|(messages, _)| messages.iter().cloned())
            .collect();
        let result = append(store, depths, &messages);
        for (_, done) in batch {
            // The webhook may have gone away; its messages are stored all the same.
            let _ = done.send(result.clone());
        }
    }
}
