//! Opening the queue file: creating it, checking and repairing it, and moving a file that
//! cannot be read aside so that the service still starts; and, after an I/O error,
//! closing it and opening it again with a backoff.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use redb::backends::FileBackend;
use redb::{Builder, Database, DatabaseError, StorageError, TableError};

use super::format::FORMAT;
use super::{CACHE_BYTES, DEAD, DurableStore, FILE_NAME, PENDING};
use crate::queue::QueueError;
use crate::storage::{self, FormatError};

/// A queue file that could not be opened and was moved aside.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Where the unreadable file now is.
    pub moved_to: PathBuf,
    /// Why it could not be opened.
    pub error: String,
}

/// Creates the database with the builder's settings on the opened queue file: on the file
/// itself ([`on_file`]), or in tests on a storage that fails the way a full disk does.
pub(super) type Create = dyn Fn(&Builder, File) -> Result<Database, DatabaseError> + Send + Sync;

/// The database on the queue file itself.
pub(super) fn on_file(builder: &Builder, file: File) -> Result<Database, DatabaseError> {
    builder.create_with_backend(FileBackend::new(file)?)
}

/// The first wait before opening the file again after an I/O error; it doubles with each
/// failed attempt up to [`MAX_REOPEN_BACKOFF`].
const FIRST_REOPEN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts to open the file again.
const MAX_REOPEN_BACKOFF: Duration = Duration::from_secs(30);

/// The store's state after an I/O error.
#[derive(Default)]
pub(super) struct Closed {
    /// Attempts to open the file again that failed since it was closed.
    attempts: u32,
    /// When the next attempt may be made.
    retry_at: Option<Instant>,
    /// The error that closed the file, or the last attempt's.
    error: String,
}

impl DurableStore {
    /// Closes the file after `error`, so that a later operation opens it again.
    pub(super) fn close(&self, error: &redb::Error) {
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        if db.take().is_none() {
            return;
        }
        let mut closed = self.closed();
        *closed = Closed {
            attempts: 0,
            retry_at: Some(Instant::now() + FIRST_REOPEN_BACKOFF),
            error: error.to_string(),
        };
        tracing::error!(
            message = "Queue file I/O error; closing it, and opening it again shortly.",
            file = %self.path.display(),
            %error,
        );
    }

    /// The error of an operation while the file is closed.
    pub(super) fn closed_error(&self) -> QueueError {
        let closed = self.closed();
        let wait = closed.retry_at.map_or(0, |at| {
            at.saturating_duration_since(Instant::now()).as_millis()
        });
        self.fail(format!(
            "closed after an I/O error ({}); opening it again in {wait} ms",
            closed.error
        ))
    }

    /// Opens the file again if an I/O error closed it and the backoff has passed, and
    /// writes again the removals that were committed without a sync before the close. The
    /// open runs without a lock held, so operations meanwhile fail fast instead of waiting
    /// for it; only the commit thread calls this.
    pub(super) fn reopen_if_due(&self) -> Result<(), QueueError> {
        if self.db.read().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if self.closed().retry_at.is_some_and(|at| at > now) {
            return Err(self.closed_error());
        }
        let reopened = open(&self.dir, &self.create).and_then(|(database, recovery)| {
            if let Some(recovery) = recovery {
                tracing::error!(
                    message = "The queue file could not be read; it was moved aside and a new one started.",
                    moved_to = %recovery.moved_to.display(),
                    error = %recovery.error,
                );
            }
            self.remove_again(&database)?;
            Ok(database)
        });
        match reopened {
            Ok(database) => {
                *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(database);
                *self.closed() = Closed::default();
                self.generation.fetch_add(1, Ordering::Relaxed);
                tracing::info!(message = "Queue file opened again.", file = %self.path.display());
                Ok(())
            }
            Err(error) => {
                let mut closed = self.closed();
                closed.attempts += 1;
                let backoff = FIRST_REOPEN_BACKOFF
                    .saturating_mul(1 << closed.attempts.min(5))
                    .min(MAX_REOPEN_BACKOFF);
                closed.retry_at = Some(now + backoff);
                closed.error = error.to_string();
                tracing::warn!(
                    message = "The queue file cannot be opened again yet.",
                    file = %self.path.display(),
                    retry_in = ?backoff,
                    %error,
                );
                Err(error)
            }
        }
    }

