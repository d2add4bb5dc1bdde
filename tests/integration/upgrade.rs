//! Upgrades keep the queue: a queue file the release before issue 20 wrote (commit 313bcee;
//! `tests/data/queue-313bcee/`, made as its README says) is read by this one, its pending
//! messages delivered once each and its dead letter listed and retried.

use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeDingTalk, FakeRobot, Request};

use crate::{BINARY, QUIET, QUIET_WITHIN};

/// The queue file, as release 313bcee left it: three messages pending for `ops`, one dead
/// letter of `dead`.
const OLD_QUEUE: &[u8] = include_bytes!("../data/queue-313bcee/queue.redb");

fn config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}" }}
delivery:
  queue_dir: data/queue
robots:
  ops: {{ access_token: ops-token }}
  dead: {{ access_token: dead-token }}
strategies:
  - name: ops
    matchers: ['team="ops"']
    robots: [ops]
"#
    )
}

fn delivered_about(requests: &[Request], token: &str, name: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.delivered() && r.token == token && r.text().contains(name))
        .count()
}

#[tokio::test]
async fn a_queue_written_by_the_release_before_is_delivered_after_the_upgrade() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("ops-token"),
        FakeRobot::new("dead-token"),
    ])
    .await;
    let bridge = Bridge::start_with_files(
        BINARY,
        &config(&dingtalk.api_url()),
        &[("data/queue/queue.redb", OLD_QUEUE)],
    )
    .await;

    let pending = ["OldPending1", "OldPending2", "OldPending3"];
    dingtalk
        .wait_until("the old release's queue", Duration::from_secs(30), |r| {
            pending
                .iter()
                .all(|name| delivered_about(r, "ops-token", name) > 0)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in pending {
        assert_eq!(delivered_about(&requests, "ops-token", name), 1, "{name}");
    }

    let (_, dead) = bridge.get("/api/v1/dead-letters").await;
    let dead: Vec<Value> = serde_json::from_str(&dead).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["robot"], "dead");
    assert_eq!(dead[0]["alerts"][0], "OldDead");
    let (status, _) = bridge.post("/api/v1/dead-letters/retry", "", None).await;
    assert_eq!(status, 200);
    dingtalk
        .wait_until(
            "the old dead letter, retried",
            Duration::from_secs(30),
            |r| delivered_about(r, "dead-token", "OldDead") == 1,
        )
        .await;
    bridge.wait_idle().await;
}
