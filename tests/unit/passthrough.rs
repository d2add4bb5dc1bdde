//! Passthrough mode on paused time: DingTalk's verdict passed back, the rate window and
//! `passthrough_max_wait`, a lane held by a hanging send, duplicates, and messages
//! DingTalk finds too long.

use std::time::Duration;

use alertmanager_dingtalk::accept::passthrough::{Passed, send_now};
use alertmanager_dingtalk::dingtalk::{Retry, SendError};
use alertmanager_dingtalk::ingest::{self, Notification};
use alertmanager_dingtalk::render::Handling;
use tokio::time::Instant;

use crate::scripted::{Harness, Scripted, config, too_long};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A notification of one group of `alerts` alerts named `name`.
fn notification(name: &str, alerts: usize) -> Notification {
    let alerts: Vec<serde_json::Value> = (0..alerts)
        .map(|i| {
            serde_json::json!({
                "status": "firing",
                "labels": { "alertname": name, "instance": format!("host-{i}:9100") },
                "annotations": { "summary": format!("{name} on host-{i} needs a look") },
                "startsAt": "2024-05-01T00:00:00Z",
                "fingerprint": format!("{name}-{i}"),
            })
        })
        .collect();
    let body = serde_json::json!({
        "status": "firing",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "alerts": alerts,
    });
    ingest::parse(body.to_string().as_bytes()).unwrap()
}

async fn send(harness: &Harness, notification: &Notification) -> Passed {
    let runtime = harness.delivery.config.snapshot();
    send_now(
        &harness.delivery,
        &harness.dedup,
        &runtime,
        notification,
        None,
        Handling::default(),
    )
    .await
    .unwrap()
}

fn passthrough(rate_limit: &str, max_wait: &str) -> String {
    config(
        &format!(", rate_limit: {rate_limit}"),
        "",
        &format!("  mode: passthrough\n  passthrough_max_wait: {max_wait}"),
    )
}

