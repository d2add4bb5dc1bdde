//! Delivery against the fake DingTalk: rate windows, retries, permanent failures,
//! shutdown, and credentials kept out of logs.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, Request, payload, run_command};

use crate::{BINARY, QUIET, QUIET_WITHIN};

pub(crate) fn one_robot_config(api_url: &str, robot_extra: &str, top_extra: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 1s
robots:
  ops:
    access_token: ops-token
{robot_extra}
strategies:
  - name: default
    robots: [ops]
{top_extra}"#
    )
}

/// `count` notifications, each its own group with one distinctly named alert.
pub(crate) async fn storm(bridge: &Bridge, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("StormAlert{i:03}")).collect();
    for name in &names {
        bridge.notify(&payload("firing", &[(name, &[])])).await;
    }
    names
}

/// Waits until every name has been delivered, then checks each was delivered exactly once.
pub(crate) async fn wait_for_every_name(
    dingtalk: &FakeDingTalk,
    names: &[String],
    timeout: Duration,
) -> Vec<Request> {
    let carrying = |requests: &[Request], name: &str| {
        requests
            .iter()
            .filter(|r| r.errcode == Some(0) && r.text().contains(&format!("{name}\n")))
            .count()
    };
    dingtalk
        .wait_until("every alert name", timeout, |r| {
            names.iter().all(|name| carrying(r, name) > 0)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in names {
        assert_eq!(
            carrying(&requests, name),
            1,
            "{name} delivered more than once"
        );
    }
    requests
}

#[tokio::test]
async fn a_storm_is_merged_into_digests_within_the_window() {
    // DingTalk's 20/min scaled down to 5 per 2 s on both sides; the logic is the same.
    let window = Duration::from_secs(2);
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token").rate(5, window)]).await;
    let config = one_robot_config(&dingtalk.api_url(), "    rate_limit: 5/2s", "");
    let bridge = Bridge::start(BINARY, &config).await;

    let names = storm(&bridge, 30).await;

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(20)).await;
    assert!(
        requests.len() < 30,
        "{} sends: nothing was merged",
        requests.len()
    );
    assert!(
        requests.iter().all(|r| r.errcode == Some(0)),
        "a send was rejected"
    );
    assert!(requests.iter().any(|r| r.title().starts_with("[DIGEST]")));
    assert!(dingtalk.max_in_any_window("ops-token", window) <= 5);
    assert!(
        bridge
            .metric(r#"alertmanager_dingtalk_coalesced_messages_total{robot="ops"}"#)
            .await
            >= 2.0
    );
}

/// A robot whose `rate_limit` would let a backlog out one message at a time still gets
/// digests once more than 100 messages wait: the group reads a few messages, and the
/// queue drains at digest pace.
#[tokio::test]
async fn more_than_100_waiting_are_merged_however_wide_the_window() {
    let window = Duration::from_secs(1);
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token").rate(1000, window)]).await;
    let config = one_robot_config(&dingtalk.api_url(), "    rate_limit: 1000/s", "");
    let bridge = Bridge::start(BINARY, &config).await;

    // The first send hangs, so the rest of the storm waits behind it.
    dingtalk.set_mode(Mode::Hang);
    let names = storm(&bridge, 150).await;
    dingtalk.set_mode(Mode::Normal);

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(20)).await;
    let delivered: Vec<&Request> = requests.iter().filter(|r| r.errcode == Some(0)).collect();
    assert!(
        delivered.len() <= 10,
        "{} messages for 150 groups: the backlog went out one by one",
        delivered.len()
    );
    assert!(delivered.iter().any(|r| r.title().starts_with("[DIGEST]")));
}

#[tokio::test]
async fn a_120_group_storm_arrives_within_90s_without_exceeding_20_per_minute() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &one_robot_config(&dingtalk.api_url(), "", "")).await;

    let names = storm(&bridge, 120).await;

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(90)).await;
    assert!(dingtalk.max_in_any_window("ops-token", Duration::from_secs(60)) <= 20);
    assert!(
        requests.iter().all(|r| r.errcode == Some(0)),
        "DingTalk rejected a send: 130101?"
    );
    assert!(
        requests.len() <= 20,
        "{} sends for 120 groups",
        requests.len()
    );
}

