//! Duplicate suppression never swallows a change (issue 20): a group that fires, resolves
//! and fires again within `dedup_window` reaches DingTalk each time, from a real
//! Alertmanager and posted directly, while an HA pair's copy of a notification is still
//! sent once.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, Request, payload_since};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET, QUIET_WITHIN};

const WAIT: Duration = Duration::from_secs(30);

fn config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}" }}
delivery: {{ dedup_window: 60s }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

/// The messages delivered about `name`, oldest first: their titles.
fn titles_about(requests: &[Request], name: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.delivered() && r.text().contains(name))
        .map(|r| r.title().to_owned())
        .collect()
}

/// Once nothing more arrives: one message about `name` per state of `shown` (`FIRING`,
/// `RESOLVED`), in that order, and no other.
async fn sent_once_per_state(dingtalk: &FakeDingTalk, name: &str, shown: &[&str]) {
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let titles = titles_about(&requests, name);
    assert_eq!(titles.len(), shown.len(), "{titles:?}");
    for (title, state) in titles.iter().zip(shown) {
        assert!(
            title.contains(state),
            "{title} should say {state}: {titles:?}"
        );
    }
}

#[tokio::test]
async fn a_flapping_group_is_sent_each_time_and_an_ha_copy_once() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url())).await;
    let steps = [
        ("firing", "2026-12-06T08:00:00Z", "FIRING"),
        ("resolved", "2026-12-06T08:00:00Z", "RESOLVED"),
        ("firing", "2026-12-06T08:00:30Z", "FIRING"),
    ];
    for (count, (status, starts_at, shown)) in steps.iter().enumerate() {
        let body = payload_since(status, "Flapping", starts_at);
        let (code, answer) = bridge.post("/alertmanager", body.clone(), None).await;
        assert_eq!(
            (code, answer.trim()),
            (200, "ok: 1 alerts, 1 messages queued")
        );
        // The HA pair's other member sends the same notification.
        let (code, answer) = bridge.post("/alertmanager", body, None).await;
        assert_eq!(
            (code, answer.trim()),
            (200, "ok: 1 alerts, 0 messages queued")
        );
        dingtalk
            .wait_until(&format!("message {} ({shown})", count + 1), WAIT, |r| {
                titles_about(r, "Flapping").len() == count + 1
            })
            .await;
    }
    let shown: Vec<&str> = steps.iter().map(|(_, _, shown)| *shown).collect();
    sent_once_per_state(&dingtalk, "Flapping", &shown).await;
}

#[tokio::test]
async fn a_real_alertmanager_group_that_fires_resolves_and_fires_again_arrives_three_times() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url())).await;
    // group_wait and group_interval 1 s, send_resolved: all within the 60 s window.
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let labels = [("alertname", "FlappingDisk"), ("severity", "warning")];
    let steps = [
        (TestAlert::firing(&labels), "FIRING"),
        (TestAlert::resolved(&labels), "RESOLVED"),
        (TestAlert::firing(&labels), "FIRING"),
    ];
    for (count, (alert, shown)) in steps.iter().enumerate() {
        alertmanager.post_alerts(std::slice::from_ref(alert)).await;
        dingtalk
            .wait_until(&format!("message {} ({shown})", count + 1), WAIT, |r| {
                titles_about(r, "FlappingDisk").len() == count + 1
            })
            .await;
    }
    let shown: Vec<&str> = steps.iter().map(|(_, shown)| *shown).collect();
    sent_once_per_state(&dingtalk, "FlappingDisk", &shown).await;
}
