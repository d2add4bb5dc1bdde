//! `queue::DurableStore`: the redb queue file keeps pending messages and dead letters in id
//! order per robot, across reopening, and recovers from a file it cannot read.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alertmanager_dingtalk::dingtalk::{Mention, Message};
use alertmanager_dingtalk::ingest::Status;
use alertmanager_dingtalk::queue::{DurableStore, Envelope, GroupSummary, Recovery, Store};
use jiff::Timestamp;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "am-dingtalk-durable-{name}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            Timestamp::now().as_nanosecond()
        ));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self) -> PathBuf {
        self.0.join("queue.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn envelope(robot: &str, id: u64) -> Envelope {
    Envelope {
        id,
        robot: robot.to_owned(),
        strategy: "default".to_owned(),
        message: Message {
            title: format!("[FIRING:1] Alert{id}"),
            text: format!("### Alert {id}\n\n- severity: critical"),
            mention: Mention::default(),
            buttons: Vec::new(),
            msgtype: None,
        },
        summary: GroupSummary {
            status: Status::Firing,
            title: format!("[FIRING:1] Alert{id}"),
            alerts: vec![format!("Alert{id}")],
            external_url: "http://alertmanager:9093".to_owned(),
            group_key: String::new(),
        },
        accepted_at: Timestamp::now(),
    }
}

/// Opens a store that must not need recovery.
fn open(dir: &TempDir) -> DurableStore {
    let (store, recovery) = DurableStore::open(dir.path()).expect("open");
    assert!(recovery.is_none(), "unexpected recovery: {recovery:?}");
    store
}

fn ids(messages: &[Envelope]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

#[test]
fn creates_the_directory_and_an_empty_queue() {
    let dir = TempDir::new("create");
    let store = open(&dir);
    assert!(dir.file().is_file());
    assert_eq!(store.scan().unwrap().last_id, 0);
    assert!(store.oldest("a", 10).unwrap().is_empty());
    assert!(store.dead_letters().unwrap().is_empty());
    assert!(store.scan().unwrap().robots.is_empty());
    assert!(store.revive_all().unwrap().is_empty());
}

#[test]
fn oldest_is_per_robot_in_id_order_and_limited() {
    let dir = TempDir::new("oldest");
    let store = open(&dir);
    // Out of order, interleaved, as concurrent webhooks may commit them.
    store
        .append(&[envelope("a", 3), envelope("b", 2), envelope("a", 1)])
        .unwrap();
    store
        .append(&[envelope("ab", 4), envelope("a", 10), envelope("b", 5)])
        .unwrap();
    store.append(&[envelope("a", 7)]).unwrap();
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1, 3, 7, 10]);
    assert_eq!(ids(&store.oldest("a", 2).unwrap()), [1, 3]);
    assert_eq!(ids(&store.oldest("a", 0).unwrap()), Vec::<u64>::new());
    assert_eq!(ids(&store.oldest("b", 10).unwrap()), [2, 5]);
    assert_eq!(ids(&store.oldest("ab", 10).unwrap()), [4]);
    assert!(store.oldest("", 10).unwrap().is_empty());
    assert!(store.oldest("c", 10).unwrap().is_empty());
    assert_eq!(store.scan().unwrap().last_id, 10);
}

#[test]
fn messages_round_trip_unchanged() {
    let dir = TempDir::new("roundtrip");
    let store = open(&dir);
    let mut message = envelope("a", 1);
    message.message.mention = Mention {
        all: true,
        mobiles: vec!["13800000000".to_owned()],
        user_ids: vec!["u1".to_owned()],
    };
    message.message.text = "多行\n文本 with \"quotes\" and \u{0}".to_owned();
    message.summary.status = Status::Resolved;
    store.append(std::slice::from_ref(&message)).unwrap();
    assert_eq!(store.oldest("a", 1).unwrap(), [message]);
}

