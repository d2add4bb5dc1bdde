//! The durable store: pending messages and dead letters in one redb file,
//! `queue.redb` under `delivery.queue_dir`, so accepted messages survive a restart or a
//! crash.
//!
//! This module owns that file and nothing else. Table `pending` maps `(robot, id)` to the
//! JSON of an [`Envelope`], so one robot's messages are a contiguous range in id order;
//! table `dead` maps `id` to the JSON of a [`DeadLetter`]. Every [`Store`] method is one
//! redb transaction, and every write transaction commits with redb's default durability
//! (fsync before the commit returns), so a method that returned `Ok` is on disk; the one
//! exception is [`Store::remove`] of delivered messages, synced at most once per
//! [`REMOVAL_SYNC_INTERVAL`] (see there). A file
//! that needs a repair after an unclean shutdown is repaired on open; a file that cannot be
//! opened at all is renamed aside (see [`Recovery`]) so that the service still starts.
//! It must not lose or reorder what it stored, panic on anything the file contains (an
//! unreadable value is skipped with a warning and left in place), delete a file it could
//! not read, or take over a file another process has open.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use redb::{
    Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableError, WriteTransaction,
};

use super::{DeadLetter, Envelope, QueueError, RobotStats, Store};

/// Pending messages: `(robot, id)` to the JSON of the [`Envelope`].
const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pending");
/// Dead letters: `id` to the JSON of the [`DeadLetter`].
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
/// The file's name in the queue directory.
const FILE_NAME: &str = "queue.redb";
/// redb's page cache. The worker reads the oldest entries of a robot and appends go at
/// the end, so a few MiB hold the pages in use; a larger cache (redb's default is 1 GiB)
/// would only let memory grow with the file during a long DingTalk outage.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// How long a removal of delivered messages may stay unsynced. Any later commit syncs it
/// too, so at most this much delivery is forgotten by a crash, and those messages are
/// sent again (with the same `msgUuid`), as at-least-once delivery allows. An fsync per
/// delivered message would instead make every send wait for the disk, and hold up the
/// webhooks' commits meanwhile.
const REMOVAL_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Pending messages and dead letters in a redb file under `delivery.queue_dir`.
pub struct DurableStore {
    db: Database,
    path: PathBuf,
    /// When a commit last synced to disk.
    last_sync: Mutex<Instant>,
}

/// A queue file that could not be opened and was moved aside.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Where the unreadable file now is.
    pub moved_to: PathBuf,
    /// Why it could not be opened.
    pub error: String,
}

/// Why a queue file could not be opened.
enum OpenFailure {
    /// The file is not a readable queue (garbage, truncated, corrupted, not ours): move it aside.
    Unreadable(String),
    /// Anything else (permissions, another process has it open, …): give up, leave the file.
    Fatal(String),
}

impl DurableStore {
    /// Opens or creates `dir/queue.redb`, moving an unreadable file aside for a new one.
    pub fn open(dir: &Path) -> Result<(DurableStore, Option<Recovery>), QueueError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            QueueError(format!(
                "cannot create queue directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE_NAME);
        let error = match open_database(&path) {
            Ok(db) => return Ok((DurableStore::new(db, path), None)),
            Err(OpenFailure::Fatal(e)) => {
                return Err(QueueError(format!("queue file {}: {e}", path.display())));
            }
            Err(OpenFailure::Unreadable(e)) => e,
        };
        let moved_to = aside_path(dir);
        std::fs::rename(&path, &moved_to).map_err(|e| {
            QueueError(format!(
                "queue file {} cannot be read ({error}) nor moved to {}: {e}",
                path.display(),
                moved_to.display()
            ))
        })?;
        let db = open_database(&path).map_err(|failure| {
            let (OpenFailure::Unreadable(e) | OpenFailure::Fatal(e)) = failure;
            QueueError(format!("new queue file {}: {e}", path.display()))
        })?;
        Ok((
            DurableStore::new(db, path),
            Some(Recovery { moved_to, error }),
        ))
    }

    fn new(db: Database, path: PathBuf) -> Self {
        DurableStore {
            db,
            path,
            last_sync: Mutex::new(Instant::now()),
        }
    }

    /// Commits `txn` and syncs it (and every unsynced commit before it) to disk.
    fn commit(&self, txn: WriteTransaction) -> Result<(), QueueError> {
        txn.commit().map_err(|e| self.fail(e))?;
        *self.last_sync.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(())
    }

    /// The error of a failed redb operation, naming the file.
    fn fail(&self, error: impl Display) -> QueueError {
        QueueError(format!("queue file {}: {error}", self.path.display()))
    }

    /// Decodes a stored value, or warns (naming its key) and returns `None`.
    fn decode<T: serde::de::DeserializeOwned>(&self, key: &dyn Display, bytes: &[u8]) -> Option<T> {
        match serde_json::from_slice(bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(
                    message = "Skipping a queue entry that cannot be read.",
                    file = %self.path.display(),
                    key = %key,
                    %error,
                );
                None
            }
        }
    }
}

