//! The bridge end to end against the fake DingTalk: what arrives in the group for a
//! webhook, and how bad requests are answered.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, payload};

use crate::{BINARY, QUIET, QUIET_WITHIN};

const SECRET: &str = "SECb90923e19e58b466481e9e7b7a5b4f108a4531abde590ad3967fb29f0eae5c68";
const FIXTURE: &str = include_str!("../data/firing_db_and_web.json");
const WAIT: Duration = Duration::from_secs(15);

/// Two robots: `ops` takes everything, `dba` (signed, mentions a mobile) the db team's
/// alerts, which also go on to `ops`.
fn two_robot_config(api_url: &str, extra: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 2s
robots:
  ops:
    access_token: ops-token
  dba:
    webhook: "{api_url}?access_token=dba-token"
    secret: "{SECRET}"
    mention: {{ mobiles: ["13800000000"] }}
strategies:
  - name: database
    matchers: ['team=~"db|storage"', 'severity!="info"']
    robots: [dba]
    continue: true
  - name: default
    robots: [ops]
{extra}"#
    )
}

async fn fake() -> FakeDingTalk {
    FakeDingTalk::start(vec![
        FakeRobot::new("ops-token"),
        FakeRobot::new("dba-token").secret(SECRET),
    ])
    .await
}

#[tokio::test]
async fn routes_each_alert_to_its_strategies_robots() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &two_robot_config(&dingtalk.api_url(), "")).await;

    bridge.notify(FIXTURE).await;

    dingtalk
        .wait_until("one message per robot", WAIT, |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() == 2
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let dba = dingtalk.delivered("dba-token");
    let ops = dingtalk.delivered("ops-token");
    assert_eq!((dba.len(), ops.len()), (1, 1), "{:?}", dingtalk.requests());

    // The signed robot got only the db alert, mentioning its mobile.
    let text = dba[0].text();
    assert!(
        dba[0].title().starts_with("[FIRING:1] MySQLReplicationLag"),
        "{}",
        dba[0].title()
    );
    assert!(
        text.contains("MySQL replication lag above 5 minutes"),
        "{text}"
    );
    assert!(
        text.contains("Replica db-1 is 312 seconds behind"),
        "{text}"
    );
    assert!(text.contains("db-1.prod:9104"), "{text}");
    assert!(
        text.contains("2024-05-01 08:00:00 CST"),
        "start time in Asia/Shanghai: {text}"
    );
    assert!(text.contains("http://prometheus.prod:9090/graph?g0.expr=mysql_slave_lag_seconds"));
    assert!(text.contains("http://alertmanager.prod:9093"), "{text}");
    assert!(
        !text.contains("HTTPErrorRate"),
        "web alert leaked to dba: {text}"
    );
    assert!(text.contains("@13800000000"), "{text}");
    assert_eq!(dba[0].body["at"]["atMobiles"][0], "13800000000");

    // The catch-all robot got both alerts in one message, with the keyword.
    let text = ops[0].text();
    assert!(
        ops[0].title().starts_with("[FIRING:2]"),
        "{}",
        ops[0].title()
    );
    assert!(
        text.contains("MySQLReplicationLag") && text.contains("HTTPErrorRate"),
        "{text}"
    );
    assert!(ops[0].title().contains("HertzBeat") && text.contains("HertzBeat"));

    bridge
        .wait_for_metric(
            r#"alertmanager_dingtalk_messages_total{robot="dba",outcome="sent"}"#,
            1.0,
        )
        .await;
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_alerts_routed_total{strategy="database"}"#)
            .await,
        1.0
    );
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_alerts_received_total{status="firing"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn unrouted_alerts_are_counted_not_rejected() {
    let dingtalk = fake().await;
    let config = format!(
        r#"
dingtalk: {{ api_url: "{}" }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: only-db
    matchers: ['team="db"']
    robots: [ops]
"#,
        dingtalk.api_url()
    );
    let bridge = Bridge::start(BINARY, &config).await;
    bridge
        .notify(&payload("firing", &[("Lonely", &[("team", "web")])]))
        .await;
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_alerts_unrouted_total")
            .await,
        1.0
    );
    assert!(bridge.log().contains("Alert matched no strategy."));
}

#[tokio::test]
async fn resolved_alerts_are_sent_unless_the_strategy_says_not_to() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(
        BINARY,
        &two_robot_config(&dingtalk.api_url(), "    send_resolved: false\n"),
    )
    .await;
    let resolved = payload(
        "resolved",
        &[("DiskFull", &[("team", "db"), ("instance", "db-9")])],
    );

    bridge.notify(&resolved).await;

    let requests = dingtalk
        .wait_until("the resolved message", WAIT, |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    let dba = dingtalk.delivered("dba-token");
    assert_eq!(dba.len(), 1, "{requests:?}");
    assert!(
        dba[0].title().starts_with("[RESOLVED] DiskFull"),
        "{}",
        dba[0].title()
    );
    assert!(
        dba[0].text().contains("ended: 2024-05-01 09:00:00 CST"),
        "{}",
        dba[0].text()
    );
    // `default` has send_resolved: false: held back, counted.
    assert_eq!(
        bridge
            .metric(
                r#"alertmanager_dingtalk_alerts_held_total{strategy="default",reason="resolved"}"#
            )
            .await,
        1.0
    );
    bridge.wait_idle().await;
    assert!(dingtalk.delivered("ops-token").is_empty());
}

#[tokio::test]
async fn drop_in_path_sends_everything_to_the_named_robot() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &two_robot_config(&dingtalk.api_url(), "")).await;

    let (status, _) = bridge
        .post("/dingtalk/ops/send", FIXTURE, Some("application/json"))
        .await;
    assert_eq!(status, 200);
    let (status, body) = bridge
        .post("/dingtalk/nobody/send", FIXTURE, Some("application/json"))
        .await;
    assert_eq!((status, body.trim()), (404, "unknown robot \"nobody\""));

    dingtalk
        .wait_until("the direct message", WAIT, |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let ops = dingtalk.delivered("ops-token");
    assert_eq!(ops.len(), 1);
    assert!(
        ops[0].text().contains("MySQLReplicationLag") && ops[0].text().contains("HTTPErrorRate")
    );
    bridge.wait_idle().await;
    assert!(
        dingtalk.delivered("dba-token").is_empty(),
        "no routing on the drop-in path"
    );
}

