//! Never lose an alert: DingTalk outages, `kill -9`, SIGTERM with messages pending, a
//! corrupt queue file, dead letters, and passthrough mode. The bridge runs as a child
//! process with a durable queue in its working directory.

use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, Request, payload};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET, QUIET_WITHIN};

/// One robot, a durable queue under the bridge's directory, and `extra` delivery keys.
pub(crate) fn durable_config(api_url: &str, robot_extra: &str, delivery_extra: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 1s
delivery:
  queue_dir: data/queue
  shutdown_timeout: 2s
{delivery_extra}
robots:
  ops:
    access_token: ops-token
{robot_extra}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

fn delivered_with(requests: &[Request], name: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.errcode == Some(0) && r.text().contains(name))
        .count()
}

#[tokio::test]
async fn an_alert_accepted_during_a_30s_outage_is_delivered_once_after_recovery() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Refuse);
    let bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;

    bridge
        .notify(&payload("firing", &[("DuringOutage", &[])]))
        .await;
    // The outage itself lasts 30 s; the bridge retries with growing backoff meanwhile.
    tokio::time::sleep(Duration::from_secs(30)).await;
    dingtalk.set_mode(Mode::Normal);

    dingtalk
        .wait_until("delivery after the outage", Duration::from_secs(70), |r| {
            delivered_with(r, "DuringOutage") > 0
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "DuringOutage"), 1);
    assert!(
        bridge
            .metric(r#"alertmanager_dingtalk_dingtalk_errors_total{robot="ops",errcode="network"}"#)
            .await
            >= 3.0,
        "retried through the outage"
    );
}

#[tokio::test]
async fn kill_9_after_the_200_loses_nothing() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    // DingTalk unreachable: the message cannot be delivered before the kill.
    dingtalk.set_mode(Mode::Refuse);
    let bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;
    bridge
        .notify(&payload("firing", &[("SurvivesKill", &[])]))
        .await;

    bridge.signal("KILL");
    dingtalk.set_mode(Mode::Normal);
    let bridge = bridge.restart().await;

    dingtalk
        .wait_until("delivery after the restart", Duration::from_secs(20), |r| {
            delivered_with(r, "SurvivesKill") > 0
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "SurvivesKill"), 1);
    assert!(
        bridge
            .log()
            .contains("Resuming delivery of queued messages.")
    );
}

#[tokio::test]
async fn sigterm_with_messages_pending_exits_0_and_keeps_them_for_the_restart() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let config = durable_config(&dingtalk.api_url(), "    rate_limit: 1/min", "");
    let mut bridge = Bridge::start(BINARY, &config).await;
    bridge
        .notify(&payload("firing", &[("SentFirst", &[])]))
        .await;
    dingtalk
        .wait_until("the first send", Duration::from_secs(10), |r| {
            delivered_with(r, "SentFirst") == 1
        })
        .await;
    // The window is full for a minute: this one is still queued at shutdown.
    bridge
        .notify(&payload("firing", &[("StillQueued", &[])]))
        .await;

    bridge.signal("TERM");
    let status = bridge.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    let lines = bridge.log_lines();
    let report = lines
        .iter()
        .find(|l| l["message"] == "Shutdown timeout reached; pending messages were not delivered.")
        .unwrap_or_else(|| panic!("no undelivered report:\n{}", bridge.log()));
    assert_eq!(report["undelivered"], 1);

    let _bridge = bridge.restart().await;
    dingtalk
        .wait_until(
            "the queued message after the restart",
            Duration::from_secs(10),
            |r| delivered_with(r, "StillQueued") > 0,
        )
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "StillQueued"), 1);
    assert_eq!(delivered_with(&requests, "SentFirst"), 1);
}

#[tokio::test]
async fn a_corrupt_queue_file_is_moved_aside_and_alerts_flow() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;
    bridge.signal("KILL");
    let queue_file = bridge.dir().join("data/queue/queue.redb");
    let length = std::fs::metadata(&queue_file).expect("queue file").len();
    std::fs::write(&queue_file, vec![0x5a; length as usize]).expect("corrupt the queue file");

    let mut bridge = bridge.restart().await;
    let line = bridge
        .wait_for_log("the corruption report", Duration::from_secs(5), |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("The queue file could not be read"))
        })
        .await;
    assert!(
        line["moved_to"]
            .as_str()
            .is_some_and(|p| p.contains("queue.redb.corrupt-")),
        "{line}"
    );

    bridge
        .notify(&payload("firing", &[("AfterCorruption", &[])]))
        .await;
    dingtalk
        .wait_until("delivery", Duration::from_secs(10), |r| {
            delivered_with(r, "AfterCorruption") > 0
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "AfterCorruption"), 1);
}

