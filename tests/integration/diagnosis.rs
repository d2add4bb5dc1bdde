//! `test-robot` and `POST /api/v1/robots/{name}/test` against the fake DingTalk: one test
//! message through the robot's signing, keyword and rate window, and DingTalk's answer
//! explained, for success and for each class of refusal.

use testkit::{Bridge, CommandOutput, FakeDingTalk, FakeRobot, Mode, run_command, temp_dir};

use crate::BINARY;

const SECRET: &str = "SECtest-robot-secret";

fn config(api_url: &str, token: &str, secret: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 1s
robots:
  ops:
    access_token: {token}
    secret: {secret}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

/// Runs `test-robot ROBOT` on `config`, off the runtime that serves the fake DingTalk.
async fn test_robot(config: &str, robot: &str, extra: &[&str]) -> CommandOutput {
    let dir = temp_dir("test-robot");
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let args: Vec<String> = ["test-robot", robot]
        .iter()
        .chain(extra)
        .map(|arg| arg.to_string())
        .collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_command(BINARY, &dir, &args, &[]);
        let _ = std::fs::remove_dir_all(&dir);
        output
    });
    output.await.unwrap()
}

async fn signed_robot() -> FakeDingTalk {
    FakeDingTalk::start(vec![FakeRobot::new("ops-token").secret(SECRET)]).await
}

#[tokio::test]
async fn a_test_message_is_signed_carries_the_keyword_and_exits_0() {
    let dingtalk = signed_robot().await;

    let output = test_robot(
        &config(&dingtalk.api_url(), "ops-token", SECRET),
        "ops",
        &["--text", "hello from the runbook"],
    )
    .await;

    assert!(output.success, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("errcode 0"), "{}", output.stdout);
    assert!(output.stdout.contains("(signed)"), "{}", output.stdout);
    assert!(!output.stdout.contains("ops-token"), "{}", output.stdout);
    let delivered = dingtalk.delivered("ops-token");
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].title().contains("HertzBeat"));
    assert!(delivered[0].text().contains("hello from the runbook"));
}

#[tokio::test]
async fn each_refusal_is_explained_and_exits_1() {
    let dingtalk = signed_robot().await;
    let good = config(&dingtalk.api_url(), "ops-token", SECRET);
    // (case, config, fake's mode, what it means, what to change)
    let cases: Vec<(&str, String, Option<Mode>, &str, &str)> = vec![
        (
            "keyword missing",
            good.clone(),
            Some(Mode::Errcode(310000, "keywords not in content".into())),
            "none of the robot's custom keywords",
            "add HertzBeat as a custom keyword",
        ),
        (
            "wrong secret",
            config(&dingtalk.api_url(), "ops-token", "SECwrong"),
            None,
            "signature does not match",
            "set the robot's `secret`",
        ),
        (
            "clock skew",
            good.clone(),
            Some(Mode::Errcode(310000, "invalid timestamp".into())),
            "more than an hour",
            "clock",
        ),
        (
            "token missing",
            config(&dingtalk.api_url(), "no-such-token", SECRET),
            None,
            "access token is missing or wrong",
            "copy the webhook address again",
        ),
        (
            "rate limited",
            good.clone(),
            Some(Mode::Errcode(130101, "send too fast".into())),
            "blocks it for up to 10 minutes",
            "rate_limit here is 20/60s",
        ),
        (
            "group dissolved",
            good.clone(),
            Some(Mode::Errcode(400013, "group is dissolved".into())),
            "the group was dissolved",
            "a new group",
        ),
        (
            "IP not allowed",
            good.clone(),
            Some(Mode::Errcode(310000, "ip not in whitelist".into())),
            "not in the robot's IP allowlist",
            "add it in the robot's security settings",
        ),
        (
            "unreachable",
            good.clone(),
            Some(Mode::Refuse),
            "did not complete",
            "can reach DingTalk",
        ),
    ];
    for (case, config, mode, meaning, change) in cases {
        dingtalk.set_mode(mode.unwrap_or(Mode::Normal));
        let output = test_robot(&config, "ops", &[]).await;
        let report = &output.stdout;
        assert_eq!(output.code, Some(1), "{case}: {report}{}", output.stderr);
        assert!(report.contains("What it means: "), "{case}: {report}");
        assert!(report.contains(meaning), "{case}: {report}");
        assert!(report.contains(change), "{case}: {report}");
        assert!(
            !report.contains(SECRET) && !report.contains("ops-token"),
            "{case}: {report}"
        );
    }
}

#[tokio::test]
async fn an_unknown_robot_exits_2_naming_the_robots() {
    let dingtalk = signed_robot().await;
    let output = test_robot(
        &config(&dingtalk.api_url(), "ops-token", SECRET),
        "nope",
        &[],
    )
    .await;
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output.stderr.contains("its robots: ops"),
        "{}",
        output.stderr
    );
    assert!(dingtalk.requests().is_empty());
}

#[tokio::test]
async fn the_api_tests_a_robot_of_the_running_bridge() {
    let dingtalk = signed_robot().await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), "ops-token", SECRET)).await;

    let (status, body) = bridge.post("/api/v1/robots/ops/test", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("errcode 0"), "{body}");
    assert_eq!(dingtalk.delivered("ops-token").len(), 1);
    // Through the running bridge's rate window: the send is counted there.
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(queue[0]["sent_in_window"], 1, "{queue}");

    dingtalk.set_mode(Mode::Errcode(310000, "keywords not in content".into()));
    let (status, body) = bridge.post("/api/v1/robots/ops/test", "", None).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("none of the robot's custom keywords"),
        "{body}"
    );

    let (status, _) = bridge.post("/api/v1/robots/nope/test", "", None).await;
    assert_eq!(status, 404);
}
