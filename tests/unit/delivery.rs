//! The delivery worker on paused time, against a scripted DingTalk: backoff, the pause
//! after a rate-limit answer, dead letters for a removed robot, pacing of the window's
//! last slots, digests in a storm, messages DingTalk finds too long, and deliveries the
//! queue cannot write down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alertmanager_dingtalk::dingtalk::SendError;
use alertmanager_dingtalk::queue::Store;

use crate::scripted::{
    FaultyStore, Harness, Scripted, Sent, config, envelope, names, server_error, too_fast, too_long,
};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The time between consecutive sends.
fn gaps(sent: &[Sent]) -> Vec<Duration> {
    sent.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_doubling_with_jitter() {
    let dingtalk = Scripted::accepting();
    dingtalk.then(std::iter::repeat_with(server_error).take(7));
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());

    harness.queue("ops", &names(1)).await;
    harness.drained("ops", secs(600)).await;

    let sent = dingtalk.sent();
    assert_eq!(sent.len(), 8, "seven failures, then the delivery");
    for (retry, gap) in gaps(&sent).into_iter().enumerate() {
        let full = secs(1 << retry).min(secs(60));
        assert!(
            gap >= full / 2 && gap <= full,
            "retry {}: waited {gap:?}, expected {:?} to {full:?}",
            retry + 1,
            full / 2
        );
    }
    // Jittered: the factor is below 1, so no wait is the full one.
    let full_waits = gaps(&sent)
        .iter()
        .enumerate()
        .filter(|(retry, gap)| **gap == secs(1 << retry).min(secs(60)))
        .count();
    assert_eq!(full_waits, 0, "no jitter");
    assert_eq!(dingtalk.accepted().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_pause_doubles_to_ten_minutes_and_starts_over_after_a_success() {
    let dingtalk = Scripted::accepting();
    dingtalk.then([too_fast(), too_fast(), too_fast(), too_fast(), too_fast()]);
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());

    harness.queue("ops", &names(1)).await;
    harness.drained("ops", secs(3600)).await;
    let pauses = gaps(&dingtalk.sent());
    let expected = [60, 120, 240, 480, 600].map(secs);
    assert_eq!(pauses.len(), expected.len());
    for (pause, expected) in pauses.iter().zip(expected) {
        assert!(
            *pause >= expected && *pause < expected + secs(1),
            "paused {pause:?}, expected {expected:?}: {pauses:?}"
        );
    }

    // After a success, the next rate-limit answer pauses for a minute again.
    dingtalk.then([too_fast()]);
    harness.queue("ops", &["Later".to_owned()]).await;
    harness.drained("ops", secs(3600)).await;
    let sent = dingtalk.sent();
    let last = gaps(&sent[sent.len() - 2..]);
    assert!(last[0] >= secs(60) && last[0] < secs(61), "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn the_pause_is_shown_in_the_gate_and_the_gauge() {
    let dingtalk = Scripted::accepting();
    dingtalk.then([too_fast()]);
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());
    harness.queue("ops", &names(1)).await;
    let paused = |h: &Harness| {
        let view = h.delivery.gate("ops").view(tokio::time::Instant::now());
        view.paused_until.is_some()
    };
    harness.until("the pause", secs(5), paused).await;
    let view = harness
        .delivery
        .gate("ops")
        .view(tokio::time::Instant::now());
    assert!(view.paused_until.is_some(), "{view:?}");
    assert!(view.last_error.is_some_and(|e| e.error.contains("130101")));
    let metrics = harness.delivery.metrics.encode(false).1;
    assert!(
        metrics.contains("alertmanager_dingtalk_robot_paused{robot=\"ops\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn messages_of_a_removed_robot_become_dead_letters() {
    let dingtalk = Scripted::accepting();
    let dba = "  dba: { access_token: dba-token }";
    let harness = Harness::new(&config("", dba, ""), dingtalk.clone());
    // The robot goes before its worker ran, as when a restart finds its messages queued.
    harness.reload(&config("", "", ""));
    harness.queue("dba", &names(3)).await;
    harness.drained("dba", secs(5)).await;

    let dead = harness.delivery.queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 3);
    assert!(
        dead.iter().all(|d| d.reason.starts_with("robot_removed")),
        "{dead:?}"
    );
    assert!(
        dingtalk.sent().is_empty(),
        "nothing is sent for a removed robot"
    );
    let metrics = harness.delivery.metrics.encode(false).1;
    assert!(
        metrics.contains(
            "alertmanager_dingtalk_dead_letters_total{robot=\"dba\",reason=\"robot_removed\"} 3"
        ),
        "{metrics}"
    );
}

/// The gauges of a robot that is neither configured nor has messages queued are removed;
/// a frozen `queue_oldest_age_seconds` would keep an alert firing.
#[tokio::test(start_paused = true)]
async fn the_gauges_of_a_removed_robot_go_once_its_queue_is_empty() {
    let dingtalk = Scripted::slow(secs(30));
    let dba = "  dba: { access_token: dba-token }";
    let harness = Harness::new(&config("", dba, ""), dingtalk.clone());
    harness.delivery.metrics.declare_robot("dba");
    harness.queue("dba", &names(2)).await;
    harness
        .until("a send", secs(1), |h| !h.dingtalk.sent().is_empty())
        .await;
    let gauge = "alertmanager_dingtalk_queue_oldest_age_seconds{robot=\"dba\"}";
    harness
        .delivery
        .refresh_gauges(&harness.delivery.config.snapshot());
    assert!(harness.delivery.metrics.encode(false).1.contains(gauge));

    harness.reload(&config("", "", ""));
    harness
        .delivery
        .refresh_gauges(&harness.delivery.config.snapshot());
    assert!(
        harness.delivery.metrics.encode(false).1.contains(gauge),
        "still queued: still shown"
    );
    harness.drained("dba", secs(120)).await;
    harness
        .delivery
        .refresh_gauges(&harness.delivery.config.snapshot());
    let metrics = harness.delivery.metrics.encode(false).1;
    for series in [
        gauge,
        "queue_depth{robot=\"dba\"}",
        "robot_paused{robot=\"dba\"}",
    ] {
        assert!(
            !metrics.contains(series),
            "{series} still there:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("queue_depth{robot=\"ops\"} 0"),
        "{metrics}"
    );
}

/// Once only a quarter of the window is left, sends are spaced at window / count.
#[tokio::test(start_paused = true)]
async fn the_last_quarter_of_the_window_is_paced() {
    let dingtalk = Scripted::accepting();
    let harness = Harness::new(&config(", rate_limit: 20/min", "", ""), dingtalk.clone());
    for name in names(20) {
        harness.queue("ops", &[name]).await;
        harness.drained("ops", secs(120)).await;
    }
    let sent = dingtalk.sent();
    assert_eq!(sent.len(), 20, "one message at a time, no digest");
    let gaps = gaps(&sent);
    assert!(gaps[..14].iter().all(|g| *g < secs(1)), "{gaps:?}");
    for gap in &gaps[14..] {
        assert!(*gap >= secs(3) && *gap < secs(4), "{gaps:?}");
    }
}

/// More than 100 messages waiting become digests even when the window could send them
/// one by one.
#[tokio::test(start_paused = true)]
async fn a_storm_is_sent_as_digests_whatever_the_window() {
    let dingtalk = Scripted::accepting();
    let harness = Harness::new(&config(", rate_limit: 1000/s", "", ""), dingtalk.clone());
    let names = names(150);
    harness.queue("ops", &names).await;
    harness.drained("ops", secs(60)).await;

    let sent = dingtalk.sent();
    assert!(sent.len() <= 3, "{} sends for 150 messages", sent.len());
    assert!(
        sent[0].title().starts_with("[DIGEST]"),
        "{}",
        sent[0].title()
    );
    check_each_named_once(&sent, &names);
}

/// With more messages pending than the window has room for, they are merged.
#[tokio::test(start_paused = true)]
async fn more_pending_than_room_in_the_window_are_merged() {
    let dingtalk = Scripted::accepting();
    let harness = Harness::new(&config(", rate_limit: 5/min", "", ""), dingtalk.clone());
    let names = names(30);
    harness.queue("ops", &names).await;
    harness.drained("ops", secs(60)).await;
    let sent = dingtalk.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    check_each_named_once(&sent, &names);
}

fn check_each_named_once(sent: &[Sent], names: &[String]) {
    for name in names {
        let carrying = sent
            .iter()
            .filter(|s| s.answer.is_ok() && s.text().contains(&format!("- {name}\n")))
            .count();
        assert_eq!(carrying, 1, "{name} in {carrying} accepted messages");
    }
}

/// A DingTalk that counts title and text and takes less than the bridge's budget: every
/// "too long" answer lowers the robot's budget, the digest is cut into smaller ones, and
/// every alert arrives once; nothing is given up on.
#[tokio::test(start_paused = true)]
async fn a_digest_dingtalk_finds_too_long_is_split_not_buried() {
    let dingtalk = Scripted::with_rule(|sent| {
        if sent.size() > 6000 {
            too_long()
        } else {
            Ok(())
        }
    });
    let harness = Harness::new(&config(", rate_limit: 1000/s", "", ""), dingtalk.clone());
    let names = names(400);
    harness.queue("ops", &names).await;
    harness.drained("ops", secs(60)).await;

    let sent = dingtalk.sent();
    assert!(
        sent.iter().any(|s| s.answer.is_err()),
        "the first digests are too long"
    );
    assert!(
        sent.iter()
            .filter(|s| s.answer.is_ok())
            .all(|s| s.size() <= 6000)
    );
    check_each_named_once(&sent, &names);
    assert!(
        harness
            .delivery
            .queue
            .dead_letters()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        harness
            .delivery
            .gate("ops")
            .size_budget(&harness.delivery.config.snapshot().config.robots["ops"])
            <= 6000
    );
}

/// A single message that is too long goes again, cut shorter, with its keyword.
#[tokio::test(start_paused = true)]
async fn a_single_message_dingtalk_finds_too_long_is_sent_shorter() {
    let dingtalk = Scripted::with_rule(|sent| {
        if sent.size() > 3000 {
            too_long()
        } else {
            Ok(())
        }
    });
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());
    let mut long = envelope(1, "ops", "Huge");
    long.message.text = format!("{}\n\nHertzBeat", "- a line of a long alert\n".repeat(700));
    harness.delivery.queue.push(vec![long], 10).await.unwrap();
    harness.delivery.wake("ops");
    harness.drained("ops", secs(60)).await;

    let accepted = dingtalk.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].size() <= 3000);
    assert!(
        accepted[0].text().contains("(shortened"),
        "{}",
        accepted[0].text()
    );
    assert!(
        accepted[0].text().ends_with("HertzBeat"),
        "{}",
        accepted[0].text()
    );
    assert!(
        harness
            .delivery
            .queue
            .dead_letters()
            .await
            .unwrap()
            .is_empty()
    );
}

