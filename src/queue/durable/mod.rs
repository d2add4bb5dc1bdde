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
//!
//! After an I/O error (a full disk, a failing device) redb refuses every later transaction
//! until the database is closed and opened again, so the store does just that: it closes
//! the file at once, and [`Store::maintain`] (the queue's commit thread, every second)
//! opens it again after a backoff (1 s, doubling to 30 s), repairing it as after a crash;
//! meanwhile operations fail fast, and nothing waits for the open. Removals that were
//! committed without a sync before the close are lost with it, so they are written again
//! on the reopened file. Writes thus work again as soon as the disk does, without a
//! restart.
//!
//! It must not lose or reorder what it stored, panic on anything the file contains (an
//! unreadable value is skipped with a warning and left in place), delete a file it could
//! not read, or take over a file another process has open.

mod codec;
mod format;
mod open;

use std::fmt::Display;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use redb::{
    Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use codec::{DeadKey, DeadLetterOf, PendingKey, PendingOf};
pub use open::Recovery;

use super::{DeadLetter, Envelope, Inventory, QueueError, RobotStats, Store};

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
/// too, and so does [`Store::sync`], which the queue's commit thread calls every second
/// and the server at shutdown; so at most about this much delivery is forgotten by a
/// crash, and those messages are sent again, as at-least-once delivery allows. An fsync per
/// delivered message would instead make every send wait for the disk, and hold up the
/// webhooks' commits meanwhile.
const REMOVAL_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Pending messages and dead letters in a redb file under `delivery.queue_dir`.
pub struct DurableStore {
    dir: PathBuf,
    path: PathBuf,
    create: Box<open::Create>,
    /// `None` while closed after an I/O error.
    db: RwLock<Option<Database>>,
    /// When the file was closed, why, and when to try opening it again.
    closed: Mutex<open::Closed>,
    /// When a commit last synced to disk.
    last_sync: Mutex<Instant>,
    /// The removals committed without a sync since then, per robot.
    unsynced: Mutex<Vec<(String, Vec<u64>)>>,
    /// How many times the file was opened again after an I/O error.
    generation: AtomicU64,
}

impl DurableStore {
    /// Opens or creates `dir/queue.redb`, moving an unreadable file aside for a new one.
    pub fn open(dir: &Path) -> Result<(DurableStore, Option<Recovery>), QueueError> {
        DurableStore::open_with(dir, open::on_file)
    }

    /// Like [`open`](Self::open), with `create` making the database on the opened file:
    /// tests give it a storage that fails as a full disk does.
    pub fn open_with(
        dir: &Path,
        create: impl Fn(&Builder, File) -> Result<Database, DatabaseError> + Send + Sync + 'static,
    ) -> Result<(DurableStore, Option<Recovery>), QueueError> {
        let create: Box<open::Create> = Box::new(create);
        let (db, recovery) = open::open(dir, &create)?;
        let store = DurableStore {
            dir: dir.to_owned(),
            path: dir.join(FILE_NAME),
            create,
            db: RwLock::new(Some(db)),
            closed: Mutex::default(),
            last_sync: Mutex::new(Instant::now()),
            unsynced: Mutex::default(),
            generation: AtomicU64::new(0),
        };
        Ok((store, recovery))
    }

    /// Runs `op` on the open database; fails at once while the file is closed. An I/O
    /// error in `op` closes the file.
    fn with<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, QueueError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(database) = db.as_ref() else {
            drop(db);
            return Err(self.closed_error());
        };
        let result = op(database);
        drop(db);
        result.map_err(|error| {
            if matches!(error, redb::Error::Io(_) | redb::Error::PreviousIo) {
                self.close(&error);
            }
            self.fail(error)
        })
    }

    /// Commits `txn` and syncs it (and every unsynced commit before it) to disk.
    fn commit(&self, txn: WriteTransaction) -> Result<(), redb::Error> {
        txn.commit()?;
        *self.last_sync.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.unsynced().clear();
        Ok(())
    }

    fn unsynced(&self) -> MutexGuard<'_, Vec<(String, Vec<u64>)>> {
        self.unsynced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error of a failed operation, naming the file.
    fn fail(&self, error: impl Display) -> QueueError {
        QueueError::Store(format!("queue file {}: {error}", self.path.display()))
    }
}

impl Store for DurableStore {
    fn append(&self, messages: &[Envelope]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let encoded = messages
            .iter()
            .map(|m| Ok((m, self.encode(&PendingKey(&m.robot, m.id), m)?)))
            .collect::<Result<Vec<_>, QueueError>>()?;
        self.with(|db| {
            let txn = db.begin_write()?;
            {
                let mut pending = txn.open_table(PENDING)?;
                for (message, bytes) in &encoded {
                    pending.insert((message.robot.as_str(), message.id), bytes.as_slice())?;
                }
            }
            // Dropping an uncommitted transaction aborts it: all or none.
            self.commit(txn)
        })
    }

    fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.with(|db| {
            let mut found = Vec::new();
            let txn = db.begin_read()?;
            let pending = txn.open_table(PENDING)?;
            for entry in pending.range((robot, 0)..=(robot, u64::MAX))? {
                let (key, value) = entry?;
                let (robot, id) = key.value();
                if let Some(envelope) = self.decode(&PendingKey(robot, id), value.value()) {
                    found.push(envelope);
                    if found.len() >= limit {
                        break;
                    }
                }
            }
            Ok(found)
        })
    }

    fn remove(&self, robot: &str, ids: &[u64]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.with(|db| {
            let mut txn = db.begin_write()?;
            let mut removed = 0;
            let emptied;
            {
                let mut pending = txn.open_table(PENDING)?;
                for &id in ids {
                    if pending.remove((robot, id))?.is_some() {
                        removed += 1;
                    }
                }
                emptied = pending
                    .range((robot, 0)..=(robot, u64::MAX))?
                    .next()
                    .is_none();
            }
            let last_sync = *self.last_sync.lock().unwrap_or_else(|p| p.into_inner());
            if emptied || last_sync.elapsed() >= REMOVAL_SYNC_INTERVAL {
                self.commit(txn)?;
            } else {
                txn.set_durability(Durability::None)?;
                txn.commit()?;
                self.unsynced().push((robot.to_owned(), ids.to_vec()));
            }
            Ok(removed)
        })
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
        let letters = messages
            .iter()
            .map(|message| {
                let letter = DeadLetter {
                    envelope: message.clone(),
                    reason: reason.to_owned(),
                    at,
                };
                Ok((message, self.encode(&DeadKey(message.id), &letter)?))
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        self.with(|db| {
            let txn = db.begin_write()?;
            let mut removed = 0;
            {
                let mut pending = txn.open_table(PENDING)?;
                let mut dead = txn.open_table(DEAD)?;
                for (message, bytes) in &letters {
                    if pending
                        .remove((message.robot.as_str(), message.id))?
                        .is_some()
                    {
                        removed += 1;
                    }
                    dead.insert(message.id, bytes.as_slice())?;
                }
            }
            self.commit(txn)?;
            Ok(removed)
        })
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.with(|db| {
            let txn = db.begin_read()?;
            let dead = txn.open_table(DEAD)?;
            let mut found = Vec::new();
            for entry in dead.iter()? {
                let (key, value) = entry?;
                if let Some(letter) = self.decode(&DeadKey(key.value()), value.value()) {
                    found.push(letter);
                }
            }
            Ok(found)
        })
    }

    fn revive_all(&self) -> Result<Vec<Envelope>, QueueError> {
        self.with(|db| {
            let txn = db.begin_write()?;
            let mut revived: Vec<Envelope> = Vec::new();
            {
                let mut dead = txn.open_table(DEAD)?;
                let mut moves = Vec::new();
                for entry in dead.iter()? {
                    let (key, value) = entry?;
                    let id = key.value();
                    // An unreadable dead letter stays where it is.
                    let Some(letter) = self.decode::<DeadLetter>(&DeadKey(id), value.value())
                    else {
                        continue;
                    };
                    let Ok(bytes) = self.encode(&DeadKey(id), &letter.envelope) else {
                        continue;
                    };
                    moves.push((id, bytes));
                    revived.push(letter.envelope);
                }
                let mut pending = txn.open_table(PENDING)?;
                for ((id, bytes), message) in moves.iter().zip(&revived) {
                    pending.insert((message.robot.as_str(), message.id), bytes.as_slice())?;
                    dead.remove(*id)?;
                }
            }
            self.commit(txn)?;
            // Dead letters are keyed by their message's id, so this is id order already.
            Ok(revived)
        })
    }

    fn scan(&self) -> Result<Inventory, QueueError> {
        self.with(|db| {
            let txn = db.begin_read()?;
            let pending = txn.open_table(PENDING)?;
            let dead = txn.open_table(DEAD)?;
            let mut inventory = Inventory::default();
            if let Some((key, _)) = dead.last()? {
                inventory.last_id = key.value();
            }
            for entry in dead.iter()? {
                let (key, value) = entry?;
                if let Some(letter) =
                    self.decode::<DeadLetterOf>(&DeadKey(key.value()), value.value())
                {
                    *inventory.dead.entry(letter.robot()).or_default() += 1;
                }
            }
            // Keys are in (robot, id) order: one robot's entries come together, its oldest
            // first. An unreadable entry still counts in the depth: it is in the file.
            for entry in pending.iter()? {
                let (key, value) = entry?;
                let (robot, id) = key.value();
                inventory.last_id = inventory.last_id.max(id);
                let stats = match inventory.robots.last_entry() {
                    Some(last) if last.key() == robot => last.into_mut(),
                    _ => inventory
                        .robots
                        .entry(robot.to_owned())
                        .or_insert_with(RobotStats::default),
                };
                stats.depth += 1;
                let Some(pending) = self.decode::<PendingOf>(&PendingKey(robot, id), value.value())
                else {
                    continue;
                };
                stats.oldest.get_or_insert(pending.accepted_at);
                if let Some(group) = pending.group() {
                    inventory.grouped.push((robot.to_owned(), id, group));
                }
            }
            Ok(inventory)
        })
    }

    fn sync(&self) -> Result<(), QueueError> {
        if self.unsynced().is_empty() {
            return Ok(());
        }
        // An empty durable commit makes the unsynced ones before it durable.
        self.with(|db| self.commit(db.begin_write()?))
    }

    fn maintain(&self) -> Result<(), QueueError> {
        self.reopen_if_due()?;
        self.sync()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn syncs_to_disk(&self) -> bool {
        true
    }
}