#[test]
fn remove_takes_only_the_given_ids_of_the_robot() {
    let dir = TempDir::new("remove");
    let store = open(&dir);
    store
        .append(&[
            envelope("a", 1),
            envelope("a", 2),
            envelope("a", 3),
            envelope("b", 4),
        ])
        .unwrap();
    assert_eq!(
        store.remove("a", &[1, 3, 4, 99]).unwrap(),
        2,
        "only 1 and 3 were a's"
    );
    assert_eq!(store.remove("a", &[]).unwrap(), 0);
    assert_eq!(store.remove("a", &[1]).unwrap(), 0, "already removed");
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [2]);
    // Id 4 belongs to robot b: removing it as robot a's does nothing.
    assert_eq!(ids(&store.oldest("b", 10).unwrap()), [4]);
}

#[test]
fn bury_moves_to_the_dead_letters_with_the_reason() {
    let dir = TempDir::new("bury");
    let store = open(&dir);
    store
        .append(&[
            envelope("a", 1),
            envelope("a", 2),
            envelope("b", 3),
            envelope("a", 4),
        ])
        .unwrap();
    let at = Timestamp::now();
    let a = store.oldest("a", 10).unwrap();
    let buried = store
        .bury(&[a[2].clone(), a[0].clone()], "too old", at)
        .unwrap();
    assert_eq!(buried, 2);
    let b = store.oldest("b", 10).unwrap();
    store.bury(&b, "errcode 310000", at).unwrap();
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [2]);
    assert!(store.oldest("b", 10).unwrap().is_empty());
    let dead = store.dead_letters().unwrap();
    let summary: Vec<(u64, &str, &str)> = dead
        .iter()
        .map(|d| (d.envelope.id, d.envelope.robot.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "a", "too old"),
            (3, "b", "errcode 310000"),
            (4, "a", "too old")
        ]
    );
    assert!(dead.iter().all(|d| d.at == at));
    assert_eq!(dead[0].envelope, a[0]);
    assert_eq!(store.scan().unwrap().last_id, 4);
}

#[test]
fn revive_all_moves_the_dead_letters_back_in_id_order() {
    let dir = TempDir::new("revive");
    let store = open(&dir);
    store
        .append(&[
            envelope("a", 1),
            envelope("b", 2),
            envelope("a", 3),
            envelope("a", 5),
        ])
        .unwrap();
    let at = Timestamp::now();
    let a = store.oldest("a", 10).unwrap();
    store.bury(&[a[1].clone()], "second", at).unwrap();
    store.bury(&[a[0].clone()], "first", at).unwrap();
    store
        .bury(&store.oldest("b", 10).unwrap(), "b", at)
        .unwrap();
    let revived = store.revive_all().unwrap();
    assert_eq!(ids(&revived), [1, 2, 3]);
    assert_eq!(revived[0], a[0]);
    assert!(store.dead_letters().unwrap().is_empty());
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1, 3, 5]);
    assert_eq!(ids(&store.oldest("b", 10).unwrap()), [2]);
    assert!(store.revive_all().unwrap().is_empty());
}