#[tokio::test]
async fn bad_requests_get_a_4xx_with_a_one_line_reason() {
    let dingtalk = fake().await;
    let config = two_robot_config(&dingtalk.api_url(), "max_body_bytes: 4096\n");
    let bridge = Bridge::start(BINARY, &config).await;

    let cases: [(&str, String, Option<&str>, u16, &str); 6] = [
        (
            "malformed JSON",
            "{not json".into(),
            Some("application/json"),
            400,
            "invalid Alertmanager payload",
        ),
        (
            "wrong shape",
            r#"{"status":"firing","alerts":"x"}"#.into(),
            Some("application/json"),
            400,
            "invalid type",
        ),
        (
            "no alerts",
            r#"{"status":"firing","alerts":[]}"#.into(),
            None,
            400,
            "`alerts` is empty",
        ),
        (
            "bad status",
            payload("burning", &[("A", &[])]),
            None,
            400,
            "unknown variant `burning`",
        ),
        (
            "wrong content type",
            FIXTURE.into(),
            Some("text/plain"),
            415,
            "send Content-Type: application/json",
        ),
        (
            "too large",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(5000)),
            Some("application/json"),
            413,
            "max_body_bytes",
        ),
    ];
    for (what, body, content_type, status, reason) in cases {
        let (got_status, got_body) = bridge.post("/alertmanager", body, content_type).await;
        assert_eq!(got_status, status, "{what}: {got_body}");
        assert!(got_body.contains(reason), "{what}: {got_body}");
        assert_eq!(
            got_body.trim_end().lines().count(),
            1,
            "{what}: one line: {got_body:?}"
        );
    }

    // A missing Content-Type is accepted, as Alertmanager versions differ.
    let (status, body) = bridge.post("/alertmanager", FIXTURE, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bridge.get("/nowhere").await.0, 404);
    assert_eq!(bridge.get("/alertmanager").await.0, 405);
    assert_eq!(
        bridge
            .metric(
                r#"alertmanager_dingtalk_webhooks_total{source="alertmanager",outcome="invalid"}"#
            )
            .await,
        4.0
    );
}