#[tokio::test]
async fn permanent_failures_become_dead_letters_that_can_be_retried() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Errcode(300001, "token is not exist".into()));
    let mut bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;

    bridge.notify(&payload("firing", &[("Refused", &[])])).await;
    bridge
        .wait_for_log("the dead letter", Duration::from_secs(10), |l| {
            l["message"] == "Messages moved to the dead letters."
        })
        .await;
    let (status, body) = bridge.get("/api/v1/dead-letters").await;
    assert_eq!(status, 200, "{body}");
    let dead: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(dead[0]["robot"], "ops");
    assert_eq!(dead[0]["alerts"][0], "Refused");
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("300001"),
        "{body}"
    );
    assert!(
        !body.contains("ops-token"),
        "no credentials in the API: {body}"
    );
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_dead_letters_total{robot="ops",reason="300001"}"#)
            .await,
        1.0
    );
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let queue: Value = serde_json::from_str(&queue).expect("JSON");
    assert!(
        queue[0]["last_error"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("access_token is wrong"),
        "{queue}"
    );

    dingtalk.set_mode(Mode::Normal);
    let (status, body) = bridge.post("/api/v1/dead-letters/retry", "", None).await;
    assert_eq!(status, 200, "{body}");
    dingtalk
        .wait_until(
            "delivery of the revived message",
            Duration::from_secs(10),
            |r| delivered_with(r, "Refused") > 0,
        )
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "Refused"), 1);
    assert_eq!(bridge.get("/api/v1/dead-letters").await.1.trim(), "[]");
}

#[tokio::test]
async fn messages_older_than_max_age_become_dead_letters() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Refuse);
    let config = durable_config(&dingtalk.api_url(), "", "  max_age: 2s");
    let bridge = Bridge::start(BINARY, &config).await;

    bridge.notify(&payload("firing", &[("TooOld", &[])])).await;

    let series = r#"alertmanager_dingtalk_dead_letters_total{robot="ops",reason="expired"}"#;
    bridge.wait_for_metric(series, 1.0).await;
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_queue_depth{robot="ops"}"#)
            .await,
        0.0
    );
}

fn passthrough_config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}", timeout: 1s }}
delivery: {{ mode: passthrough }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

#[tokio::test]
async fn passthrough_answers_with_dingtalks_verdict() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &passthrough_config(&dingtalk.api_url())).await;

    let (status, body) = bridge.post_alert("Delivered").await;
    assert_eq!((status, body.trim()), (200, "ok: 1 messages delivered"));
    assert_eq!(
        dingtalk.delivered("ops-token").len(),
        1,
        "sent before the answer"
    );

    dingtalk.set_mode(Mode::Http500);
    let (status, body) = bridge.post_alert("Retryable").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("HTTP 500") && body.contains("hint:"),
        "{body}"
    );

    dingtalk.set_mode(Mode::Errcode(310000, "keywords not in content".into()));
    let (status, body) = bridge.post_alert("Permanent").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("errcode 310000") && body.contains("add HertzBeat as a custom keyword"),
        "{body}"
    );

    // "Sending too fast" pauses the robot: 503, so Alertmanager retries later...
    dingtalk.set_mode(Mode::Errcode(130101, "send too fast".into()));
    let (status, body) = bridge.post_alert("Paused").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("errcode 130101") && body.contains("rate_limit"),
        "{body}"
    );
    // ...and the next webhook is refused at once: the pause is longer than
    // delivery.passthrough_max_wait.
    let sent = dingtalk.requests().len();
    let (status, body) = bridge.post_alert("DuringThePause").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("rate limit reached; the next slot is in"),
        "{body}"
    );
    assert_eq!(
        dingtalk.requests().len(),
        sent,
        "nothing sent into the pause"
    );
}

