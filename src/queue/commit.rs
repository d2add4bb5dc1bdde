//! Group commit: appends to a durable store go to one thread that writes everything
//! waiting in one transaction, so concurrent webhooks share one fsync. Every second it
//! also maintains the store ([`Store::maintain`]): makes what the workers left unsynced
//! durable, and opens the file again after an I/O error.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ledger::Ledger;
use super::{Envelope, QueueError, Store};

/// Messages to append, and where to say whether they were.
pub(super) type Commit = (Vec<Envelope>, oneshot::Sender<Result<(), QueueError>>);

/// How often the commit thread maintains the store.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);

/// Appends `messages` to `store` and counts them in.
pub(super) fn append(
    store: &dyn Store,
    ledger: &Ledger,
    messages: &[Envelope],
) -> Result<(), QueueError> {
    store.append(messages)?;
    ledger.appended(messages);
    Ok(())
}

/// Writes what is waiting in one transaction: while one commit (and its fsync) runs,
/// the next webhooks' messages gather and share the following one. Maintains the store
/// every second, busy or not.
pub(super) fn commit_loop(store: &dyn Store, ledger: &Ledger, commits: &mpsc::Receiver<Commit>) {
    let mut maintained = Instant::now();
    loop {
        if maintained.elapsed() >= MAINTAIN_EVERY {
            // A failure is logged by the store, and tried again at the next tick.
            let _ = store.maintain();
            maintained = Instant::now();
        }
        let first = match commits.recv_timeout(MAINTAIN_EVERY) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        batch.extend(commits.try_iter());
        let messages: Vec<Envelope> = batch
            .iter()
            .flat_map(|(messages, _)| messages.iter().cloned())
            .collect();
        let result = append(store, ledger, &messages);
        for (_, done) in batch {
            // The webhook may have gone away; its messages are stored all the same.
            let _ = done.send(result.clone());
        }
    }
}
