//! `queue::Queue` over its stores: what every `Store` keeps (the same checks for the
//! memory store and the redb file), the per-robot counts and their bound, an append that
//! races a read, and removals the store cannot write yet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alertmanager_dingtalk::queue::{
    DeadLetter, DurableStore, Envelope, Inventory, MemoryStore, Queue, QueueError, Store,
};
use jiff::Timestamp;

use crate::scripted::{FaultyStore, envelope};

fn ids(messages: &[Envelope]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

/// What any store must do, checked on `store` (empty at first).
fn check_store(store: &dyn Store) {
    assert_eq!(store.scan().unwrap(), Inventory::default());
    // Appended out of order, kept in id order per robot.
    store
        .append(&[
            envelope(3, "a", "A3"),
            envelope(1, "a", "A1"),
            envelope(2, "b", "B2"),
        ])
        .unwrap();
    store.append(&[envelope(4, "a", "A4")]).unwrap();
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [1, 3, 4]);
    assert_eq!(ids(&store.oldest("a", 2).unwrap()), [1, 3]);
    assert_eq!(ids(&store.oldest("b", 10).unwrap()), [2]);
    assert!(store.oldest("c", 10).unwrap().is_empty());
    let inventory = store.scan().unwrap();
    assert_eq!(inventory.last_id, 4);
    assert_eq!(inventory.robots["a"].depth, 3);
    assert_eq!(inventory.robots["b"].depth, 1);

    // Removal counts only what was pending for that robot.
    assert_eq!(store.remove("a", &[1, 2, 99]).unwrap(), 1);
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [3, 4]);

    // Burial moves to the dead letters with the reason; revival brings them back in order.
    let at = Timestamp::now();
    let buried = store.oldest("a", 10).unwrap();
    assert_eq!(store.bury(&buried, "310000: keyword", at).unwrap(), 2);
    assert!(store.oldest("a", 10).unwrap().is_empty());
    let dead: Vec<DeadLetter> = store.dead_letters().unwrap();
    assert_eq!(
        ids(&dead.iter().map(|d| d.envelope.clone()).collect::<Vec<_>>()),
        [3, 4]
    );
    assert!(
        dead.iter()
            .all(|d| d.reason == "310000: keyword" && d.at == at)
    );
    assert_eq!(
        store.scan().unwrap().last_id,
        4,
        "dead letters keep their ids taken"
    );
    assert_eq!(ids(&store.revive_all().unwrap()), [3, 4]);
    assert!(store.dead_letters().unwrap().is_empty());
    assert_eq!(ids(&store.oldest("a", 10).unwrap()), [3, 4]);
    store.sync().unwrap();
    assert_eq!(store.scan().unwrap().robots.len(), 2);
}

#[test]
fn the_memory_store_keeps_order_removals_and_dead_letters() {
    check_store(&MemoryStore::default());
}

#[test]
fn the_durable_store_keeps_order_removals_and_dead_letters() {
    let dir = std::env::temp_dir().join(format!("amdt-unit-queue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, recovery) = DurableStore::open(&dir).unwrap();
    assert!(recovery.is_none());
    check_store(&store);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_push_past_max_pending_is_refused_and_counts_nothing() {
    let queue = Arc::new(Queue::new(Arc::new(MemoryStore::default())).unwrap());
    queue
        .push(vec![envelope(1, "a", "A1"), envelope(2, "a", "A2")], 3)
        .await
        .unwrap();
    let refused = queue
        .push(vec![envelope(3, "a", "A3"), envelope(4, "a", "A4")], 3)
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        QueueError::Full {
            robot: "a".to_owned(),
            limit: 3
        }
    );
    assert!(
        refused.to_string().contains("delivery.max_pending"),
        "{refused}"
    );
    assert_eq!(queue.depth("a"), 2);
    assert_eq!(ids(&queue.oldest("a", 10).await.unwrap()), [1, 2]);
    // The bound is per robot.
    queue.push(vec![envelope(5, "b", "B5")], 3).await.unwrap();
    queue.push(vec![envelope(6, "a", "A6")], 3).await.unwrap();
    assert_eq!((queue.depth("a"), queue.depth("b")), (3, 1));
}

/// When the store has nothing readable for a robot, the queue takes off what it had
/// counted, not everything: a message appended meanwhile keeps its count, and its worker
/// is not left waiting for the next webhook.
#[tokio::test]
async fn an_append_racing_a_read_of_nothing_keeps_its_count() {
    let store = Arc::new(FaultyStore::default());
    let queue = Arc::new(Queue::new(store.clone()).unwrap());
    queue
        .push(vec![envelope(1, "a", "Unreadable")], 10)
        .await
        .unwrap();
    let racing = queue.clone();
    store.during_next_read(move || {
        // Another webhook's append commits while the store is being read.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime
                .block_on(racing.push(vec![envelope(2, "a", "Racing")], 10))
                .unwrap();
        })
        .join()
        .unwrap();
    });

    assert!(queue.oldest("a", 1).await.unwrap().is_empty());
    assert_eq!(queue.depth("a"), 1, "the racing append is still counted");
    tokio::time::timeout(Duration::from_secs(1), queue.wait_pending("a"))
        .await
        .expect("the worker is woken for it");
}

