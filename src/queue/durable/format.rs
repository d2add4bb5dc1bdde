//! The queue file's format versions, and the migration between them (see
//! [`crate::storage`] for how a file is checked and migrated):
//!
//! - 0: tables `pending` and `dead`, no format record; every release from commit 313bcee
//!   up to issue 24. Messages queued before issue 20 have no `summary.group_key`.
//! - 1: the format record, and every value in this release's encoding: a field an older
//!   release did not write (a message's `group_key`) is written out, so every stored value
//!   has every field this release knows.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DEAD, PENDING};
use crate::queue::{DeadLetter, Envelope};
use crate::storage::{Format, Migration};

/// The queue file's format in this release.
pub(super) const FORMAT: Format = Format {
    version: 1,
    migrations: &[to_1 as Migration],
};

/// How many values are read before they are written back: the migration's memory, not its
/// transaction, which is one for the whole file.
const BATCH: usize = 1000;

/// Version 0 to 1: every pending message and dead letter written again in this release's
/// encoding. A value that cannot be read is left as it is (the queue skips it with a
/// warning, as before).
fn to_1(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut pending = txn.open_table(PENDING)?;
    let mut after: Option<(String, u64)> = None;
    loop {
        let start = after.as_ref().map_or(Bound::Unbounded, |(robot, id)| {
            Bound::Excluded((robot.as_str(), *id))
        });
        let mut batch = Vec::with_capacity(BATCH);
        for entry in pending
            .range::<(&str, u64)>((start, Bound::Unbounded))?
            .take(BATCH)
        {
            let (key, value) = entry?;
            let (robot, id) = key.value();
            batch.push(((robot.to_owned(), id), reencode::<Envelope>(value.value())));
        }
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for ((robot, id), json) in &batch {
            if let Some(json) = json {
                pending.insert((robot.as_str(), *id), json.as_slice())?;
            }
        }
    }
    let mut dead = txn.open_table(DEAD)?;
    let mut after = None;
    loop {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut batch = Vec::with_capacity(BATCH);
        for entry in dead.range::<u64>((start, Bound::Unbounded))?.take(BATCH) {
            let (key, value) = entry?;
            batch.push((key.value(), reencode::<DeadLetter>(value.value())));
        }
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        after = Some(last);
        for (id, json) in &batch {
            if let Some(json) = json {
                dead.insert(id, json.as_slice())?;
            }
        }
    }
    Ok(())
}

/// `json` read as a `T` and written again; `None` when it cannot be read.
fn reencode<T: Serialize + DeserializeOwned>(json: &[u8]) -> Option<Vec<u8>> {
    serde_json::to_vec(&serde_json::from_slice::<T>(json).ok()?).ok()
}