#[tokio::test]
async fn retryable_failures_are_retried_until_delivered_once() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Http500);
    let bridge = Bridge::start(BINARY, &one_robot_config(&dingtalk.api_url(), "", "")).await;

    bridge.notify(&payload("firing", &[("Outage", &[])])).await;
    dingtalk
        .wait_until("two failed attempts", Duration::from_secs(10), |r| {
            r.len() >= 2
        })
        .await;
    dingtalk.set_mode(Mode::Normal);
    dingtalk
        .wait_until("delivery after recovery", Duration::from_secs(20), |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;

    assert_eq!(dingtalk.delivered("ops-token").len(), 1);
    assert!(
        bridge
            .metric(r#"alertmanager_dingtalk_messages_total{robot="ops",outcome="retried"}"#)
            .await
            >= 2.0
    );
    assert!(
        bridge
            .metric(
                r#"alertmanager_dingtalk_dingtalk_errors_total{robot="ops",errcode="http_500"}"#
            )
            .await
            >= 2.0
    );
    assert!(bridge.log().contains("Send failed; will retry."));
}

#[tokio::test]
async fn timeouts_are_retried() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Hang);
    let mut bridge = Bridge::start(BINARY, &one_robot_config(&dingtalk.api_url(), "", "")).await;

    bridge
        .notify(&payload("firing", &[("SlowDingTalk", &[])]))
        .await;
    bridge
        .wait_for_log("a timed-out send", Duration::from_secs(10), |l| {
            l["message"] == "Send failed; will retry."
                && l["error"].as_str().is_some_and(|e| e.contains("timed out"))
        })
        .await;
    dingtalk.set_mode(Mode::Normal);
    dingtalk
        .wait_until("delivery", Duration::from_secs(20), |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    assert!(
        bridge
            .metric(r#"alertmanager_dingtalk_dingtalk_errors_total{robot="ops",errcode="network"}"#)
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_missing_keyword_is_a_permanent_failure_with_a_hint() {
    // The robot's security keyword is HertzBeat; the config promises another one.
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let config = one_robot_config(&dingtalk.api_url(), "    keywords: [Prometheus]", "");
    let mut bridge = Bridge::start(BINARY, &config).await;

    bridge
        .notify(&payload("firing", &[("NoKeyword", &[])]))
        .await;
    let line = bridge
        .wait_for_log("the give-up line", Duration::from_secs(10), |l| {
            l["message"] == "DingTalk refused the message; giving up on it."
        })
        .await;

    assert!(
        line["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("add Prometheus as a custom keyword"),
        "{line}"
    );
    assert!(
        line["error"]
            .as_str()
            .unwrap_or_default()
            .contains("310000"),
        "{line}"
    );
    assert_eq!(
        dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await.len(),
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_messages_total{robot="ops",outcome="failed"}"#)
            .await,
        1.0
    );
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_dingtalk_errors_total{robot="ops",errcode="310000"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_rate_limit_answer_pauses_the_robot() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.set_mode(Mode::Errcode(130101, "send too fast".into()));
    let mut bridge = Bridge::start(BINARY, &one_robot_config(&dingtalk.api_url(), "", "")).await;

    bridge.notify(&payload("firing", &[("Paused", &[])])).await;
    let line = bridge
        .wait_for_log("the pause", Duration::from_secs(10), |l| {
            l["message"] == "DingTalk rate-limited the robot; pausing it."
        })
        .await;
    assert_eq!(line["pause"], "60s", "{line}");
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_robot_paused{robot="ops"}"#)
            .await,
        1.0
    );
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let queue: serde_json::Value = serde_json::from_str(&queue).expect("JSON");
    assert_eq!(queue[0]["depth"], 1, "{queue}");
    assert!(queue[0]["paused_until"].is_string(), "{queue}");
    // Asserting that something does not happen needs a wait: without the pause, the
    // retry backoff (at most 1 s after the first failure) would send again within it.
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(requests.len(), 1, "the robot was not paused");
}

/// Known token and secret strings through every path that prints: start, send failures
/// (refused, and the network) in JSON logs at trace level (which a debug build keeps, its
/// libraries' events included), `render`, `check`, `test-robot`, the status page and its
/// preview, the API, /metrics, and a failed reload's answer and log.
#[tokio::test]
async fn credentials_never_appear_in_any_output_even_at_trace_level() {
    let token = "tok-never-log-me-1234";
    let secret = "SECnever-log-me-5678";
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(token).secret(secret)]).await;
    // The robot is configured with a wrong secret, so the first send fails (310000).
    let config = format!(
        r#"
dingtalk: {{ api_url: "{}", timeout: 1s }}
robots:
  ops:
    webhook: "{}?access_token=${{TOKEN}}"
    secret: "${{SECRET}}x"
strategies:
  - name: default
    robots: [ops]
"#,
        dingtalk.api_url(),
        dingtalk.api_url()
    );
    let env = [("TOKEN", token), ("SECRET", secret)];
    let mut bridge = Bridge::start_logging_at(BINARY, &config, &env, "trace").await;
    bridge.notify(&payload("firing", &[("Leak", &[])])).await;
    bridge
        .wait_for_log("the failure", Duration::from_secs(10), |l| {
            l["message"] == "DingTalk refused the message; giving up on it."
        })
        .await;
    dingtalk.set_mode(Mode::Refuse);
    bridge.notify(&payload("firing", &[("Leak2", &[])])).await;
    bridge
        .wait_for_log("a network failure", Duration::from_secs(10), |l| {
            l["message"] == "Send failed; will retry."
        })
        .await;

    let log = bridge.log();
    assert!(
        log.contains("access_token=***"),
        "the redacted URL is logged: {log}"
    );
    assert!(
        log.contains(r#""level":"TRACE""#),
        "trace events are logged: {log}"
    );
    for credential in [token, secret, "never-log-me"] {
        assert!(!log.contains(credential), "{credential} in the log:\n{log}");
    }

    let payload_file = bridge.dir().join("payload.json");
    std::fs::write(&payload_file, payload("firing", &[("Leak", &[])])).expect("write payload");
    let output = run_command(
        BINARY,
        bridge.dir(),
        &["render", "payload.json"],
        &[("TOKEN", token), ("SECRET", secret)],
    );
    let stdout = &output.stdout;
    assert!(output.success, "{stdout}{}", output.stderr);
    assert!(
        stdout.contains("access_token=***") && stdout.contains("\"msgtype\": \"markdown\""),
        "{stdout}"
    );
    assert!(!stdout.contains("never-log-me"), "{stdout}");

    // Nor on the status page, with its last error, nor in its preview.
    let (status, page) = bridge.get("/").await;
    assert_eq!(status, 200);
    // The network failure, whichever way the refusing fake ended the connection (a pooled
    // one is reset, a new one refused).
    assert!(
        page.contains("access_token=***") && page.contains("request to DingTalk failed"),
        "{page}"
    );
    let (status, preview) = bridge
        .post(
            "/preview",
            "sample=firing&payload=",
            Some("application/x-www-form-urlencoded"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(preview.contains("class=\"bubble\""), "{preview}");
    // Nor in the API, `check`, or a failed reload's answer and log.
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let (_, dead) = bridge.get("/api/v1/dead-letters").await;
    let (_, metrics) = bridge.get("/metrics").await;
    let check = run_command(BINARY, bridge.dir(), &["check"], &env);
    assert!(check.success, "{}", check.stderr);
    // The failure is explained with the address, the credentials are not shown.
    let test_robot = run_command(BINARY, bridge.dir(), &["test-robot", "ops"], &env);
    assert!(!test_robot.success);
    assert!(
        test_robot.stdout.contains("access_token=*** (signed)")
            && test_robot.stdout.contains("Connection refused"),
        "{}",
        test_robot.stdout
    );
    let valid = std::fs::read_to_string(bridge.dir().join("config.yaml")).unwrap();
    std::fs::write(
        bridge.dir().join("config.yaml"),
        format!("{valid}\nrobots: ["),
    )
    .unwrap();
    let (status, reload) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 400, "{reload}");
    let failed_check = run_command(BINARY, bridge.dir(), &["check"], &env);
    assert!(!failed_check.success);
    for shown in [
        page,
        preview,
        queue,
        dead,
        metrics,
        check.stdout,
        test_robot.stdout,
        test_robot.stderr,
        failed_check.stderr,
        reload,
        bridge.log(),
    ] {
        assert!(!shown.contains("never-log-me"), "{shown}");
    }
}

/// A group of 300 alerts renders to about as much as a message may take. DingTalk's limit
/// may count the title with the text (the fake does), so the budget covers both with a
/// margin: the message goes through on the first attempt.
#[tokio::test]
async fn a_group_as_large_as_a_message_may_be_arrives_on_the_first_attempt() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &one_robot_config(&dingtalk.api_url(), "", "")).await;
    let names: Vec<String> = (0..300).map(|i| format!("DiskFull{i:03}")).collect();
    let alerts: Vec<(&str, &[(&str, &str)])> = names
        .iter()
        .map(|n| {
            (
                n.as_str(),
                &[("instance", "a-rather-long-host-name.example.internal:9100")][..],
            )
        })
        .collect();
    bridge.notify(&payload("firing", &alerts)).await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let message = &requests[0];
    assert_eq!(message.errcode, Some(0));
    let size = message.title().len() + message.text().len();
    assert!(
        (15_000..=19_000).contains(&size),
        "title and text: {size} bytes"
    );
    assert!(message.text().contains("more alerts"));
}

/// A DingTalk that takes less than the bridge's budget: each "too long" answer lowers the
/// robot's budget, digests are cut smaller, and every alert of the storm arrives once;
/// nothing becomes a dead letter.
#[tokio::test]
async fn a_digest_dingtalk_finds_too_long_is_sent_again_in_smaller_ones() {
    let window = Duration::from_secs(1);
    let robot = FakeRobot::new("ops-token")
        .rate(1000, window)
        .max_bytes(3000);
    let dingtalk = FakeDingTalk::start(vec![robot]).await;
    let config = one_robot_config(&dingtalk.api_url(), "    rate_limit: 1000/s", "");
    let bridge = Bridge::start(BINARY, &config).await;

    // The first send hangs, so the storm waits behind it and goes out as digests.
    dingtalk.set_mode(Mode::Hang);
    let names = storm(&bridge, 120).await;
    dingtalk.set_mode(Mode::Normal);

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(30)).await;
    assert!(
        requests.iter().any(|r| r.errcode == Some(460101)),
        "the first digests were too long for this DingTalk"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.errcode == Some(0))
            .all(|r| r.title().len() + r.text().len() <= 3000)
    );
    assert_eq!(bridge.get("/api/v1/dead-letters").await.1.trim(), "[]");
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert!(queue[0]["size_budget"].as_u64().unwrap() <= 3000, "{queue}");
    assert!(
        bridge.log().contains(
            "A message was too long for the robot; sending its alerts in shorter messages."
        )
    );
}

#[tokio::test]
async fn an_action_card_robot_gets_buttons_and_its_digests_go_as_markdown() {
    let window = Duration::from_secs(2);
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token").rate(3, window)]).await;
    let config = one_robot_config(
        &dingtalk.api_url(),
        "    msgtype: actionCard\n    rate_limit: 3/2s",
        "",
    );
    let bridge = Bridge::start(BINARY, &config).await;

    bridge
        .notify(&payload(
            "firing",
            &[("CardAlert", &[("instance", "db-1")])],
        ))
        .await;
    let requests = dingtalk
        .wait_until("the card", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    let card = &requests[0];
    assert_eq!(card.errcode, Some(0), "{card:?}");
    assert_eq!(card.body["msgtype"], "actionCard", "{}", card.body);
    let titles: Vec<&str> = card.body["actionCard"]["btns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        ["View in Alertmanager · HertzBeat", "Silence", "Source"]
    );
    assert!(card.text().contains("CardAlert"));

    // A storm merges into digests, which have no single page to open: markdown.
    let names = storm(&bridge, 30).await;
    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(30)).await;
    assert!(
        requests
            .iter()
            .any(|r| r.body["msgtype"] == "markdown" && r.errcode == Some(0)),
        "no digest went as markdown"
    );
}
