//! Stale states are not sent as a train (issue 20): a group that fires and resolves three
//! times while DingTalk cannot be reached reaches it afterwards as its latest state, with
//! a note of what changed, also after a `kill -9` in between; the replaced messages are
//! settled, not dead letters, and counted.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, Request, payload_since};

use crate::reliability::durable_config;
use crate::{BINARY, QUIET, QUIET_WITHIN};

fn delivered_about<'r>(requests: &'r [Request], name: &str) -> Vec<&'r Request> {
    requests
        .iter()
        .filter(|r| r.delivered() && r.text().contains(name))
        .collect()
}

#[tokio::test]
async fn a_group_that_flaps_during_an_outage_arrives_as_its_latest_state_across_a_restart() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Refuse);
    let bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;
    for episode in ["08:00:00", "08:01:00", "08:02:00"] {
        let starts_at = format!("2026-12-06T{episode}Z");
        for status in ["firing", "resolved"] {
            let (code, answer) = bridge
                .post(
                    "/alertmanager",
                    payload_since(status, "Flapping", &starts_at),
                    None,
                )
                .await;
            assert_eq!(
                (code, answer.trim()),
                (200, "ok: 1 alerts, 1 messages queued")
            );
        }
    }
    // What was queued is on disk, group and all.
    let bridge = bridge.restart().await;
    dingtalk.set_mode(Mode::Normal);

    dingtalk
        .wait_until("the group's latest state", Duration::from_secs(60), |r| {
            delivered_about(r, "Flapping")
                .last()
                .is_some_and(|last| last.title().contains("RESOLVED"))
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let delivered = delivered_about(&requests, "Flapping");
    assert!(delivered.len() <= 2, "{delivered:#?}");
    let last = delivered.last().unwrap();
    assert!(last.title().contains("RESOLVED"), "{}", last.title());
    assert!(
        last.text().contains("fired 3× and resolved 3× since"),
        "{}",
        last.text()
    );
    bridge.wait_idle().await;
    let (_, dead) = bridge.get("/api/v1/dead-letters").await;
    assert_eq!(dead.trim(), "[]", "settled, not dead letters");
    let superseded = bridge
        .metric(r#"alertmanager_dingtalk_messages_superseded_total{robot="ops"}"#)
        .await;
    assert_eq!(superseded, (6 - delivered.len()) as f64);
}
