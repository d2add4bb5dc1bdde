//! Robots of internal applications, through the binary against the fake DingTalk's
//! OpenAPI: delivery with one shared access token, its refresh on expiry and on
//! rejection, each class of refusal, `test-robot` and `render`, no credential in any
//! output, replicas sharing its rate window through a real Redis, and a real
//! Alertmanager delivering to such a robot.

use std::time::Duration;

use testkit::{
    Bridge, CommandOutput, FakeApp, FakeDingTalk, Mode, Redis, Request, payload, run_command,
    temp_dir,
};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET, QUIET_WITHIN};

const KEY: &str = "dingappkey";
const SECRET: &str = "app-secret-never-log-me";
const GROUPS: [&str; 3] = ["cidAlpha==", "cidBeta==", "cidGamma=="];
const WAIT: Duration = Duration::from_secs(20);

/// A fake DingTalk serving the application [`KEY`], whose robot [`KEY`] is in `GROUPS`.
async fn dingtalk(app: impl FnOnce(FakeApp) -> FakeApp) -> FakeDingTalk {
    let dingtalk = FakeDingTalk::start(Vec::new()).await;
    dingtalk.add_app(app(FakeApp::new(KEY, SECRET).robot(KEY, &GROUPS)));
    dingtalk
}

/// A config with one robot of the application per group, all sent every alert; the
/// secret comes from `$APP_SECRET`.
fn config(openapi_url: &str) -> String {
    let robots: String = ["alpha", "beta", "gamma"]
        .iter()
        .zip(GROUPS)
        .map(|(name, group)| {
            format!(
                "  {name}:\n    app_key: {KEY}\n    app_secret: \"${{APP_SECRET}}\"\n    \
                 open_conversation_id: \"{group}\"\n"
            )
        })
        .collect();
    format!(
        "dingtalk:\n  openapi_url: \"{openapi_url}\"\n  timeout: 2s\nrobots:\n{robots}\
         strategies:\n  - name: all\n    robots: [alpha, beta, gamma]\n"
    )
}

const ENV: [(&str, &str); 1] = [("APP_SECRET", SECRET)];

fn token_requests(requests: &[Request]) -> usize {
    requests.iter().filter(|r| r.is_token_request()).count()
}

/// The group messages DingTalk refused because of their token.
fn rejected_tokens(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| !r.is_token_request() && r.http_status == 400)
        .count()
}

fn delivered_to_each_group(dingtalk: &FakeDingTalk, count: usize) -> bool {
    GROUPS
        .iter()
        .all(|group| dingtalk.delivered_to_group(group).len() == count)
}

#[tokio::test]
async fn robots_of_one_application_share_one_token_and_a_rejected_token_is_replaced_once() {
    let dingtalk = dingtalk(|app| app).await;
    let bridge = Bridge::start_with_env(BINARY, &config(&dingtalk.openapi_url()), &ENV).await;

    bridge
        .notify(&payload("firing", &[("DiskFull", &[])]))
        .await;
    dingtalk
        .wait_until("a message in each group", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 1)
        })
        .await;
    let first = dingtalk.delivered_to_group(GROUPS[0]).remove(0);
    assert_eq!(first.body["robotCode"], KEY);
    assert_eq!(first.body["msgKey"], "sampleMarkdown");
    assert!(first.title().contains("DiskFull"), "{}", first.title());
    assert!(first.text().contains("HertzBeat"), "{}", first.text());
    assert_eq!(
        token_requests(&dingtalk.requests()),
        1,
        "three robots, one token"
    );

    // DingTalk revokes the token: each robot's next send is refused once, one new token
    // is fetched for all of them, and every message is sent again with it.
    dingtalk.revoke_tokens();
    bridge
        .notify(&payload("firing", &[("DiskFuller", &[])]))
        .await;
    dingtalk
        .wait_until("a second message in each group", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 2)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert!(
        delivered_to_each_group(&dingtalk, 2),
        "exactly one more each"
    );
    assert_eq!(
        token_requests(&requests),
        2,
        "one refresh for the three robots"
    );
    assert!((1..=3).contains(&rejected_tokens(&requests)));
    let second = dingtalk.delivered_to_group(GROUPS[1]).remove(1);
    assert_ne!(second.token, first.token);
    bridge
        .wait_for_metric(
            "alertmanager_dingtalk_messages_total{robot=\"beta\",outcome=\"sent\"}",
            2.0,
        )
        .await;
}