#[tokio::test]
async fn an_identical_notification_within_the_dedup_window_is_sent_once() {
    let dingtalk = fake().await;
    let bridge = Bridge::start(BINARY, &two_robot_config(&dingtalk.api_url(), "")).await;

    let first = bridge.post("/alertmanager", FIXTURE, None).await;
    let second = bridge.post("/alertmanager", FIXTURE, None).await;
    assert_eq!(first, (200, "ok: 2 alerts, 2 messages queued\n".to_owned()));
    assert_eq!(
        second,
        (200, "ok: 2 alerts, 0 messages queued\n".to_owned())
    );
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_duplicates_suppressed_total")
            .await,
        1.0
    );

    // The same group resolved is news, not a duplicate.
    let resolved = FIXTURE.replace("\"firing\"", "\"resolved\"");
    let third = bridge.post("/alertmanager", resolved, None).await;
    assert_eq!(third, (200, "ok: 2 alerts, 2 messages queued\n".to_owned()));
    dingtalk
        .wait_until("four messages", WAIT, |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() == 4
        })
        .await;
}

#[tokio::test]
async fn with_auth_configured_webhooks_and_admin_endpoints_need_the_bearer_token() {
    const TOKEN: &str = "webhook-token-7f3a";
    let dingtalk = fake().await;
    let config = two_robot_config(
        &dingtalk.api_url(),
        "auth:\n  bearer_token: \"${WEBHOOK_TOKEN}\"\n",
    );
    let bridge = Bridge::start_with_env(BINARY, &config, &[("WEBHOOK_TOKEN", TOKEN)]).await;
    let client = testkit::http();
    let send = |method: reqwest::Method, path: &str, authorization: Option<&str>| {
        let mut request = client
            .request(method, format!("{}{path}", bridge.url))
            .header("content-type", "application/json");
        if matches!(path, "/alertmanager" | "/dingtalk/ops/send") {
            request = request.body(FIXTURE);
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        async move {
            let response = request.send().await.expect("request to the bridge");
            let challenge = response.headers().get("www-authenticate").cloned();
            (
                response.status().as_u16(),
                challenge,
                response.text().await.unwrap(),
            )
        }
    };

    for (method, path) in [
        (reqwest::Method::POST, "/alertmanager"),
        (reqwest::Method::POST, "/dingtalk/ops/send"),
        (reqwest::Method::POST, "/-/reload"),
        (reqwest::Method::GET, "/api/v1/queue"),
        (reqwest::Method::GET, "/api/v1/dead-letters"),
        (reqwest::Method::POST, "/api/v1/dead-letters/retry"),
    ] {
        for wrong in [
            None,
            Some("Bearer not-the-token"),
            Some("Basic d2ViaG9vaw=="),
        ] {
            let (status, challenge, body) = send(method.clone(), path, wrong).await;
            assert_eq!(status, 401, "{method} {path} with {wrong:?}: {body}");
            assert_eq!(
                challenge.as_ref().map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
            assert_eq!(body.trim_end().lines().count(), 1, "{body:?}");
        }
    }
    assert!(
        dingtalk.requests().is_empty(),
        "nothing unauthorised is sent"
    );
    assert_eq!(
        bridge
            .metric(r#"alertmanager_dingtalk_webhooks_total{source="alertmanager",outcome="unauthorized"}"#)
            .await,
        6.0
    );

    // Probes and scrapers need no token.
    for path in ["/metrics", "/-/healthy", "/-/ready"] {
        assert_eq!(bridge.get(path).await.0, 200, "{path}");
    }

    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = send(reqwest::Method::POST, "/alertmanager", Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(reqwest::Method::GET, "/api/v1/queue", Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(reqwest::Method::POST, "/-/reload", Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("bearer token required"), "{body}");
    dingtalk
        .wait_until("the authorised webhook's messages", WAIT, |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() == 2
        })
        .await;
    assert!(
        !bridge.log().contains(TOKEN),
        "the token must not be logged"
    );
}
