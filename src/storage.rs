//! The format of the bridge's redb files under `delivery.queue_dir` (`queue.redb`,
//! `state.redb`, `cards.redb`, `escalations.redb`): each records its format version in
//! table `format`, and a release reads every earlier version of its files.
//!
//! Opening a file goes in two steps. [`refuse_newer`] reads the version through redb's
//! read-only open, which writes nothing, so a file a newer release wrote is refused and
//! left exactly as it was. Then the owner opens the file for writing and calls
//! [`settle`] in the write transaction that creates its tables: a new file gets this
//! release's version; an older one is migrated — each step of [`Format::migrations`], then
//! the new version — in that same transaction, so a crash at any point leaves either the
//! old file or the migrated one, and the next start migrates again if need be. A file
//! without table `format` is version 0: every release before issue 25 wrote that, back to
//! commit 313bcee, whose queue `tests/integration/upgrade.rs` still delivers. A newer file
//! that was not closed cleanly cannot be read without redb's repair, which writes; it is
//! repaired, then refused by [`settle`].
//!
//! The three small files (`state.redb`, `cards.redb`, `escalations.redb`) are read whole at
//! start and written one key at a time: [`open`], [`read_all`] and [`write`] are those
//! steps, shared.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

/// The format record: key [`VERSION`] to the file's format version, in decimal (a
/// [`Table`] like the small files' own, so redb's code for it is shared: a table of
/// another type would add tens of KiB to the binary).
const FORMAT: Table = TableDefinition::new("format");
/// The key of the version in [`FORMAT`].
const VERSION: &str = "version";

/// A table of one of the small files: a key to the bytes of its record.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// Brings a file from one version to the next, inside the transaction that records it.
pub type Migration = fn(&WriteTransaction) -> Result<(), redb::Error>;

/// What one kind of file holds in this release.
pub struct Format {
    /// The version this release writes.
    pub version: u64,
    /// `migrations[v]` brings version `v` to `v + 1`; one for each version before
    /// [`Format::version`].
    pub migrations: &'static [Migration],
}

/// Nothing to change but the record: for a file whose tables read the same in both
/// versions.
pub fn record_only(_: &WriteTransaction) -> Result<(), redb::Error> {
    Ok(())
}

/// Why a file cannot be used as this release's.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A newer release wrote it.
    #[error(
        "format version {found} is newer than this release reads (up to {supported}): run the release that wrote it or a later one; the file is left as it is"
    )]
    Newer {
        /// The file's version.
        found: u64,
        /// This release's.
        supported: u64,
    },
    /// redb could not read or write it.
    #[error(transparent)]
    Redb(#[from] redb::Error),
}

/// Refuses `path` when a newer release wrote it, without writing to it. A missing or
/// empty file, one that needs a repair and one redb cannot read at all pass: the open for
/// writing decides about them, and [`settle`] checks the version again.
pub fn refuse_newer(path: &Path, format: &Format) -> Result<(), FormatError> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let read = catch_unwind(AssertUnwindSafe(|| -> Option<u64> {
        let database = Builder::new()
            .set_cache_size(1 << 20)
            .open_read_only(path)
            .ok()?;
        let txn = database.begin_read().ok()?;
        let table = txn.open_table(FORMAT).ok()?;
        parse_version(table.get(VERSION).ok()??.value())
    }));
    match read {
        Ok(Some(found)) if found > format.version => Err(FormatError::Newer {
            found,
            supported: format.version,
        }),
        _ => Ok(()),
    }
}

/// Brings the file open in `txn` to `format`: a new file (no tables yet) gets its version;
/// an older one is migrated, logged; a newer one is refused (the caller then drops `txn`,
/// which writes nothing). Call before creating the file's tables, and commit `txn` after.
pub fn settle(txn: &WriteTransaction, path: &Path, format: &Format) -> Result<(), FormatError> {
    let found = recorded(txn)?;
    if let Some(found) = found.filter(|&found| found > format.version) {
        return Err(FormatError::Newer {
            found,
            supported: format.version,
        });
    }
    if let Some(from) = found.filter(|&found| found < format.version) {
        tracing::info!(
            message = "Migrating the file to this release's format.",
            file = %path.display(),
            from,
            to = format.version,
        );
        for step in &format.migrations[from as usize..] {
            step(txn)?;
        }
    }
    let mut table = txn.open_table(FORMAT).map_err(redb::Error::from)?;
    let version = format.version.to_string();
    table
        .insert(VERSION, version.as_bytes())
        .map_err(redb::Error::from)?;
    Ok(())
}

/// The version the file open in `txn` records: 0 for a file without the record, `None`
/// for a new file (no tables at all).
fn recorded(txn: &WriteTransaction) -> Result<Option<u64>, redb::Error> {
    if txn.list_tables()?.next().is_none() {
        return Ok(None);
    }
    // Created, empty, when missing: version 0.
    let table = txn.open_table(FORMAT)?;
    let Some(recorded) = table.get(VERSION)? else {
        return Ok(Some(0));
    };
    parse_version(recorded.value())
        .map(Some)
        .ok_or_else(|| redb::Error::Corrupted("the format version is not a number".to_owned()))
}

/// A recorded version.
fn parse_version(recorded: &[u8]) -> Option<u64> {
    std::str::from_utf8(recorded).ok()?.parse().ok()
}

/// Opens or creates `path` (and its directory) for writing, settles its format and creates
/// `tables`, in one transaction. Errors name nothing but what went wrong; the caller names
/// the file.
pub fn open(path: &Path, format: &Format, tables: &[Table]) -> Result<Database, FormatError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(redb::Error::Io)?;
    }
    refuse_newer(path, format)?;
    let database = Database::create(path).map_err(redb::Error::from)?;
    let txn = database.begin_write().map_err(redb::Error::from)?;
    settle(&txn, path, format)?;
    for &table in tables {
        txn.open_table(table).map_err(redb::Error::from)?;
    }
    txn.commit().map_err(redb::Error::from)?;
    Ok(database)
}

/// Every entry of `table`, in key order.
pub fn read_all(database: &Database, table: Table) -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
    let txn = database.begin_read()?;
    let table = txn.open_table(table)?;
    let mut all = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        all.push((key.value().to_owned(), value.value().to_owned()));
    }
    Ok(all)
}

/// Puts each value (or, for `None`, the key's removal) in `table`, in one transaction,
/// on tokio's blocking pool.
pub async fn write(
    database: Arc<Database>,
    table: Table,
    changes: Vec<(String, Option<Vec<u8>>)>,
) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
        let txn = database.begin_write()?;
        {
            let mut table = txn.open_table(table)?;
            for (key, value) in &changes {
                match value {
                    Some(value) => table.insert(key.as_str(), value.as_slice())?,
                    None => table.remove(key.as_str())?,
                };
            }
        }
        txn.commit()?;
        Ok(())
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}