#[tokio::test]
async fn in_passthrough_mode_a_real_alertmanager_retries_through_an_outage() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Http500);
    let bridge = Bridge::start(BINARY, &passthrough_config(&dingtalk.api_url())).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;

    alertmanager
        .post_alerts(&[TestAlert::firing(&[("alertname", "RetriedByAlertmanager")])])
        .await;
    dingtalk
        .wait_until("failed attempts", Duration::from_secs(30), |r| r.len() >= 2)
        .await;
    dingtalk.set_mode(Mode::Normal);

    dingtalk
        .wait_until("delivery after the outage", Duration::from_secs(60), |r| {
            delivered_with(r, "RetriedByAlertmanager") > 0
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(delivered_with(&requests, "RetriedByAlertmanager"), 1);
}

/// Without a queue file the backlog lives in memory; `delivery.max_pending` bounds it, and
/// a webhook past it is answered 503 (Alertmanager retries), counted and logged.
#[tokio::test]
async fn a_full_queue_answers_503_and_takes_webhooks_again_once_it_drains() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Refuse);
    let config = format!(
        r#"
dingtalk: {{ api_url: "{}", timeout: 1s }}
delivery: {{ max_pending: 2 }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#,
        dingtalk.api_url()
    );
    let mut bridge = Bridge::start(BINARY, &config).await;
    assert_eq!(notify(&bridge, "First").await.0, 200);
    assert_eq!(notify(&bridge, "Second").await.0, 200);
    let (status, body) = notify(&bridge, "Third").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("queue of robot ops is full (2 messages pending, delivery.max_pending)"),
        "{body}"
    );
    bridge
        .wait_for_metric(
            r#"alertmanager_dingtalk_webhooks_total{source="alertmanager",outcome="queue_full"}"#,
            1.0,
        )
        .await;
    bridge
        .wait_for_log("the refusal", Duration::from_secs(5), |l| {
            l["message"] == "Webhook not accepted." && l["status"] == 503
        })
        .await;

    // Alertmanager's retry is taken once the backlog is delivered.
    dingtalk.set_mode(Mode::Normal);
    bridge.wait_idle().await;
    assert_eq!(notify(&bridge, "Third").await.0, 200);
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in ["First", "Second", "Third"] {
        assert_eq!(delivered_with(&requests, name), 1, "{name}");
    }
}

/// Posts a webhook of one alert named `name`; returns status and answer.
async fn notify(bridge: &Bridge, name: &str) -> (u16, String) {
    let body = payload("firing", &[(name, &[])]);
    bridge.post("/alertmanager", body, None).await
}

/// A tmpfs of its own, unmounted when dropped: a disk that really fills up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            mounted.success(),
            "this test mounts a {size} tmpfs at {} and needs root to do it (.ci/run runs as root)",
            path.display()
        );
        SmallDisk(path)
    }

    /// Fills the disk with one file, leaving it full.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0x5a; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        // Whatever fits of a smaller write, so not even a page is left.
        while filler.write_all(&block[..512]).is_ok() {}
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The queue volume fills up while DingTalk is down: webhooks are answered 503 while the
/// disk refuses writes (never 200 for what could not be stored), the bridge keeps going,
/// and takes webhooks again as soon as there is space, without a restart; everything
/// that got a 200 is delivered, once.
#[tokio::test]
async fn a_full_queue_disk_refuses_webhooks_until_space_is_back() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Refuse);
    let bridge = Bridge::start(BINARY, &durable_config(&dingtalk.api_url(), "", "")).await;
    // The queue directory moves onto a 2 MiB disk: restart on it.
    let queue = bridge.dir().join("data/queue");
    std::fs::remove_dir_all(&queue).unwrap();
    let disk = SmallDisk::mount(queue, "2m");
    let mut bridge = bridge.restart().await;
    // Accepted while there is space, then DingTalk comes back once the disk is full: the
    // deliveries cannot be written down, and must not be sent again for that.
    let mut accepted = Vec::new();
    for i in 0..5 {
        let name = format!("BeforeFull{i}");
        assert_eq!(notify(&bridge, &name).await.0, 200);
        accepted.push(name);
    }
    disk.fill();
    dingtalk.set_mode(Mode::Normal);

    let mut refused = 0;
    for i in 0..50 {
        let name = format!("OnFullDisk{i:02}");
        let (status, body) = notify(&bridge, &name).await;
        match status {
            200 => accepted.push(name),
            503 => {
                assert!(body.contains("queue"), "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(refused > 40, "{refused} of 50 refused on a full disk");
    bridge
        .wait_for_log("the queue file closed", Duration::from_secs(5), |l| {
            l["message"] == "Queue file I/O error; closing it, and opening it again shortly."
        })
        .await;
    assert!(
        bridge
            .metric(r#"alertmanager_dingtalk_webhooks_total{source="alertmanager",outcome="queue_error"}"#)
            .await
            >= 40.0
    );

    dingtalk
        .wait_until(
            "the deliveries made on the full disk",
            Duration::from_secs(30),
            |r| accepted[..5].iter().all(|name| delivered_with(r, name) > 0),
        )
        .await;
    disk.free();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = bridge
            .post(
                "/alertmanager",
                payload("firing", &[("AfterSpace", &[])]),
                None,
            )
            .await;
        if status == 200 {
            accepted.push("AfterSpace".to_owned());
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "never took webhooks again:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(bridge.get("/-/ready").await.0, 200);

    bridge.wait_idle().await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in &accepted {
        assert_eq!(delivered_with(&requests, name), 1, "{name}");
    }
    drop(bridge);
    drop(disk);
}
