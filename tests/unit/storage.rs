//! The redb files' format versions (`storage`): an older file is migrated in one
//! transaction and read, a newer one is refused with both versions named and left exactly
//! as it was, by every file the bridge keeps.

use std::path::Path;

use alertmanager_dingtalk::act::Acks;
use alertmanager_dingtalk::deliver::cards::Cards;
use alertmanager_dingtalk::escalate;
use alertmanager_dingtalk::queue::{DurableStore, Store};
use alertmanager_dingtalk::storage::{self, Format, FormatError};
use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};

use crate::config::TempDir;

/// The format record, as the files hold it.
const FORMAT: TableDefinition<&str, &[u8]> = TableDefinition::new("format");
const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pending");

/// The queue file release 313bcee left: three messages pending for `ops`, one dead letter.
const OLD_QUEUE: &[u8] = include_bytes!("../data/queue-313bcee/queue.redb");

/// The version `path` records; `None` without the record.
fn version(path: &Path) -> Option<u64> {
    let database = Database::create(path).unwrap();
    let txn = database.begin_read().unwrap();
    let table = txn.open_table(FORMAT).ok()?;
    let version = table.get("version").unwrap()?;
    Some(
        std::str::from_utf8(version.value())
            .unwrap()
            .parse()
            .unwrap(),
    )
}

fn set_version(path: &Path, version: u64) {
    let database = Database::create(path).unwrap();
    let txn = database.begin_write().unwrap();
    txn.open_table(FORMAT)
        .unwrap()
        .insert("version", version.to_string().as_bytes())
        .unwrap();
    txn.commit().unwrap();
}

/// Every file name in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_queue_313bcee_wrote_is_migrated_once_and_read() {
    let dir = TempDir::new();
    let file = dir.path().join("queue.redb");
    std::fs::write(&file, OLD_QUEUE).unwrap();
    assert_eq!(version(&file), None, "the fixture has no format record");

    let (store, recovery) = DurableStore::open(dir.path()).unwrap();
    assert!(recovery.is_none());
    let pending = store.oldest("ops", 10).unwrap();
    let names: Vec<&str> = pending
        .iter()
        .map(|e| e.summary.alerts[0].as_str())
        .collect();
    assert_eq!(names, ["OldPending1", "OldPending2", "OldPending3"]);
    assert_eq!(store.dead_letters().unwrap().len(), 1);
    drop(store);

    assert_eq!(version(&file), Some(1));
    // Written out in this release's encoding: the field release 313bcee did not write.
    let database = Database::create(&file).unwrap();
    let txn = database.begin_read().unwrap();
    let table = txn.open_table(PENDING).unwrap();
    let first = table.get(("ops", pending[0].id)).unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(first.value()).unwrap();
    assert_eq!(json["summary"]["group_key"], "", "{json}");
    drop((table, txn, database));

    let (store, _) = DurableStore::open(dir.path()).unwrap();
    assert_eq!(store.oldest("ops", 10).unwrap(), pending);
}

#[test]
fn a_new_file_records_this_releases_version() {
    let dir = TempDir::new();
    drop(DurableStore::open(dir.path()).unwrap());
    drop(Acks::open(dir.path()).unwrap());
    drop(Cards::open(dir.path()).unwrap());
    drop(escalate::Store::open(dir.path()).unwrap());
    for name in ["queue.redb", "state.redb", "cards.redb", "escalations.redb"] {
        assert_eq!(version(&dir.path().join(name)), Some(1), "{name}");
    }
}

/// Opens every file of `dir` as the bridge does; the errors, by file.
fn open_all(dir: &Path) -> Vec<(&'static str, Option<String>)> {
    vec![
        (
            "queue.redb",
            DurableStore::open(dir).err().map(|e| e.to_string()),
        ),
        ("state.redb", Acks::open(dir).err().map(|e| e.to_string())),
        ("cards.redb", Cards::open(dir).err()),
        (
            "escalations.redb",
            escalate::Store::open(dir).err().map(|e| e.to_string()),
        ),
    ]
}

#[test]
fn a_file_a_newer_release_wrote_is_refused_naming_both_versions_and_left_as_it_was() {
    let dir = TempDir::new();
    assert!(
        open_all(dir.path())
            .iter()
            .all(|(_, error)| error.is_none())
    );
    let names = ["queue.redb", "state.redb", "cards.redb", "escalations.redb"];
    for name in names {
        set_version(&dir.path().join(name), 7);
    }
    let before: Vec<Vec<u8>> = names
        .iter()
        .map(|name| std::fs::read(dir.path().join(name)).unwrap())
        .collect();
    let listed = listing(dir.path());

    for (name, error) in open_all(dir.path()) {
        let error = error.unwrap_or_else(|| panic!("{name} was opened"));
        assert!(error.contains(name), "{error}");
        assert!(
            error.contains("format version 7 is newer than this release reads (up to 1)"),
            "{error}"
        );
    }
    for (name, bytes) in names.iter().zip(&before) {
        assert!(
            std::fs::read(dir.path().join(name)).unwrap() == *bytes,
            "{name} changed"
        );
    }
    assert_eq!(listing(dir.path()), listed, "nothing moved aside or added");
}

fn fails_halfway(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(PENDING)?
        .insert(("ops", 999), b"half".as_slice())?;
    Err(redb::Error::Corrupted("stopped halfway".to_owned()))
}

#[test]
fn a_migration_that_fails_leaves_the_older_file_as_it_was() {
    let dir = TempDir::new();
    let file = dir.path().join("queue.redb");
    std::fs::write(&file, OLD_QUEUE).unwrap();
    let format = Format {
        version: 1,
        migrations: &[fails_halfway],
    };
    let database = Database::create(&file).unwrap();
    let txn = database.begin_write().unwrap();
    let error = storage::settle(&txn, &file, &format).unwrap_err();
    assert!(matches!(error, FormatError::Redb(_)), "{error}");
    drop(txn);
    drop(database);

    assert_eq!(version(&file), None);
    let database = Database::create(&file).unwrap();
    let txn = database.begin_read().unwrap();
    let table = txn.open_table(PENDING).unwrap();
    assert!(table.get(("ops", 999)).unwrap().is_none());
    drop((table, txn, database));
    let (store, _) = DurableStore::open(dir.path()).unwrap();
    assert_eq!(store.oldest("ops", 10).unwrap().len(), 3);
}