#[test]
fn stats_give_depth_and_oldest_accepted_at_per_robot() {
    let dir = TempDir::new("stats");
    let store = open(&dir);
    let early = Timestamp::from_second(1_700_000_000).unwrap();
    let mut first = envelope("a", 1);
    first.accepted_at = early;
    let mut later = envelope("a", 2);
    later.accepted_at = early + jiff::SignedDuration::from_secs(60);
    store
        .append(&[later, first, envelope("b", 3), envelope("c", 4)])
        .unwrap();
    store
        .bury(&store.oldest("c", 1).unwrap(), "gone", Timestamp::now())
        .unwrap();
    let stats = store.scan().unwrap().robots;
    assert_eq!(stats.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(stats["a"].depth, 2);
    assert_eq!(stats["a"].oldest, Some(early));
    assert_eq!(stats["b"].depth, 1);
    assert!(stats["b"].oldest.is_some());
}

#[test]
fn an_append_for_several_robots_is_seen_whole() {
    let dir = TempDir::new("atomic");
    let store = open(&dir);
    let batch: Vec<Envelope> = (1..=30)
        .map(|id| envelope(["a", "b", "c"][(id % 3) as usize], id))
        .collect();
    store.append(&batch).unwrap();
    store.append(&[]).unwrap();
    let stats = store.scan().unwrap().robots;
    assert_eq!(stats.values().map(|s| s.depth).sum::<usize>(), 30);
    for robot in ["a", "b", "c"] {
        assert_eq!(stats[robot].depth, 10, "{robot}");
        assert_eq!(store.oldest(robot, 100).unwrap().len(), 10, "{robot}");
    }
}

#[test]
fn reopening_keeps_pending_and_dead_letters() {
    let dir = TempDir::new("reopen");
    {
        let store = open(&dir);
        store
            .append(&[envelope("a", 1), envelope("a", 2), envelope("b", 3)])
            .unwrap();
        store
            .bury(&store.oldest("a", 1).unwrap(), "too old", Timestamp::now())
            .unwrap();
        store.append(&[envelope("b", 4)]).unwrap();
        store.remove("b", &[4]).unwrap();
    }
    let store = open(&dir);
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [2]);
    assert_eq!(ids(&store.oldest("b", 10).unwrap()), [3]);
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].envelope.id, dead[0].reason.as_str()),
        (1, "too old")
    );
    assert_eq!(store.scan().unwrap().last_id, 3);
    store.append(&[envelope("a", 5)]).unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.scan().unwrap().last_id, 5);
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [2, 5]);
}

#[test]
fn last_id_looks_at_every_robot_and_the_dead_letters() {
    let dir = TempDir::new("last-id");
    let store = open(&dir);
    // The highest id is under the robot that sorts first.
    store
        .append(&[envelope("a", 9), envelope("z", 2), envelope("m", 20)])
        .unwrap();
    assert_eq!(store.scan().unwrap().last_id, 20);
    store
        .bury(&store.oldest("m", 1).unwrap(), "x", Timestamp::now())
        .unwrap();
    assert_eq!(store.scan().unwrap().last_id, 20);
    store.revive_all().unwrap();
    store.remove("m", &[20]).unwrap();
    assert_eq!(store.scan().unwrap().last_id, 9);
}

#[test]
fn a_file_of_garbage_is_moved_aside() {
    let dir = TempDir::new("garbage");
    std::fs::create_dir_all(dir.path()).unwrap();
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.file(), &garbage).unwrap();
    let (store, recovery) = DurableStore::open(dir.path()).unwrap();
    let Recovery { moved_to, error } = recovery.expect("a recovery");
    assert!(!error.is_empty());
    assert_eq!(moved_to.parent(), Some(dir.path()));
    let name = moved_to.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("queue.redb.corrupt-"), "{name}");
    assert_eq!(std::fs::read(&moved_to).unwrap(), garbage);
    store.append(&[envelope("a", 1)]).unwrap();
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1]);
    drop(store);
    let store = open(&dir);
    assert_eq!(store.scan().unwrap().last_id, 1);
}

#[test]
fn a_short_file_of_garbage_is_moved_aside() {
    let dir = TempDir::new("short-garbage");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.file(), b"not a database").unwrap();
    let (store, recovery) = DurableStore::open(dir.path()).unwrap();
    let recovery = recovery.expect("a recovery");
    assert_eq!(
        std::fs::read(&recovery.moved_to).unwrap(),
        b"not a database"
    );
    store.append(&[envelope("a", 1)]).unwrap();
    assert_eq!(store.scan().unwrap().last_id, 1);
}

#[test]
fn an_empty_file_is_a_new_queue() {
    let dir = TempDir::new("empty");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.file(), b"").unwrap();
    let store = open(&dir);
    assert_eq!(store.scan().unwrap().last_id, 0);
}

