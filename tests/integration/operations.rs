//! What an operator does with a running bridge: reload its config, scrape its metrics,
//! check a config before deploying it.

use std::process::Command;
use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, payload, run_command, temp_dir};

use crate::BINARY;

fn config(api_url: &str, robot: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}" }}
robots:
  {robot}: {{ access_token: {robot}-token }}
strategies:
  - name: default
    robots: [{robot}]
"#
    )
}

#[tokio::test]
async fn reload_applies_a_valid_config_and_keeps_the_old_one_on_errors() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("first-token"),
        FakeRobot::new("second-token"),
        FakeRobot::new("third-token"),
    ])
    .await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), "first")).await;
    let config_file = bridge.dir().join("config.yaml");

    // A broken config: reload answers 400 with the errors, the old config keeps working.
    std::fs::write(
        &config_file,
        "robots:\n  second: { acess_token: x }\nstrategies: []\n",
    )
    .unwrap();
    let (status, body) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("config.yaml:2:13: unknown key `acess_token`"),
        "{body}"
    );
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_config_last_reload_successful")
            .await,
        0.0
    );
    bridge
        .notify(&payload("firing", &[("StillRouted", &[])]))
        .await;
    dingtalk
        .wait_until(
            "delivery with the old config",
            Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|r| r.token == "first-token" && r.errcode == Some(0))
            },
        )
        .await;

    // A valid config over HTTP.
    std::fs::write(&config_file, config(&dingtalk.api_url(), "second")).unwrap();
    let (status, body) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_config_last_reload_successful")
            .await,
        1.0
    );
    bridge
        .notify(&payload("firing", &[("NewRoute", &[])]))
        .await;
    dingtalk
        .wait_until(
            "delivery with the new config",
            Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|r| r.token == "second-token" && r.errcode == Some(0))
            },
        )
        .await;

    // And by SIGHUP, to a robot only the file on disk has: nothing but that reload can
    // make the bridge know it.
    std::fs::write(&config_file, config(&dingtalk.api_url(), "third")).unwrap();
    bridge.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, queue) = bridge.get("/api/v1/queue").await;
        let robots: serde_json::Value = serde_json::from_str(&queue).unwrap();
        if robots
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["robot"] == "third")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no SIGHUP reload:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The swap comes before its log line: wait for the second one.
    let reloads = |bridge: &Bridge| {
        bridge
            .log_lines()
            .iter()
            .filter(|l| l["message"] == "Configuration reloaded.")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reloads(&bridge) < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", bridge.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reloads(&bridge), 2, "one over HTTP, one by SIGHUP");
    bridge
        .notify(&payload("firing", &[("AfterSighup", &[])]))
        .await;
    dingtalk
        .wait_until(
            "delivery to the robot of the SIGHUP config",
            Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|r| r.token == "third-token" && r.errcode == Some(0))
            },
        )
        .await;
    assert_eq!(bridge.get("/-/healthy").await.0, 200);
}

/// `listen`, `delivery.mode` and `delivery.queue_dir` change only on restart: a reload
/// that changes them applies the rest, keeps their running values, and says so.
#[tokio::test]
async fn a_reload_keeps_restart_only_settings_and_says_so() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("first-token")]).await;
    let mut bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), "first")).await;
    let changed = format!(
        "listen: 127.0.0.1:1\ndelivery: {{ mode: passthrough, queue_dir: elsewhere }}\n{}",
        config(&dingtalk.api_url(), "first")
    );
    std::fs::write(bridge.dir().join("config.yaml"), changed).unwrap();
    let (status, body) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(
            "reloaded: config.yaml: 1 robots (0 signed), 1 strategies, queue in memory,"
        ),
        "the running values: {body}"
    );
    for kept in [
        // --listen is what stays in force, not the file's value at start.
        "not applied until a restart: listen: 127.0.0.1:0 stays in force until a restart (the file now says 127.0.0.1:1)",
        "not applied until a restart: delivery.mode: queued stays in force until a restart (the file now says passthrough)",
        "not applied until a restart: delivery.queue_dir: none (in memory) stays in force",
    ] {
        assert!(body.contains(kept), "{kept:?} missing from:\n{body}");
    }
    bridge
        .wait_for_log("the warning", Duration::from_secs(5), |l| {
            l["message"] == "A restart-only setting changed; it applies after a restart."
                && l["kept"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("delivery.mode"))
        })
        .await;
    // Still queued: the answer comes before DingTalk's.
    let (status, body) = bridge
        .post(
            "/alertmanager",
            payload("firing", &[("StillQueued", &[])]),
            None,
        )
        .await;
    assert_eq!(
        (status, body.trim()),
        (200, "ok: 1 alerts, 1 messages queued")
    );
    assert!(
        !bridge.dir().join("elsewhere").exists(),
        "no queue opened there"
    );
}

