//! Robot pools against the fake DingTalk: three robots of one group share its messages,
//! each within its own window (DingTalk's 20 a minute scaled down to 4 per 2 s on both
//! sides); a robot deleted, or blocked for sending too fast, leaves its share to the
//! others and nothing becomes a dead letter; two replicas sharing Redis keep every robot
//! within its window too; passthrough mode fails over the same way.

use std::time::{Duration, Instant};

use testkit::{Bridge, FakeDingTalk, FakeRobot, Redis, Request};

use crate::BINARY;
use crate::cluster::storm;
use crate::delivery::wait_for_every_name;

const WINDOW: Duration = Duration::from_secs(2);
const LIMIT: usize = 4;
const TOKENS: [&str; 3] = ["a-token", "b-token", "c-token"];
const WAIT: Duration = Duration::from_secs(30);

fn pool_config(api_url: &str, extra: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 2s
robots:
  ops-a:
    access_token: a-token
    rate_limit: {LIMIT}/2s
  ops-b:
    access_token: b-token
    rate_limit: {LIMIT}/2s
  ops-c:
    access_token: c-token
    rate_limit: {LIMIT}/2s
pools:
  ops: [ops-a, ops-b, ops-c]
strategies:
  - name: all
    robots: [pool:ops]
{extra}"#
    )
}

async fn fake() -> FakeDingTalk {
    let robots = TOKENS
        .iter()
        .map(|t| FakeRobot::new(t).rate(LIMIT as u32, WINDOW))
        .collect();
    FakeDingTalk::start(robots).await
}