/// Writes a queue with `count` messages, returns the file's bytes.
fn write_queue(dir: &TempDir, count: u64) -> Vec<u8> {
    let store = open(dir);
    for chunk in (1..=count).collect::<Vec<_>>().chunks(50) {
        let batch: Vec<Envelope> = chunk
            .iter()
            .map(|&id| {
                let mut m = envelope(["a", "b"][(id % 2) as usize], id);
                m.message.text = format!("{id} ").repeat(200);
                m
            })
            .collect();
        store.append(&batch).unwrap();
    }
    store
        .bury(&store.oldest("a", 5).unwrap(), "dead", Timestamp::now())
        .unwrap();
    drop(store);
    std::fs::read(dir.file()).unwrap()
}

#[test]
fn a_truncated_file_is_repaired_or_moved_aside() {
    let original = TempDir::new("truncate-src");
    let bytes = write_queue(&original, 500);
    println!("queue file of 500 messages: {} bytes", bytes.len());
    for fraction in [2, 3, 4, 10, 100, 1000] {
        let len = bytes.len() / fraction;
        let dir = TempDir::new("truncated");
        std::fs::create_dir_all(dir.path()).unwrap();
        std::fs::write(dir.file(), &bytes[..len]).unwrap();
        let (store, recovery) = DurableStore::open(dir.path()).expect("open");
        match &recovery {
            Some(recovery) => {
                println!(
                    "truncated to 1/{fraction} ({len} bytes): moved aside: {}",
                    recovery.error
                );
                assert_eq!(std::fs::read(&recovery.moved_to).unwrap(), &bytes[..len]);
                assert_eq!(store.scan().unwrap().last_id, 0);
            }
            None => {
                let pending = store.scan().unwrap().robots;
                let depth: usize = pending.values().map(|s| s.depth).sum();
                println!(
                    "truncated to 1/{fraction} ({len} bytes): opened, {depth} pending, {} dead",
                    store.dead_letters().unwrap().len()
                );
            }
        }
        // Whatever happened, the store works.
        let next = store.scan().unwrap().last_id + 1;
        store.append(&[envelope("c", next)]).unwrap();
        assert_eq!(ids(&store.oldest("c", 10).unwrap()), [next]);
    }
}

#[test]
fn a_file_left_by_a_crash_keeps_what_was_committed() {
    let dir = TempDir::new("crash");
    let crashed = TempDir::new("crash-copy");
    std::fs::create_dir_all(crashed.path()).unwrap();
    let store = open(&dir);
    store
        .append(&[envelope("a", 1), envelope("b", 2), envelope("a", 3)])
        .unwrap();
    store
        .bury(&store.oldest("b", 1).unwrap(), "dead", Timestamp::now())
        .unwrap();
    // A delivery's removal may wait for the next commit to be synced...
    store.remove("a", &[1]).unwrap();
    store.append(&[envelope("a", 4)]).unwrap();
    // A copy taken while the store is open is what kill -9 leaves: committed, not closed.
    std::fs::copy(dir.file(), crashed.file()).unwrap();
    let reopened = open(&crashed);
    // ...which synced it.
    assert_eq!(ids(&reopened.oldest("a", 10).unwrap()), [3, 4]);
    assert_eq!(reopened.dead_letters().unwrap().len(), 1);
    assert_eq!(reopened.scan().unwrap().last_id, 4);
    reopened.append(&[envelope("a", 5)]).unwrap();
    assert_eq!(ids(&reopened.oldest("a", 10).unwrap()), [3, 4, 5]);
}

#[test]
fn a_removal_that_empties_a_robots_queue_is_synced_at_once() {
    let dir = TempDir::new("emptied");
    let crashed = TempDir::new("emptied-copy");
    std::fs::create_dir_all(crashed.path()).unwrap();
    let store = open(&dir);
    store.append(&[envelope("a", 1), envelope("b", 2)]).unwrap();
    store.remove("a", &[1]).unwrap();
    std::fs::copy(dir.file(), crashed.file()).unwrap();
    let reopened = open(&crashed);
    assert!(reopened.oldest("a", 10).unwrap().is_empty());
    assert_eq!(ids(&reopened.oldest("b", 10).unwrap()), [2]);
}