/// Opens or creates the database and its tables, checking the file's integrity.
fn open_database(path: &Path) -> Result<Database, OpenFailure> {
    let mut builder = Builder::new();
    builder
        .set_cache_size(CACHE_BYTES)
        // Without the check, redb trusts a file marked clean and may panic on a damaged one.
        .set_check_integrity_on_open(true)
        // A repair after an unclean shutdown is routine: let it run to the end.
        .set_repair_callback(|_| {});
    // The check should turn damage into errors; this is for any case it misses.
    let db = match catch_unwind(AssertUnwindSafe(|| builder.create(path))) {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(classify_database(e)),
        Err(panic) => return Err(OpenFailure::Unreadable(panic_message(&*panic))),
    };
    let created = catch_unwind(AssertUnwindSafe(|| -> Result<(), OpenFailure> {
        let txn = db.begin_write().map_err(|e| fatal(&e))?;
        txn.open_table(PENDING).map_err(classify_table)?;
        txn.open_table(DEAD).map_err(classify_table)?;
        txn.commit().map_err(|e| fatal(&e))
    }));
    match created {
        Ok(Ok(())) => Ok(db),
        Ok(Err(failure)) => Err(failure),
        Err(panic) => Err(OpenFailure::Unreadable(panic_message(&*panic))),
    }
}

/// Whether an open error means the file itself is unreadable.
fn classify_database(error: DatabaseError) -> OpenFailure {
    match error {
        DatabaseError::Storage(storage) => classify_storage(&storage),
        DatabaseError::UpgradeRequired(_) | DatabaseError::RepairAborted => {
            OpenFailure::Unreadable(error.to_string())
        }
        // Another process has the file open, or anything new: not the file's fault.
        other => fatal(&other),
    }
}

/// Whether an error creating the tables means the file is not a queue file.
fn classify_table(error: TableError) -> OpenFailure {
    match error {
        TableError::Storage(storage) => classify_storage(&storage),
        // A table of the same name with other types, or a multimap: someone else's database.
        other => OpenFailure::Unreadable(other.to_string()),
    }
}

/// Corruption, and reads past the end of a truncated file, are the file's fault; other
/// I/O errors (permissions, a full disk) are not, and moving the file would not help.
fn classify_storage(error: &StorageError) -> OpenFailure {
    match error {
        StorageError::Corrupted(_) | StorageError::ValueTooLarge(_) => {
            OpenFailure::Unreadable(error.to_string())
        }
        StorageError::Io(io)
            if matches!(io.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData) =>
        {
            OpenFailure::Unreadable(error.to_string())
        }
        _ => fatal(error),
    }
}

/// A failure that moving the file aside would not cure.
fn fatal(error: &dyn Display) -> OpenFailure {
    OpenFailure::Fatal(error.to_string())
}

/// What a caught panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let said = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("redb panicked while opening the file: {said}")
}

/// `dir/queue.redb.corrupt-<unix millis>`, not already taken.
fn aside_path(dir: &Path) -> PathBuf {
    let millis = Timestamp::now().as_millisecond();
    let mut candidate = dir.join(format!("{FILE_NAME}.corrupt-{millis}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = dir.join(format!("{FILE_NAME}.corrupt-{millis}-{n}"));
        n += 1;
    }
    candidate
}

/// The key of a pending message, for log messages.
struct PendingKey<'a>(&'a str, u64);

impl Display for PendingKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pending ({}, {})", self.0, self.1)
    }
}

/// The key of a dead letter, for log messages.
struct DeadKey(u64);

impl Display for DeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dead {}", self.0)
    }
}

