//! A real Alertmanager → the bridge → the fake DingTalk: firing and resolved alerts,
//! routed per strategy, arrive as the right messages in the right groups.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, Request};

use crate::BINARY;
use crate::alertmanager::{Alertmanager, TestAlert};

const WAIT: Duration = Duration::from_secs(30);

fn messages_with(requests: &[Request], token: &str, needle: &str) -> Vec<Request> {
    requests
        .iter()
        .filter(|r| r.token == token && r.errcode == Some(0) && r.text().contains(needle))
        .cloned()
        .collect()
}

#[tokio::test]
async fn real_alertmanager_alerts_reach_the_routed_robots_firing_then_resolved() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("dba-token"),
        FakeRobot::new("ops-token"),
    ])
    .await;
    let config = format!(
        r#"
dingtalk: {{ api_url: "{}" }}
robots:
  dba: {{ access_token: dba-token }}
  ops: {{ access_token: ops-token }}
strategies:
  - name: database
    matchers: ['team="db"']
    robots: [dba]
  - name: default
    robots: [ops]
"#,
        dingtalk.api_url()
    );
    let bridge = Bridge::start(BINARY, &config).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;

    let db = [
        ("alertname", "PostgresDown"),
        ("team", "db"),
        ("severity", "critical"),
    ];
    let web = [
        ("alertname", "FrontendSlow"),
        ("team", "web"),
        ("severity", "warning"),
    ];
    alertmanager
        .post_alerts(&[
            TestAlert::firing(&db).annotate("summary", "Postgres primary is down"),
            TestAlert::firing(&web).annotate("summary", "p99 above 2s"),
        ])
        .await;
    let requests = dingtalk
        .wait_until("both firing messages", WAIT, |r| {
            !messages_with(r, "dba-token", "FIRING").is_empty()
                && !messages_with(r, "ops-token", "FIRING").is_empty()
        })
        .await;
    let dba = messages_with(&requests, "dba-token", "FIRING");
    assert!(
        dba[0].title().starts_with("[FIRING:1] PostgresDown"),
        "{}",
        dba[0].title()
    );
    assert!(dba[0].text().contains("Postgres primary is down"));
    assert!(
        dba[0].text().contains(&alertmanager.url()),
        "link to Alertmanager"
    );
    let ops = messages_with(&requests, "ops-token", "FIRING");
    assert!(
        ops[0].title().starts_with("[FIRING:1] FrontendSlow"),
        "{}",
        ops[0].title()
    );
    // Only once every robot's worker is idle can nothing more reach ops.
    bridge.wait_idle().await;
    assert!(
        dingtalk
            .requests()
            .iter()
            .all(|r| !(r.token == "ops-token" && r.text().contains("PostgresDown"))),
        "the db alert must not reach ops (first match wins)"
    );

    alertmanager
        .post_alerts(&[TestAlert::resolved(&db), TestAlert::resolved(&web)])
        .await;
    let requests = dingtalk
        .wait_until("both resolved messages", WAIT, |r| {
            !messages_with(r, "dba-token", "RESOLVED").is_empty()
                && !messages_with(r, "ops-token", "RESOLVED").is_empty()
        })
        .await;
    let dba = messages_with(&requests, "dba-token", "RESOLVED");
    assert!(
        dba[0].title().starts_with("[RESOLVED] PostgresDown"),
        "{}",
        dba[0].title()
    );
    assert!(dba[0].text().contains("ended: "), "{}", dba[0].text());
    assert!(
        requests.iter().all(|r| r.errcode == Some(0)),
        "{requests:?}"
    );
}