/// The most requests of `requests` accepted within one rolling `window`, whatever robot.
fn most_delivered_in_any_window(requests: &[Request], window: Duration) -> usize {
    let times: Vec<Instant> = requests
        .iter()
        .filter(|r| r.errcode == Some(0))
        .map(|r| r.at)
        .collect();
    (0..times.len())
        .map(|start| {
            times[start..]
                .iter()
                .take_while(|at| at.duration_since(times[start]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn assert_each_robot_within_its_window(dingtalk: &FakeDingTalk) {
    for token in TOKENS {
        let most = dingtalk.max_in_any_window(token, WINDOW);
        assert!(most <= LIMIT, "{token}: {most} requests in one window");
    }
    let too_fast = dingtalk
        .requests()
        .iter()
        .filter(|r| r.errcode == Some(130_101))
        .count();
    assert_eq!(too_fast, 0, "no robot was blocked for sending too fast");
}

#[tokio::test]
async fn a_storm_on_a_pool_spreads_over_its_robots_within_each_window() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &pool_config(&dingtalk.api_url(), "")).await;

    let names = storm(std::slice::from_ref(&bridge), "Spread", 12).await;

    let requests = wait_for_every_name(&dingtalk, &names, WAIT).await;
    assert_each_robot_within_its_window(&dingtalk);
    for token in TOKENS {
        assert!(
            !dingtalk.delivered(token).is_empty(),
            "{token} carried none"
        );
    }
    // One robot could carry at most 4 in a window; the pool carried more.
    let most = most_delivered_in_any_window(&requests, WINDOW);
    assert!(
        most > LIMIT,
        "the pool carried {most} in its best window, no more than one robot"
    );
    let (_, queue) = bridge.get("/api/v1/queue").await;
    assert!(queue.contains(r#""rate_limit": "3 × 4/2s""#), "{queue}");
}

#[tokio::test]
async fn a_robot_deleted_mid_storm_leaves_its_messages_to_the_others() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &pool_config(&dingtalk.api_url(), "")).await;

    let mut names = storm(std::slice::from_ref(&bridge), "Before", 6).await;
    dingtalk
        .wait_until("ops-b delivered one", WAIT, |r| {
            r.iter()
                .any(|r| r.token == "b-token" && r.errcode == Some(0))
        })
        .await;
    dingtalk.delete_robot("b-token");
    names.extend(storm(std::slice::from_ref(&bridge), "After", 18).await);

    wait_for_every_name(&dingtalk, &names, WAIT).await;
    bridge.wait_idle().await;
    assert_eq!(
        bridge.get("/api/v1/dead-letters").await.1.trim(),
        "[]",
        "nothing is a dead letter"
    );
    assert!(
        dingtalk
            .requests()
            .iter()
            .any(|r| r.token == "b-token" && r.errcode == Some(300_001)),
        "ops-b was tried after its deletion"
    );
    let skipped = r#"alertmanager_dingtalk_pool_members_skipped_total{pool="pool:ops",robot="ops-b",reason="refused"}"#;
    assert!(bridge.metric(skipped).await >= 1.0, "{skipped}");
    let up = |robot: &str| {
        format!(r#"alertmanager_dingtalk_pool_member_up{{pool="pool:ops",robot="{robot}"}}"#)
    };
    assert_eq!(bridge.metric(&up("ops-b")).await, 0.0);
    assert_eq!(bridge.metric(&up("ops-a")).await, 1.0);
    let (_, page) = bridge.get("/").await;
    assert!(
        page.contains("ops-b: refused: "),
        "the status page says why: {page}"
    );
    assert!(
        bridge
            .log()
            .contains("Pool member passed over; its messages go through the others.")
    );
}

#[tokio::test]
async fn a_robot_blocked_by_dingtalk_leaves_the_others_carrying_on() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &pool_config(&dingtalk.api_url(), "")).await;
    dingtalk.block_robot("a-token");

    let names = storm(std::slice::from_ref(&bridge), "Blocked", 12).await;

    wait_for_every_name(&dingtalk, &names, WAIT).await;
    bridge.wait_idle().await;
    assert!(dingtalk.delivered("a-token").is_empty());
    let refused = dingtalk
        .requests()
        .iter()
        .filter(|r| r.token == "a-token")
        .count();
    assert_eq!(refused, 1, "ops-a is paused after DingTalk's first 130101");
    assert_eq!(bridge.get("/api/v1/dead-letters").await.1.trim(), "[]");
    let skipped = r#"alertmanager_dingtalk_pool_members_skipped_total{pool="pool:ops",robot="ops-a",reason="paused"}"#;
    assert_eq!(bridge.metric(skipped).await, 1.0);
    for token in ["b-token", "c-token"] {
        assert!(
            dingtalk.max_in_any_window(token, WINDOW) <= LIMIT,
            "{token}"
        );
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_keep_every_robot_of_a_pool_within_its_window() {
    let redis = Redis::start();
    let dingtalk = fake().await;
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: 2\n  timeout: 200ms\n",
        redis.url()
    );
    let config = pool_config(&dingtalk.api_url(), &cluster);
    let replicas = [
        Bridge::start(BINARY, &config).await,
        Bridge::start(BINARY, &config).await,
    ];

    let names = storm(&replicas, "Shared", 30).await;

    wait_for_every_name(&dingtalk, &names, WAIT).await;
    assert_each_robot_within_its_window(&dingtalk);
}

#[tokio::test]
async fn passthrough_fails_over_to_another_robot_of_the_pool() {
    let dingtalk = fake().await;
    let extra = "delivery:\n  mode: passthrough\n";
    let bridge = Bridge::start(BINARY, &pool_config(&dingtalk.api_url(), extra)).await;
    for token in ["a-token", "b-token"] {
        dingtalk.delete_robot(token);
    }

    let (status, answer) = bridge.post_alert("Passed").await;

    assert_eq!((status, answer.trim()), (200, "ok: 1 messages delivered"));
    assert_eq!(dingtalk.delivered("c-token").len(), 1);
    let (status, answer) = bridge.post_alert("PassedAgain").await;
    assert_eq!(status, 200, "{answer}");
    // The refused robots are passed over now: straight to ops-c.
    let refused = dingtalk
        .requests()
        .iter()
        .filter(|r| r.errcode == Some(300_001))
        .count();
    assert_eq!(refused, 2, "{:?}", dingtalk.requests());
}