#[tokio::test]
async fn an_expired_token_is_never_sent() {
    let life = Duration::from_secs(2);
    let dingtalk = dingtalk(|app| app.expire_in(life)).await;
    let bridge = Bridge::start_with_env(BINARY, &config(&dingtalk.openapi_url()), &ENV).await;

    bridge.notify(&payload("firing", &[("First", &[])])).await;
    let requests = dingtalk
        .wait_until("the first messages", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 1)
        })
        .await;
    let issued = requests.iter().find(|r| r.is_token_request()).unwrap().at;
    // The only way to see a token expire is to let its two seconds pass.
    tokio::time::sleep_until((issued + life).into()).await;

    bridge.notify(&payload("firing", &[("Second", &[])])).await;
    dingtalk
        .wait_until("the second messages", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 2)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(
        rejected_tokens(&requests),
        0,
        "a new token before the old one expired"
    );
    assert_eq!(token_requests(&requests), 2);
}

#[tokio::test]
async fn throttling_pauses_the_robot_5xx_is_retried_and_a_wrong_group_is_dead_lettered() {
    let dingtalk = dingtalk(|app| app).await;
    let bridge = Bridge::start_with_env(BINARY, &config(&dingtalk.openapi_url()), &ENV).await;

    dingtalk.set_mode(Mode::OpenApiError(503, "ServiceUnavailable".into()));
    bridge.notify(&payload("firing", &[("Busy", &[])])).await;
    dingtalk
        .wait_until("a refused send of each robot", WAIT, |r| {
            r.iter().filter(|r| r.http_status == 503).count() >= 3
        })
        .await;
    dingtalk.set_mode(Mode::Normal);
    dingtalk
        .wait_until("the messages after the outage", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 1)
        })
        .await;
    let mut refused = 0.0;
    for robot in ["alpha", "beta", "gamma"] {
        let series = format!(
            "alertmanager_dingtalk_dingtalk_errors_total{{robot=\"{robot}\",errcode=\"ServiceUnavailable\"}}"
        );
        refused += bridge.metric(&series).await;
    }
    assert!(refused >= 3.0, "{refused} refusals counted");

    dingtalk.set_mode(Mode::OpenApiError(
        403,
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi".into(),
    ));
    bridge
        .notify(&payload("firing", &[("Throttled", &[])]))
        .await;
    for robot in ["alpha", "beta", "gamma"] {
        bridge
            .wait_for_metric(
                &format!("alertmanager_dingtalk_robot_paused{{robot=\"{robot}\"}}"),
                1.0,
            )
            .await;
    }
    let (_, queue) = bridge.get("/api/v1/queue").await;
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    for robot in queue.as_array().unwrap() {
        assert_eq!(robot["depth"], 1, "kept for after the pause: {robot}");
        assert!(
            robot["last_error"]["hint"]
                .as_str()
                .unwrap()
                .contains("pauses"),
            "{robot}"
        );
    }
    assert_eq!(bridge.get("/api/v1/dead-letters").await.1.trim(), "[]");
}

#[tokio::test]
async fn a_robot_not_in_its_group_is_dead_lettered_with_a_hint() {
    let dingtalk = dingtalk(|app| app).await;
    let config = config(&dingtalk.openapi_url()).replace(GROUPS[2], "cidElsewhere==");
    let bridge = Bridge::start_with_env(BINARY, &config, &ENV).await;

    bridge.notify(&payload("firing", &[("Lost", &[])])).await;
    bridge.wait_idle().await;
    assert_eq!(dingtalk.delivered_to_group(GROUPS[0]).len(), 1);
    let (_, dead) = bridge.get("/api/v1/dead-letters").await;
    let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["robot"], "gamma");
    let reason = dead[0].to_string();
    assert!(reason.contains("invalid.openConversationId"), "{reason}");
    assert!(reason.contains("add the robot to the group"), "{reason}");
}

