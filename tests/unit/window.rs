//! The promise that keeps a robot from DingTalk's ten-minute block, as a property: whatever
//! mix of queued messages (sent singly or as digests), passthrough webhooks, retries and
//! rate-limit pauses, at most `rate_limit.count` sends start in any rolling
//! `rate_limit.window` plus its margin (1/20 of the window, at most 1 s). Time is paused,
//! so a run of half an hour takes milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alertmanager_dingtalk::accept::passthrough::send_now;
use alertmanager_dingtalk::dingtalk::SendError;
use alertmanager_dingtalk::ingest;
use alertmanager_dingtalk::render::Handling;
use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;
use tokio::time::Instant;

use crate::scripted::{Harness, Scripted, config, server_error, too_fast, too_long};

/// Something that happens to the robot, `after` the previous event.
#[derive(Debug, Clone)]
enum Event {
    /// A webhook queues this many messages for the worker.
    Queue { after: Duration, messages: usize },
    /// A passthrough webhook sends one message at once.
    Passthrough { after: Duration },
}

fn event() -> impl Strategy<Value = Event> {
    let after = (0..20_000u64).prop_map(Duration::from_millis);
    prop_oneof![
        (after.clone(), 1..40usize).prop_map(|(after, messages)| Event::Queue { after, messages }),
        after.prop_map(|after| Event::Passthrough { after }),
    ]
}

/// DingTalk's answers, in the order it gives them (then it accepts everything).
fn answer() -> impl Strategy<Value = Result<(), SendError>> {
    prop_oneof![
        6 => Just(Ok(())),
        2 => Just(server_error()),
        1 => Just(too_fast()),
        1 => Just(too_long()),
        1 => Just(Err(SendError::Network("timed out".to_owned()))),
    ]
}

/// Runs `events` against a robot allowed `count` sends per `window_secs`, with DingTalk
/// giving `answers`; returns when each send started.
fn run(
    count: u32,
    window_secs: u64,
    events: Vec<Event>,
    answers: Vec<Result<(), SendError>>,
) -> Vec<Instant> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dingtalk = Scripted::slow(Duration::from_millis(150));
        dingtalk.then(answers);
        let yaml = config(
            &format!(", rate_limit: {count}/{window_secs}s"),
            "",
            "  passthrough_max_wait: 5s",
        );
        let harness = Arc::new(Harness::new(&yaml, dingtalk.clone()));
        let next = Arc::new(Mutex::new(0usize));
        let mut webhooks = Vec::new();
        for event in events {
            let fresh = |n: usize| {
                let mut next = next.lock().unwrap();
                let names: Vec<String> = (0..n).map(|i| format!("Alert{}", *next + i)).collect();
                *next += n;
                names
            };
            match event {
                Event::Queue { after, messages } => {
                    tokio::time::sleep(after).await;
                    harness.queue("ops", &fresh(messages)).await;
                }
                Event::Passthrough { after } => {
                    tokio::time::sleep(after).await;
                    let name = fresh(1).remove(0);
                    let harness = harness.clone();
                    webhooks.push(tokio::spawn(async move {
                        let body = serde_json::json!({
                            "status": "firing",
                            "groupKey": name,
                            "alerts": [{
                                "status": "firing",
                                "labels": { "alertname": name },
                                "startsAt": "2024-05-01T00:00:00Z",
                            }],
                        });
                        let notification = ingest::parse(body.to_string().as_bytes()).unwrap();
                        let runtime = harness.delivery.config.snapshot();
                        let _ = send_now(
                            &harness.delivery,
                            &harness.dedup,
                            &runtime,
                            &notification,
                            None,
                            Handling::default(),
                        )
                        .await;
                    }));
                }
            }
        }
        for webhook in webhooks {
            webhook.await.unwrap();
        }
        // Long enough for every retry and the longest pauses to play out.
        harness.drained("ops", Duration::from_secs(7200)).await;
        dingtalk.sent().iter().map(|s| s.at).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_window_ever_holds_more_than_the_limit(
        count in 1..8u32,
        window_secs in prop_oneof![Just(10u64), Just(60)],
        events in prop::collection::vec(event(), 1..25),
        answers in prop::collection::vec(answer(), 0..30),
    ) {
        let starts = run(count, window_secs, events, answers);
        let window = Duration::from_secs(window_secs);
        let span = window + (window / 20).min(Duration::from_secs(1));
        let count = count as usize;
        for (i, later) in starts.iter().enumerate().skip(count) {
            let earlier = starts[i - count];
            prop_assert!(
                *later - earlier >= span,
                "sends {} and {} started {:?} apart, within {span:?}: {} sends in one window",
                i - count,
                i,
                *later - earlier,
                count + 1
            );
        }
    }
}