/// When even a short message is "too long", length is not the problem: it is given up on,
/// visibly.
#[tokio::test(start_paused = true)]
async fn a_message_too_long_even_when_short_becomes_a_dead_letter() {
    let dingtalk = Scripted::with_rule(|_| too_long());
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());
    harness.queue("ops", &names(1)).await;
    harness.drained("ops", secs(60)).await;
    let dead = harness.delivery.queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("460101"), "{}", dead[0].reason);
    assert!(
        dingtalk.sent().len() <= 8,
        "{} attempts",
        dingtalk.sent().len()
    );
}

/// Deliveries the store cannot write down are not sent again, and are written once it
/// can; so are dead letters.
#[tokio::test(start_paused = true)]
async fn deliveries_the_queue_cannot_write_are_not_sent_again() {
    let store = Arc::new(FaultyStore::default());
    let dingtalk = Scripted::accepting();
    let harness = Harness::with_store(&config("", "", ""), dingtalk.clone(), store.clone());
    store.failing.store(true, Ordering::Relaxed);
    let names = names(3);
    for name in &names {
        harness.queue("ops", std::slice::from_ref(name)).await;
        harness.drained("ops", secs(10)).await;
    }
    // Each was delivered once, though none could be removed from the store.
    tokio::time::sleep(secs(30)).await;
    assert_eq!(dingtalk.sent().len(), 3, "{:#?}", dingtalk.sent());
    assert_eq!(store.inner.scan().unwrap().robots["ops"].depth, 3);
    assert_eq!(harness.delivery.queue.unsettled("ops"), 3);

    store.failing.store(false, Ordering::Relaxed);
    harness
        .until("the removals are written", secs(120), |h| {
            h.delivery.queue.unsettled("ops") == 0
        })
        .await;
    assert!(store.inner.scan().unwrap().robots.is_empty());
    assert_eq!(dingtalk.sent().len(), 3, "nothing sent twice");
}