impl Store for DurableStore {
    fn append(&self, messages: &[Envelope]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
            for message in messages {
                let bytes = serde_json::to_vec(message)
                    .map_err(|e| self.fail(format!("cannot encode message {}: {e}", message.id)))?;
                pending
                    .insert((message.robot.as_str(), message.id), bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        // Dropping an uncommitted transaction aborts it: all or none.
        self.commit(txn)
    }

    fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
        let range = pending
            .range((robot, 0)..=(robot, u64::MAX))
            .map_err(|e| self.fail(e))?;
        for entry in range {
            let (key, value) = entry.map_err(|e| self.fail(e))?;
            let (robot, id) = key.value();
            if let Some(envelope) = self.decode(&PendingKey(robot, id), value.value()) {
                found.push(envelope);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    fn remove(&self, robot: &str, ids: &[u64]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        let mut removed = 0;
        let emptied;
        {
            let mut pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
            for &id in ids {
                if pending
                    .remove((robot, id))
                    .map_err(|e| self.fail(e))?
                    .is_some()
                {
                    removed += 1;
                }
            }
            let mut left = pending
                .range((robot, 0)..=(robot, u64::MAX))
                .map_err(|e| self.fail(e))?;
            emptied = left.next().is_none();
        }
        let last_sync = *self.last_sync.lock().unwrap_or_else(|p| p.into_inner());
        if emptied || last_sync.elapsed() >= REMOVAL_SYNC_INTERVAL {
            self.commit(txn)?;
        } else {
            txn.set_durability(Durability::None)
                .map_err(|e| self.fail(e))?;
            txn.commit().map_err(|e| self.fail(e))?;
        }
        Ok(removed)
    }

    fn bury(
        &self,
        messages: &[Envelope],
        reason: &str,
        at: Timestamp,
    ) -> Result<usize, QueueError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        let mut removed = 0;
        {
            let mut pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
            let mut dead = txn.open_table(DEAD).map_err(|e| self.fail(e))?;
            for message in messages {
                let letter = DeadLetter {
                    envelope: message.clone(),
                    reason: reason.to_owned(),
                    at,
                };
                let bytes = serde_json::to_vec(&letter).map_err(|e| {
                    self.fail(format!("cannot encode dead letter {}: {e}", message.id))
                })?;
                let was_pending = pending
                    .remove((message.robot.as_str(), message.id))
                    .map_err(|e| self.fail(e))?
                    .is_some();
                if was_pending {
                    removed += 1;
                }
                dead.insert(message.id, bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        self.commit(txn)?;
        Ok(removed)
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let dead = txn.open_table(DEAD).map_err(|e| self.fail(e))?;
        let mut found = Vec::new();
        for entry in dead.iter().map_err(|e| self.fail(e))? {
            let (key, value) = entry.map_err(|e| self.fail(e))?;
            if let Some(letter) = self.decode(&DeadKey(key.value()), value.value()) {
                found.push(letter);
            }
        }
        Ok(found)
    }

    fn revive_all(&self) -> Result<Vec<Envelope>, QueueError> {
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        let mut revived: Vec<Envelope> = Vec::new();
        {
            let mut dead = txn.open_table(DEAD).map_err(|e| self.fail(e))?;
            let mut ids = Vec::new();
            for entry in dead.iter().map_err(|e| self.fail(e))? {
                let (key, value) = entry.map_err(|e| self.fail(e))?;
                let id = key.value();
                // An unreadable dead letter stays where it is.
                if let Some(letter) = self.decode::<DeadLetter>(&DeadKey(id), value.value()) {
                    ids.push(id);
                    revived.push(letter.envelope);
                }
            }
            let mut pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
            for (id, message) in ids.into_iter().zip(&revived) {
                let bytes = serde_json::to_vec(message)
                    .map_err(|e| self.fail(format!("cannot encode message {}: {e}", message.id)))?;
                pending
                    .insert((message.robot.as_str(), message.id), bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
                dead.remove(id).map_err(|e| self.fail(e))?;
            }
        }
        self.commit(txn)?;
        // Dead letters are keyed by their message's id, so this is id order already.
        Ok(revived)
    }

    fn stats(&self) -> Result<BTreeMap<String, RobotStats>, QueueError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
        let mut stats: BTreeMap<String, RobotStats> = BTreeMap::new();
        // Keys are in (robot, id) order: one robot's entries come together, its oldest
        // first. An unreadable entry still counts in the depth: it is in the file.
        let mut current: Option<(String, RobotStats)> = None;
        for entry in pending.iter().map_err(|e| self.fail(e))? {
            let (key, value) = entry.map_err(|e| self.fail(e))?;
            let (robot, id) = key.value();
            if current.as_ref().is_none_or(|(name, _)| name != robot) {
                if let Some((name, done)) = current.take() {
                    stats.insert(name, done);
                }
                current = Some((robot.to_owned(), RobotStats::default()));
            }
            if let Some((_, robot_stats)) = current.as_mut() {
                robot_stats.depth += 1;
                if robot_stats.oldest.is_none() {
                    robot_stats.oldest = self
                        .decode::<Envelope>(&PendingKey(robot, id), value.value())
                        .map(|m| m.accepted_at);
                }
            }
        }
        if let Some((name, done)) = current {
            stats.insert(name, done);
        }
        Ok(stats)
    }

    fn syncs_to_disk(&self) -> bool {
        true
    }

    fn last_id(&self) -> Result<u64, QueueError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let pending = txn.open_table(PENDING).map_err(|e| self.fail(e))?;
        let dead = txn.open_table(DEAD).map_err(|e| self.fail(e))?;
        let mut last = match dead.last().map_err(|e| self.fail(e))? {
            Some((key, _)) => key.value(),
            None => 0,
        };
        // Pending is ordered by robot first: every robot's last id has to be looked at.
        for entry in pending.iter().map_err(|e| self.fail(e))? {
            let (key, _) = entry.map_err(|e| self.fail(e))?;
            last = last.max(key.value().1);
        }
        Ok(last)
    }
}