#[test]
fn an_unreadable_value_is_skipped_not_fatal() {
    let dir = TempDir::new("bad-value");
    {
        let store = open(&dir);
        store
            .append(&[envelope("a", 1), envelope("a", 3), envelope("b", 4)])
            .unwrap();
        store
            .bury(&store.oldest("b", 1).unwrap(), "dead", Timestamp::now())
            .unwrap();
    }
    {
        let db = redb::Database::create(dir.file()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let pending: redb::TableDefinition<(&str, u64), &[u8]> =
                redb::TableDefinition::new("pending");
            let dead: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("dead");
            let mut pending = txn.open_table(pending).unwrap();
            pending.insert(("a", 0), b"not json".as_slice()).unwrap();
            pending.insert(("a", 2), b"{\"id\":2}".as_slice()).unwrap();
            let mut dead = txn.open_table(dead).unwrap();
            dead.insert(9, b"\xff\xfe".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(&dir);
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1, 3]);
    assert_eq!(ids(&store.oldest("a", 1).unwrap()), [1]);
    let stats = store.scan().unwrap().robots;
    // The unreadable entries are in the file, so they count; the oldest is readable.
    assert_eq!(stats["a"].depth, 4);
    assert!(stats["a"].oldest.is_some());
    assert_eq!(store.dead_letters().unwrap().len(), 1);
    assert_eq!(store.scan().unwrap().last_id, 9);
    assert_eq!(ids(&store.revive_all().unwrap()), [4]);
    // The unreadable dead letter stays where it was.
    assert_eq!(store.scan().unwrap().last_id, 9);
    assert!(store.dead_letters().unwrap().is_empty());
}

#[test]
fn a_file_open_elsewhere_is_an_error_and_left_alone() {
    let dir = TempDir::new("locked");
    let store = open(&dir);
    store.append(&[envelope("a", 1)]).unwrap();
    let second = DurableStore::open(dir.path());
    assert!(second.is_err(), "a second open succeeded");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "the file was moved: {entries:?}");
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1]);
}

#[test]
fn a_directory_that_cannot_be_created_is_an_error() {
    let dir = TempDir::new("not-a-dir");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let error = DurableStore::open(&file.join("queue"))
        .err()
        .expect("an error");
    assert!(error.to_string().contains("queue"), "{error}");
}

#[test]
fn concurrent_appends_all_land() {
    let dir = TempDir::new("concurrent");
    let store = Arc::new(open(&dir));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let id = t * 100 + i + 1;
                    store
                        .append(&[envelope(["a", "b", "c"][(t % 3) as usize], id)])
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = store.scan().unwrap().robots;
    assert_eq!(stats.values().map(|s| s.depth).sum::<usize>(), 800);
    let mut all: Vec<u64> = ["a", "b", "c"]
        .iter()
        .flat_map(|r| ids(&store.oldest(r, usize::MAX).unwrap()))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=800).collect::<Vec<_>>());
    assert_eq!(store.scan().unwrap().last_id, 800);
}

/// A removal of delivered messages may be committed without an fsync; `sync` (which the
/// commit thread calls every second, and the server at shutdown) makes it durable, so a
/// graceful stop sends nothing twice.
#[test]
fn sync_makes_an_unsynced_removal_durable() {
    let dir = TempDir::new("sync");
    let before = TempDir::new("sync-before");
    let after = TempDir::new("sync-after");
    for copy in [&before, &after] {
        std::fs::create_dir_all(copy.path()).unwrap();
    }
    let store = open(&dir);
    store.append(&[envelope("a", 1), envelope("a", 2)]).unwrap();
    // Right after a synced commit, and the robot still has messages: not synced.
    store.remove("a", &[1]).unwrap();
    std::fs::copy(dir.file(), before.file()).unwrap();
    store.sync().unwrap();
    std::fs::copy(dir.file(), after.file()).unwrap();

    assert_eq!(
        ids(&open(&before).oldest("a", 10).unwrap()),
        [1, 2],
        "the removal waited"
    );
    assert_eq!(ids(&open(&after).oldest("a", 10).unwrap()), [2]);
}