#[tokio::test]
async fn replicas_share_the_rate_window_of_a_robot_of_an_application() {
    let redis = Redis::start();
    let dingtalk = dingtalk(|app| app).await;
    let config = format!(
        "dingtalk:\n  openapi_url: \"{}\"\nrobots:\n  oncall:\n    app_key: {KEY}\n    \
         app_secret: \"${{APP_SECRET}}\"\n    open_conversation_id: \"{}\"\n    rate_limit: 3/min\n\
         strategies:\n  - name: all\n    robots: [oncall]\n\
         cluster:\n  redis_url: \"{}\"\n  replicas: 2\n  timeout: 200ms\n",
        dingtalk.openapi_url(),
        GROUPS[0],
        redis.url()
    );
    let bridges = [
        Bridge::start_with_env(BINARY, &config, &ENV).await,
        Bridge::start_with_env(BINARY, &config, &ENV).await,
    ];
    for i in 0..6 {
        let name = format!("Shared{i}");
        bridges[i % 2]
            .notify(&payload("firing", &[(&name, &[])]))
            .await;
    }
    // Alone, each replica would send two at once (the window's last slot is paced): four.
    dingtalk
        .wait_until("the window's first messages", WAIT, |_| {
            dingtalk.delivered_to_group(GROUPS[0]).len() >= 2
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let sent = dingtalk.delivered_to_group(GROUPS[0]).len();
    assert!(sent <= 3, "{sent} messages within the shared 3/min");
}

#[tokio::test]
async fn in_passthrough_the_webhook_is_answered_with_the_openapis_verdict() {
    let dingtalk = dingtalk(|app| app).await;
    let config = config(&dingtalk.openapi_url())
        .replace(
            "strategies:",
            "delivery: { mode: passthrough }\nstrategies:",
        )
        .replace("robots: [alpha, beta, gamma]", "robots: [alpha]");
    let bridge = Bridge::start_with_env(BINARY, &config, &ENV).await;

    let (status, body) = bridge.post_alert("Delivered").await;
    assert_eq!((status, body.trim()), (200, "ok: 1 messages delivered"));
    assert_eq!(
        dingtalk.delivered_to_group(GROUPS[0]).len(),
        1,
        "sent before the answer"
    );

    dingtalk.set_mode(Mode::OpenApiError(502, "BadGateway".into()));
    let (status, body) = bridge.post_alert("Retryable").await;
    assert_eq!(status, 502, "{body}");
    dingtalk.set_mode(Mode::OpenApiError(400, "bot.stopped".into()));
    let (status, body) = bridge.post_alert("Permanent").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("bot.stopped") && body.contains("enable it"),
        "{body}"
    );
}

/// Runs a subcommand in `dir` with the application's secret in the environment.
async fn run(dir: std::path::PathBuf, args: &[&str]) -> CommandOutput {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_command(BINARY, &dir, &args, &ENV)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn test_robot_explains_each_refusal_of_the_openapi() {
    let dingtalk = dingtalk(|app| app).await;
    let dir = temp_dir("app-test-robot");
    let good = config(&dingtalk.openapi_url());
    let write = |config: &str| std::fs::write(dir.join("config.yaml"), config).unwrap();

    write(&good);
    let output = run(
        dir.clone(),
        &["test-robot", "alpha", "--text", "from the runbook"],
    )
    .await;
    assert!(output.success, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains(&format!(
            "/v1.0/robot/groupMessages/send (application {KEY}, robot {KEY}, group {})",
            GROUPS[0]
        )),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("processQueryKey"),
        "{}",
        output.stdout
    );
    assert!(
        dingtalk.delivered_to_group(GROUPS[0])[0]
            .text()
            .contains("from the runbook")
    );

    // (case, config, fake's mode, what to change)
    let cases: Vec<(&str, String, Mode, &str)> = vec![
        (
            "wrong secret",
            good.replace("${APP_SECRET}", "wrong"),
            Mode::Normal,
            "AppSecret",
        ),
        (
            "not in the group",
            good.replace(GROUPS[0], "cidNope=="),
            Mode::Normal,
            "add the robot to the group",
        ),
        (
            "unknown robot",
            good.replacen(
                "    open_conversation_id",
                "    robot_code: ghost\n    open_conversation_id",
                1,
            ),
            Mode::Normal,
            "robot_code",
        ),
        (
            "throttled",
            good.clone(),
            Mode::OpenApiError(403, "Forbidden.AccessDenied.QpsLimitForApi".into()),
            "pauses",
        ),
        (
            "DingTalk down",
            good.clone(),
            Mode::OpenApiError(500, "InternalError".into()),
            "retried",
        ),
        (
            "not the OpenAPI",
            good.replace(
                &dingtalk.openapi_url(),
                &format!("{}/elsewhere", dingtalk.openapi_url()),
            ),
            Mode::Normal,
            "dingtalk.openapi_url",
        ),
    ];
    for (case, config, mode, change) in cases {
        dingtalk.set_mode(mode);
        write(&config);
        let output = run(dir.clone(), &["test-robot", "alpha"]).await;
        let report = &output.stdout;
        assert_eq!(output.code, Some(1), "{case}: {report}{}", output.stderr);
        assert!(report.contains(change), "{case}: {report}");
        assert!(
            !report.contains(SECRET) && !report.contains("fake-access-token"),
            "{case}: {report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn no_output_shows_the_app_secret_or_an_access_token() {
    let dingtalk = dingtalk(|app| app).await;
    let config = config(&dingtalk.openapi_url());
    let bridge = Bridge::start_logging_at(BINARY, &config, &ENV, "trace").await;
    bridge.notify(&payload("firing", &[("Leak", &[])])).await;
    dingtalk
        .wait_until("the messages", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 1)
        })
        .await;
    dingtalk.revoke_tokens();
    bridge.notify(&payload("firing", &[("Leak2", &[])])).await;
    dingtalk
        .wait_until("the messages after the refresh", WAIT, |_| {
            delivered_to_each_group(&dingtalk, 2)
        })
        .await;
    let tokens: Vec<String> = dingtalk
        .requests()
        .iter()
        .filter(|r| !r.is_token_request())
        .map(|r| r.token.clone())
        .collect();
    assert!(tokens.len() >= 6);

    std::fs::write(
        bridge.dir().join("payload.json"),
        payload("firing", &[("Leak", &[])]),
    )
    .unwrap();
    let render = run(bridge.dir().to_owned(), &["render", "payload.json"]).await;
    assert!(render.success, "{}", render.stderr);
    assert!(
        render.stdout.contains(&format!(
            "POST {}/v1.0/robot/groupMessages/send (application {KEY}, robot {KEY}, group {}, with its access token)",
            dingtalk.openapi_url(),
            GROUPS[0]
        )),
        "{}",
        render.stdout
    );
    assert!(
        render.stdout.contains("\"msgKey\": \"sampleMarkdown\""),
        "{}",
        render.stdout
    );
    let check = run(bridge.dir().to_owned(), &["check"]).await;
    assert!(
        check.success && check.stdout.contains("3 of applications"),
        "{}",
        check.stdout
    );
    let test_robot = run(bridge.dir().to_owned(), &["test-robot", "beta"]).await;
    assert!(test_robot.success, "{}", test_robot.stdout);

    let (_, page) = bridge.get("/").await;
    assert!(page.contains(&format!("application {KEY}")), "{page}");
    let (_, preview) = bridge
        .post(
            "/preview",
            "sample=firing&payload=",
            Some("application/x-www-form-urlencoded"),
        )
        .await;
    let log = bridge.log();
    assert!(
        log.contains("DingTalk rejected the access token; fetching another."),
        "{log}"
    );
    let shown = [
        ("log", log),
        ("render", render.stdout + &render.stderr),
        ("check", check.stdout + &check.stderr),
        ("test-robot", test_robot.stdout + &test_robot.stderr),
        ("status page", page),
        ("preview", preview),
        ("queue", bridge.get("/api/v1/queue").await.1),
        ("dead letters", bridge.get("/api/v1/dead-letters").await.1),
        ("metrics", bridge.get("/metrics").await.1),
    ];
    for (what, text) in &shown {
        assert!(
            !text.contains(SECRET),
            "the app secret in the {what}:\n{text}"
        );
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "{token} in the {what}:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn real_alertmanager_alerts_reach_a_robot_of_an_application() {
    let dingtalk = dingtalk(|app| app).await;
    let secrets = temp_dir("app-secret");
    let secret_file = secrets.join("app-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let config = format!(
        "dingtalk:\n  openapi_url: \"{}\"\nrobots:\n  oncall:\n    app_key: {KEY}\n    \
         app_secret_file: \"{}\"\n    open_conversation_id: \"{}\"\n    msgtype: actionCard\n\
         strategies:\n  - name: all\n    robots: [oncall]\n",
        dingtalk.openapi_url(),
        secret_file.display(),
        GROUPS[0]
    );
    let bridge = Bridge::start(BINARY, &config).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;

    let labels = [("alertname", "QueueStuck"), ("severity", "critical")];
    alertmanager
        .post_alerts(&[TestAlert::firing(&labels).annotate("summary", "orders are not moving")])
        .await;
    let firing = dingtalk
        .wait_until("the firing message", WAIT, |_| {
            !dingtalk.delivered_to_group(GROUPS[0]).is_empty()
        })
        .await;
    let card = firing.iter().find(|r| r.delivered()).unwrap();
    let param = card.msg_param.as_ref().unwrap();
    assert!(
        card.title().starts_with("[FIRING:1] QueueStuck"),
        "{}",
        card.title()
    );
    assert!(
        card.text().contains("orders are not moving"),
        "{}",
        card.text()
    );
    // View in Alertmanager and Silence: alerts posted to Alertmanager have no source.
    assert_eq!(
        card.body["msgKey"], "sampleActionCard2",
        "two buttons: {param}"
    );
    assert!(
        param["actionURL1"]
            .as_str()
            .unwrap()
            .starts_with(&alertmanager.url()),
        "{param}"
    );
    assert!(
        param["actionTitle2"].as_str().unwrap().contains("Silence"),
        "{param}"
    );

    alertmanager
        .post_alerts(&[TestAlert::resolved(&labels)])
        .await;
    dingtalk
        .wait_until("the resolved message", WAIT, |_| {
            dingtalk
                .delivered_to_group(GROUPS[0])
                .iter()
                .any(|r| r.title().contains("RESOLVED"))
        })
        .await;
    assert_eq!(token_requests(&dingtalk.requests()), 1);
    let _ = std::fs::remove_dir_all(&secrets);
}