#[tokio::test(start_paused = true)]
async fn a_slot_further_away_than_max_wait_is_refused_at_once() {
    let dingtalk = Scripted::accepting();
    // 3 a minute: two go at once, then the last slot is paced 20 s after the second.
    let harness = Harness::new(&passthrough("3/min", "10s"), dingtalk.clone());
    for name in ["First", "Second"] {
        let passed = send(&harness, &notification(name, 1)).await;
        assert!(
            matches!(passed, Passed::Delivered { messages: 1 }),
            "{passed:?}"
        );
    }
    let asked = Instant::now();
    match send(&harness, &notification("Third", 1)).await {
        Passed::RateLimited { robot, wait } => {
            assert_eq!(robot, "ops");
            assert!(wait > secs(19) && wait <= secs(20), "{wait:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(Instant::now(), asked, "refused without waiting");
    assert_eq!(dingtalk.sent().len(), 2);

    tokio::time::sleep(secs(20)).await;
    let passed = send(&harness, &notification("Third", 1)).await;
    assert!(matches!(passed, Passed::Delivered { .. }), "{passed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slot_within_max_wait_is_waited_for() {
    let dingtalk = Scripted::accepting();
    let harness = Harness::new(&passthrough("3/min", "30s"), dingtalk.clone());
    let start = Instant::now();
    for name in ["First", "Second", "Third"] {
        let passed = send(&harness, &notification(name, 1)).await;
        assert!(matches!(passed, Passed::Delivered { .. }), "{passed:?}");
    }
    let sent = dingtalk.sent();
    assert_eq!(sent[2].at - start, secs(20), "the paced last slot");
}

/// A harness under `rate_limit` whose DingTalk takes a minute to answer, and a first
/// webhook already waiting for that answer.
async fn hanging_first_send(
    rate_limit: &str,
) -> (std::sync::Arc<Harness>, tokio::task::JoinHandle<Passed>) {
    let harness = std::sync::Arc::new(Harness::new(
        &passthrough(rate_limit, "10s"),
        Scripted::slow(secs(60)),
    ));
    let first = tokio::spawn({
        let harness = harness.clone();
        async move { send(&harness, &notification("Hanging", 1)).await }
    });
    harness
        .until("the first send", secs(1), |h| h.dingtalk.sent().len() == 1)
        .await;
    (harness, first)
}

/// A send hanging on DingTalk holds the robot's lane; a second webhook gives up after
/// `passthrough_max_wait` instead of sending beside it.
#[tokio::test(start_paused = true)]
async fn a_hanging_send_leaves_the_next_webhook_busy() {
    let (harness, first) = hanging_first_send("20/min").await;
    let dingtalk = harness.dingtalk.clone();
    let asked = Instant::now();
    let passed = send(&harness, &notification("Next", 1)).await;
    assert!(
        matches!(passed, Passed::Busy { ref robot } if robot == "ops"),
        "{passed:?}"
    );
    assert_eq!(Instant::now() - asked, secs(10));
    assert_eq!(dingtalk.sent().len(), 1);
    assert!(matches!(first.await.unwrap(), Passed::Delivered { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_copy_of_a_delivered_notification_is_not_sent_again() {
    let dingtalk = Scripted::accepting();
    let harness = Harness::new(&passthrough("20/min", "10s"), dingtalk.clone());
    let first = notification("Twice", 2);
    assert!(matches!(
        send(&harness, &first).await,
        Passed::Delivered { .. }
    ));
    assert!(matches!(send(&harness, &first).await, Passed::Duplicate));
    assert_eq!(dingtalk.sent().len(), 1);
}

/// A failed one is not remembered: Alertmanager's retry is sent.
#[tokio::test(start_paused = true)]
async fn a_failure_is_passed_back_and_the_retry_is_sent() {
    let dingtalk = Scripted::accepting();
    let refused = SendError::Rejected {
        errcode: 300001,
        errmsg: "token is not exist".to_owned(),
    };
    dingtalk.then([Err(refused), Err(SendError::Http(502))]);
    let harness = Harness::new(&passthrough("20/min", "10s"), dingtalk.clone());
    let alert = notification("Refused", 1);
    match send(&harness, &alert).await {
        Passed::Failed { robot, failure } => {
            assert_eq!(robot, "ops");
            assert_eq!(failure.retry, Retry::Never);
            assert!(failure.hint.contains("access_token"), "{}", failure.hint);
        }
        other => panic!("{other:?}"),
    }
    match send(&harness, &alert).await {
        Passed::Failed { failure, .. } => assert_eq!(failure.retry, Retry::Later),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        send(&harness, &alert).await,
        Passed::Delivered { .. }
    ));
    assert_eq!(dingtalk.sent().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_message_dingtalk_finds_too_long_is_sent_shorter() {
    let dingtalk = Scripted::with_rule(|sent| {
        if sent.size() > 4000 {
            too_long()
        } else {
            Ok(())
        }
    });
    let harness = Harness::new(&passthrough("20/min", "10s"), dingtalk.clone());
    let passed = send(&harness, &notification("Wide", 200)).await;
    assert!(matches!(passed, Passed::Delivered { .. }), "{passed:?}");
    let accepted = dingtalk.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].size() <= 4000, "{}", accepted[0].size());
    assert!(accepted[0].text().contains("HertzBeat"));
    // The next one is cut to the robot's new budget at once.
    let sent_before = dingtalk.sent().len();
    assert!(matches!(
        send(&harness, &notification("Wider", 300)).await,
        Passed::Delivered { .. }
    ));
    assert_eq!(
        dingtalk.sent().len(),
        sent_before + 1,
        "no refused attempt first"
    );
}

/// When the window has no slot before the deadline, the webhook is refused at once, even
/// while another send holds the lane: it does not wait `passthrough_max_wait` for a lane
/// it could not use.
#[tokio::test(start_paused = true)]
async fn a_full_window_is_refused_at_once_even_while_a_send_holds_the_lane() {
    let (harness, first) = hanging_first_send("1/min").await;
    let asked = Instant::now();
    let passed = send(&harness, &notification("Next", 1)).await;
    assert!(matches!(passed, Passed::RateLimited { .. }), "{passed:?}");
    assert_eq!(
        Instant::now(),
        asked,
        "refused without waiting for the lane"
    );
    assert!(matches!(first.await.unwrap(), Passed::Delivered { .. }));
}