/// Storage that fails every write while `full` is set, as a full disk does.
#[derive(Debug)]
struct FullDisk {
    file: FileBackend,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.full.load(Ordering::Relaxed) {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }
}

impl StorageBackend for FullDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.file.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// A store in `dir` whose disk is full while the flag is set.
fn on_a_disk_that_fills(dir: &TempDir) -> (DurableStore, Arc<AtomicBool>) {
    let full = Arc::new(AtomicBool::new(false));
    let disk = full.clone();
    let (store, _) = DurableStore::open_with(dir.path(), move |builder, file| {
        builder.create_with_backend(FullDisk {
            file: FileBackend::new(file)?,
            full: disk.clone(),
        })
    })
    .unwrap();
    (store, full)
}

/// Polls the commit thread's maintenance until it has opened the file again.
fn wait_until_opened_again(store: &DurableStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.maintain().is_err() {
        assert!(Instant::now() < deadline, "never opened again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After an I/O error redb refuses every later transaction until the file is opened
/// again: the store closes it, fails fast meanwhile, and opens it again once the disk
/// takes writes, with everything committed before the error still there.
#[test]
fn a_full_disk_closes_the_file_and_it_opens_again_once_writes_work() {
    let dir = TempDir::new("full");
    let (store, full) = on_a_disk_that_fills(&dir);
    store.append(&[envelope("a", 1)]).unwrap();

    full.store(true, Ordering::Relaxed);
    let error = store.append(&[envelope("a", 2)]).unwrap_err();
    assert!(error.to_string().contains("queue file"), "{error}");
    // Closed: later operations fail at once, also reads, without touching the disk.
    let error = store.append(&[envelope("a", 3)]).unwrap_err();
    assert!(error.to_string().contains("opening it again in"), "{error}");
    assert!(store.oldest("a", 10).is_err());
    // Too early: maintenance (the commit thread's, every second) waits for the backoff.
    let error = store.maintain().unwrap_err();
    assert!(error.to_string().contains("opening it again in"), "{error}");
    // Still full when the backoff has passed: opening again fails, and waits longer.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(store.maintain().is_err());
    assert!(store.append(&[envelope("a", 3)]).is_err());

    full.store(false, Ordering::Relaxed);
    wait_until_opened_again(&store);
    assert_eq!(store.generation(), 1);
    store.append(&[envelope("a", 3)]).unwrap();
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1, 3]);
    store.remove("a", &[1]).unwrap();
    store
        .bury(&store.oldest("a", 1).unwrap(), "dead", Timestamp::now())
        .unwrap();
    assert_eq!(store.dead_letters().unwrap().len(), 1);
}

/// A removal committed without a sync is lost when an I/O error closes the file; it is
/// written again on the reopened file, so the delivered message is not handed out again.
#[test]
fn an_unsynced_removal_survives_closing_the_file() {
    let dir = TempDir::new("unsynced-close");
    let (store, full) = on_a_disk_that_fills(&dir);
    store.append(&[envelope("a", 1), envelope("a", 2)]).unwrap();
    // Right after a synced commit, with a message left: committed without a sync.
    store.remove("a", &[1]).unwrap();
    full.store(true, Ordering::Relaxed);
    assert!(
        store.append(&[envelope("a", 3)]).is_err(),
        "the I/O error closes the file"
    );
    full.store(false, Ordering::Relaxed);
    wait_until_opened_again(&store);
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [2]);
}