#[tokio::test(start_paused = true)]
async fn dead_letters_the_queue_cannot_write_are_written_later() {
    let store = Arc::new(FaultyStore::default());
    let refused = Err(SendError::Rejected {
        errcode: 300001,
        errmsg: "token is not exist".to_owned(),
    });
    let dingtalk = Scripted::with_rule(move |_| refused.clone());
    let harness = Harness::with_store(&config("", "", ""), dingtalk.clone(), store.clone());
    store.failing.store(true, Ordering::Relaxed);
    harness.queue("ops", &names(1)).await;
    harness.drained("ops", secs(10)).await;
    tokio::time::sleep(secs(10)).await;
    assert_eq!(
        dingtalk.sent().len(),
        1,
        "a permanent failure is not sent again"
    );
    assert!(store.inner.dead_letters().unwrap().is_empty());

    store.failing.store(false, Ordering::Relaxed);
    harness
        .until("the burial is written", secs(120), |h| {
            h.delivery.queue.unsettled("ops") == 0
        })
        .await;
    assert_eq!(store.inner.dead_letters().unwrap().len(), 1);
    assert!(store.inner.scan().unwrap().robots.is_empty());
}

/// The queue is delivered in order, one send at a time per robot, and robots do not wait
/// for each other.
#[tokio::test(start_paused = true)]
async fn robots_are_delivered_independently_and_in_order() {
    let dingtalk = Scripted::slow(Duration::from_millis(200));
    let dba = "  dba: { access_token: dba-token }";
    let harness = Harness::new(&config("", dba, ""), dingtalk.clone());
    harness.queue("ops", &names(3)).await;
    harness.queue("dba", &names(3)).await;
    harness.drained("ops", secs(5)).await;
    harness.drained("dba", secs(5)).await;
    let mut by_robot: BTreeMap<String, Vec<Sent>> = BTreeMap::new();
    for sent in dingtalk.sent() {
        by_robot.entry(sent.robot.clone()).or_default().push(sent);
    }
    for (robot, sent) in &by_robot {
        let titles: Vec<&str> = sent.iter().map(Sent::title).collect();
        assert!(
            titles[0].contains("Alert000") && titles[2].contains("Alert002"),
            "{robot}: {titles:?}"
        );
        assert!(
            gaps(sent).iter().all(|g| *g >= Duration::from_millis(200)),
            "{robot}: one at a time"
        );
    }
    let first = |robot: &str| by_robot[robot][0].at;
    assert!(
        first("ops").max(first("dba")) - first("ops").min(first("dba"))
            < Duration::from_millis(100)
    );
}