    /// Writes the removals committed without a sync before the close to `database`, in
    /// one synced transaction.
    fn remove_again(&self, database: &Database) -> Result<(), QueueError> {
        let removals = self.unsynced().clone();
        if removals.is_empty() {
            return Ok(());
        }
        let written = (|| -> Result<(), redb::Error> {
            let txn = database.begin_write()?;
            {
                let mut pending = txn.open_table(PENDING)?;
                for (robot, ids) in &removals {
                    for &id in ids {
                        pending.remove((robot.as_str(), id))?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })();
        written.map_err(|e| self.fail(e))?;
        self.unsynced().clear();
        Ok(())
    }

    fn closed(&self) -> MutexGuard<'_, Closed> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a queue file could not be opened.
enum OpenFailure {
    /// The file is not a readable queue (garbage, truncated, corrupted, not ours): move it aside.
    Unreadable(String),
    /// Anything else (permissions, another process has it open, a full disk, …): give up,
    /// leave the file.
    Fatal(String),
}

/// Opens or creates `dir/queue.redb`, moving an unreadable file aside for a new one.
pub(super) fn open(
    dir: &Path,
    create: &Create,
) -> Result<(Database, Option<Recovery>), QueueError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        QueueError::Store(format!(
            "cannot create queue directory {}: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join(FILE_NAME);
    let error = match open_database(&path, create) {
        Ok(db) => return Ok((db, None)),
        Err(OpenFailure::Fatal(e)) => {
            return Err(QueueError::Store(format!(
                "queue file {}: {e}",
                path.display()
            )));
        }
        Err(OpenFailure::Unreadable(e)) => e,
    };
    let moved_to = aside_path(dir);
    std::fs::rename(&path, &moved_to).map_err(|e| {
        QueueError::Store(format!(
            "queue file {} cannot be read ({error}) nor moved to {}: {e}",
            path.display(),
            moved_to.display()
        ))
    })?;
    let db = open_database(&path, create).map_err(|failure| {
        let (OpenFailure::Unreadable(e) | OpenFailure::Fatal(e)) = failure;
        QueueError::Store(format!("new queue file {}: {e}", path.display()))
    })?;
    Ok((db, Some(Recovery { moved_to, error })))
}

/// Opens or creates the database and its tables, checking the file's integrity.
fn open_database(path: &Path, create: &Create) -> Result<Database, OpenFailure> {
    storage::refuse_newer(path, &FORMAT).map_err(|e| fatal(&e))?;
    let file = open_file(path).map_err(|e| fatal(&e))?;
    let mut builder = Builder::new();
    builder
        .set_cache_size(CACHE_BYTES)
        // Without the check, redb trusts a file marked clean and may panic on a damaged one.
        .set_check_integrity_on_open(true)
        // A repair after an unclean shutdown is routine: let it run to the end.
        .set_repair_callback(|_| {});
    // The check should turn damage into errors; this is for any case it misses.
    let created = catch_unwind(AssertUnwindSafe(|| create(&builder, file)));
    let db = match created {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(classify_database(e)),
        Err(panic) => return Err(OpenFailure::Unreadable(panic_message(&*panic))),
    };
    let tables = catch_unwind(AssertUnwindSafe(|| -> Result<(), OpenFailure> {
        let txn = db.begin_write().map_err(|e| fatal(&e))?;
        storage::settle(&txn, path, &FORMAT).map_err(classify_format)?;
        txn.open_table(PENDING).map_err(classify_table)?;
        txn.open_table(DEAD).map_err(classify_table)?;
        txn.commit().map_err(|e| fatal(&e))
    }));
    match tables {
        Ok(Ok(())) => Ok(db),
        Ok(Err(failure)) => Err(failure),
        Err(panic) => Err(OpenFailure::Unreadable(panic_message(&*panic))),
    }
}

/// The file as `Builder::create` opens it: read and write, created if missing.
fn open_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
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

/// Whether an error settling the file's format means it is not a queue file: a newer
/// release's file is left where it is.
fn classify_format(error: FormatError) -> OpenFailure {
    match error {
        FormatError::Redb(
            redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TableIsNotMultimap(_)
            | redb::Error::Corrupted(_),
        ) => OpenFailure::Unreadable(error.to_string()),
        other => fatal(&other),
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