/// Reading the queue API and the metrics takes no lock a send holds: both answer while a
/// request to DingTalk hangs.
#[tokio::test]
async fn the_queue_api_and_metrics_answer_while_dingtalk_hangs() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("first-token")]).await;
    dingtalk.set_mode(Mode::Hang);
    let slow = config(&dingtalk.api_url(), "first").replace("api_url:", "timeout: 60s, api_url:");
    let bridge = Bridge::start(BINARY, &slow).await;
    bridge.notify(&payload("firing", &[("Hanging", &[])])).await;
    dingtalk
        .wait_until("the hanging send", Duration::from_secs(10), |r| {
            r.len() == 1
        })
        .await;
    for path in ["/api/v1/queue", "/metrics", "/api/v1/dead-letters"] {
        let answered = tokio::time::timeout(Duration::from_millis(200), bridge.get(path)).await;
        let (status, body) = answered.unwrap_or_else(|_| panic!("{path} waited for DingTalk"));
        assert_eq!(status, 200, "{path}: {body}");
        if path == "/api/v1/queue" {
            let robots: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(robots[0]["depth"], 1, "{body}");
            assert_eq!(robots[0]["sent_in_window"], 1, "{body}");
        }
    }
    assert_eq!(
        dingtalk.requests()[0].http_status,
        0,
        "the send still hangs"
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_name_every_series() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("first-token")]).await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), "first")).await;
    bridge.notify(&payload("firing", &[("Scraped", &[])])).await;
    dingtalk
        .wait_until("delivery", Duration::from_secs(10), |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;

    bridge
        .wait_for_metric(
            r#"alertmanager_dingtalk_messages_total{robot="first",outcome="sent"}"#,
            1.0,
        )
        .await;
    let (status, text) = bridge.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "alertmanager_dingtalk_webhooks_total{source=\"alertmanager\",outcome=\"accepted\"} 1",
        "alertmanager_dingtalk_alerts_received_total{status=\"firing\"} 1",
        "alertmanager_dingtalk_alerts_routed_total{strategy=\"default\"} 1",
        "alertmanager_dingtalk_alerts_unrouted_total 0",
        "alertmanager_dingtalk_messages_total{robot=\"first\",outcome=\"sent\"} 1",
        // Present at zero from the start, so that rate() in alert rules sees the first one.
        "alertmanager_dingtalk_messages_total{robot=\"first\",outcome=\"retried\"} 0",
        "alertmanager_dingtalk_messages_total{robot=\"first\",outcome=\"failed\"} 0",
        "alertmanager_dingtalk_robot_paused{robot=\"first\"} 0",
        "alertmanager_dingtalk_send_duration_seconds_count{robot=\"first\"} 1",
        "alertmanager_dingtalk_queue_depth{robot=\"first\"} 0",
        "alertmanager_dingtalk_config_last_reload_successful 1",
        "alertmanager_dingtalk_config_last_reload_success_timestamp_seconds ",
        "alertmanager_dingtalk_build_info{version=\"",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }

    let checked = promtool_check_metrics(&text);
    assert!(
        checked.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

fn promtool_check_metrics(text: &str) -> std::process::Output {
    use std::io::Write;
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_owned());
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{promtool} is not runnable ({e}): run `apt-get install prometheus` (or .ci/run)"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    child.wait_with_output().expect("promtool output")
}

#[test]
fn check_reports_every_error_with_its_line() {
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("bad.yaml"),
        r#"robots:
  ops:
    acces_token: abc
  dba:
    access_token: def
strategies:
  - name: database
    matchers: ['team=~"db|(storage"']
    robots: [dba, dbx]
"#,
    )
    .unwrap();
    let output = run_command(BINARY, &dir, &["check", "--config", "bad.yaml"], &[]);
    assert!(!output.success);
    for expected in [
        "bad.yaml:3:5: unknown key `acces_token` in robots.ops",
        "bad.yaml:8:16: matcher \"team=~\\\"db|(storage\\\"\" has an invalid regex",
        "bad.yaml:9:19: strategy `database` names robot `dbx`, which is not defined",
    ] {
        assert!(
            output.stderr.contains(expected),
            "{expected:?} missing from:\n{}",
            output.stderr
        );
    }

    let root_config = concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml");
    let output = run_command(
        BINARY,
        &dir,
        &["check", "--config", root_config],
        &[("DINGTALK_ACCESS_TOKEN", "0123456789abcdef")],
    );
    assert!(output.success, "{}", output.stderr);
    assert!(
        output.stdout.starts_with("OK: ") && output.stdout.contains("1 robots"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains(
            "restart-only (a reload keeps the running values): listen 0.0.0.0:8060, \
             delivery.mode queued, delivery.queue_dir "
        ),
        "{}",
        output.stdout
    );
    let _ = std::fs::remove_dir_all(dir);
}