/// A removal the store cannot write is taken off the count and out of what the queue
/// hands out, and written by `settle` once the store works.
#[tokio::test]
async fn an_unwritten_removal_is_not_handed_out_again_and_settles_later() {
    let store = Arc::new(FaultyStore::default());
    let queue = Arc::new(Queue::new(store.clone()).unwrap());
    queue
        .push(vec![envelope(1, "a", "A1"), envelope(2, "a", "A2")], 10)
        .await
        .unwrap();
    store.failing.store(true, Ordering::Relaxed);
    assert!(queue.ack("a", vec![1]).await.is_err());
    assert_eq!(queue.depth("a"), 1);
    assert_eq!(queue.unsettled("a"), 1);
    assert_eq!(
        ids(&queue.oldest("a", 10).await.unwrap()),
        [2],
        "1 was delivered"
    );
    assert!(
        queue
            .bury("a", vec![envelope(2, "a", "A2")], "310000: keyword".into())
            .await
            .is_err()
    );
    assert_eq!((queue.depth("a"), queue.unsettled("a")), (0, 2));
    assert!(queue.oldest("a", 10).await.unwrap().is_empty());
    assert!(queue.settle("a").await.is_err());
    assert_eq!(queue.unsettled("a"), 2, "kept for the next try");

    store.failing.store(false, Ordering::Relaxed);
    queue.settle("a").await.unwrap();
    assert_eq!((queue.depth("a"), queue.unsettled("a")), (0, 0));
    assert!(store.inner.oldest("a", 10).unwrap().is_empty());
    assert_eq!(
        ids(&queue
            .dead_letters()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.envelope)
            .collect::<Vec<_>>()),
        [2]
    );
}

/// A store opened again after a failure may hold what the queue never counted (a commit
/// answered with an error may have been written): the counts are raised to what it holds,
/// and the robot's worker is woken, so nothing is left waiting.
#[tokio::test]
async fn after_the_store_is_opened_again_the_queue_counts_what_it_holds() {
    let store = Arc::new(FaultyStore::default());
    let queue = Arc::new(Queue::new(store.clone()).unwrap());
    queue
        .push(vec![envelope(1, "a", "Counted")], 10)
        .await
        .unwrap();
    // Written, though the queue was told it failed.
    store
        .inner
        .append(&[envelope(2, "a", "Uncounted"), envelope(3, "b", "Uncounted")])
        .unwrap();
    assert_eq!((queue.depth("a"), queue.depth("b")), (1, 0));

    store.generation.fetch_add(1, Ordering::Relaxed);
    assert_eq!(ids(&queue.oldest("a", 10).await.unwrap()), [1, 2]);
    assert_eq!((queue.depth("a"), queue.depth("b")), (2, 1));
    tokio::time::timeout(Duration::from_secs(1), queue.wait_pending("b"))
        .await
        .expect("b's worker is woken");
}

/// A message of `name` in alert group `group`.
fn grouped(id: u64, name: &str, group: &str) -> Envelope {
    let mut message = envelope(id, "a", name);
    message.summary.group_key = group.to_owned();
    message
}

/// The queue knows, without reading its store, whether an alert group has more than one
/// message pending: the worker reads a batch for supersession only then. It knows it
/// again from the queue file after a restart, and counts each robot's dead letters and
/// the age of its oldest message the same way.
#[tokio::test]
async fn the_ledger_knows_repeated_groups_ages_and_dead_letters_also_after_a_restart() {
    let dir = testkit::temp_dir("queue-ledger");
    let (store, _) = DurableStore::open(&dir).unwrap();
    let queue = Arc::new(Queue::new(Arc::new(store)).unwrap());
    let mut first = grouped(1, "A1", "g");
    first.accepted_at = Timestamp::from_second(1_796_544_000).unwrap();
    queue
        .push(vec![first.clone(), grouped(2, "B2", "h")], 10)
        .await
        .unwrap();
    assert!(
        !queue.has_repeated_group("a"),
        "two groups, one message each"
    );
    queue.push(vec![grouped(3, "A3", "g")], 10).await.unwrap();
    assert!(queue.has_repeated_group("a"));
    assert_eq!(queue.stats()["a"].oldest, Some(first.accepted_at));
    queue
        .bury("a", vec![grouped(2, "B2", "h")], "310000: keyword".into())
        .await
        .unwrap();
    assert_eq!(queue.dead_counts()["a"], 1);
    drop(queue);

    // The commit thread lets go of the file once it sees the queue gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let store = loop {
        match DurableStore::open(&dir) {
            Ok((store, _)) => break store,
            Err(error) if std::time::Instant::now() < deadline => {
                assert!(error.to_string().contains("already open"), "{error}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("{error}"),
        }
    };
    let queue = Arc::new(Queue::new(Arc::new(store)).unwrap());
    assert!(queue.has_repeated_group("a"), "read from the file");
    assert_eq!(queue.dead_counts()["a"], 1);
    assert_eq!(queue.stats()["a"].oldest, Some(first.accepted_at));
    queue.ack("a", vec![1]).await.unwrap();
    assert!(!queue.has_repeated_group("a"), "g has one message left");
    assert_ne!(
        queue.stats()["a"].oldest,
        Some(first.accepted_at),
        "read again"
    );
    drop(queue);
    let _ = std::fs::remove_dir_all(&dir);
}
