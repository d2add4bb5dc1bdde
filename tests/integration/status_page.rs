//! The status page and its preview in a real headless browser: Debian's `chromium`,
//! driven by `tests/browser/status_page.mjs` (playwright-core from npm, no browser
//! download) with JavaScript off. The bridge has delivered to one robot and dead-lettered
//! for another before the browser opens the page.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeDingTalk, FakeRobot, payload};

use crate::BINARY;

const AUTH_TOKEN: &str = "page-auth-token-8c1d";
const OPS_TOKEN: &str = "ops-token-5a7e";
const OPS_SECRET: &str = "SECops-page-secret-91b2";
const DBA_TOKEN: &str = "dba-token-3f60";

fn config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}", timeout: 1s }}
auth:
  bearer_token: "${{AUTH_TOKEN}}"
robots:
  ops:
    access_token: "${{OPS_TOKEN}}"
    secret: "${{OPS_SECRET}}"
    rate_limit: 20/min
  dba:
    access_token: "${{DBA_TOKEN}}"
strategies:
  - name: database
    matchers: ['team="db"']
    robots: [dba]
  - name: default
    robots: [ops]
"#
    )
}

/// The bridge with [`config`] plus `extra` strategies, its credentials in its environment.
async fn start(dingtalk: &FakeDingTalk, extra: &str) -> Bridge {
    let env = [
        ("AUTH_TOKEN", AUTH_TOKEN),
        ("OPS_TOKEN", OPS_TOKEN),
        ("OPS_SECRET", OPS_SECRET),
        ("DBA_TOKEN", DBA_TOKEN),
    ];
    Bridge::start_with_env(BINARY, &(config(&dingtalk.api_url()) + extra), &env).await
}

/// What the browser saw on the bridge at `url`.
fn browse(url: &str, payload_file: &Path, screenshot: &Path) -> Value {
    crate::browser::run(
        "status_page.mjs",
        &[
            ("BRIDGE_URL", url.as_ref()),
            ("BRIDGE_TOKEN", AUTH_TOKEN.as_ref()),
            ("PAYLOAD_FILE", payload_file.as_os_str()),
            ("TEST_ROBOT", "ops".as_ref()),
            ("SCREENSHOT", screenshot.as_os_str()),
        ],
    )
}

#[tokio::test]
async fn the_status_page_shows_robots_and_strategies_and_previews_a_payload_in_a_browser() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new(OPS_TOKEN).secret(OPS_SECRET),
        // Messages to dba lack its keyword: refused (310000), and dead-lettered.
        FakeRobot::new(DBA_TOKEN).keywords(&["DBA-ONLY"]),
    ])
    .await;
    let bridge = start(&dingtalk, "").await;
    let answer = testkit::http()
        .post(format!("{}/alertmanager", bridge.url))
        .bearer_auth(AUTH_TOKEN)
        .header("content-type", "application/json")
        .body(payload(
            "firing",
            &[("ReplicationLag", &[("team", "db")]), ("DiskFull", &[])],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    bridge
        .wait_for_metric(
            r#"alertmanager_dingtalk_dead_letters_total{robot="dba",reason="310000"}"#,
            1.0,
        )
        .await;
    dingtalk
        .wait_until("the message to ops", Duration::from_secs(10), |requests| {
            requests
                .iter()
                .any(|r| r.token == OPS_TOKEN && r.errcode == Some(0))
        })
        .await;

    let dir = bridge.dir().to_owned();
    let payload_file = dir.join("preview.json");
    std::fs::write(
        &payload_file,
        payload(
            "firing",
            &[
                (
                    "SlowQueries",
                    &[
                        ("team", "db"),
                        ("instance", "[click](javascript:alert(1)) <b>x</b>"),
                    ],
                ),
                ("HighLoad", &[]),
            ],
        ),
    )
    .unwrap();
    // The README's screenshot, taken again from the current build at every run.
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/status-page.png");
    let taken_before = std::fs::metadata(&screenshot)
        .and_then(|m| m.modified())
        .ok();
    // Off the runtime, which serves the fake DingTalk meanwhile.
    let seen = {
        let (url, screenshot) = (bridge.url.clone(), screenshot.clone());
        tokio::task::spawn_blocking(move || browse(&url, &payload_file, &screenshot))
            .await
            .unwrap()
    };

    assert_eq!(seen["unauthenticatedStatus"], 401, "{seen:#}");
    assert_eq!(seen["status"], 200);
    let robot = |name: &str| seen["robots"][name].as_str().unwrap_or_default().to_owned();
    let ops = robot("ops");
    for shown in [
        "access_token=***",
        "signed",
        "HertzBeat",
        "1 of 20/60s",
        "0 pending",
    ] {
        assert!(ops.contains(shown), "{shown:?} not in the ops row: {ops}");
    }
    let dba = robot("dba");
    // The last error with its hint, and the dead letter it left.
    for shown in [
        "not signed",
        "errcode 310000",
        "add HertzBeat as a custom keyword",
    ] {
        assert!(dba.contains(shown), "{shown:?} not in the dba row: {dba}");
    }
    assert_eq!(
        seen["deadLetters"],
        serde_json::json!({"dba": "1", "ops": "0"})
    );
    let database = seen["strategies"]["database"].as_str().unwrap_or_default();
    assert!(
        database.contains("team=\"db\"") && database.contains("dba"),
        "{database}"
    );

    assert_eq!(seen["previewError"], Value::Null, "{seen:#}");
    assert_eq!(seen["routed"], serde_json::json!(["database", "default"]));
    let messages = seen["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let to_dba = &messages[0];
    assert_eq!(
        (&to_dba["robot"], &to_dba["strategy"]),
        (&"dba".into(), &"database".into())
    );
    let bubble = to_dba["bubbleText"].as_str().unwrap();
    assert!(to_dba["bubbleVisible"].as_bool().unwrap(), "{to_dba:#}");
    assert!(
        bubble.contains("SlowQueries") && bubble.contains("HertzBeat"),
        "{bubble}"
    );
    assert!(
        !to_dba["headings"].as_array().unwrap().is_empty(),
        "markdown rendered: {to_dba:#}"
    );
    // The label's markup is shown, not followed: no javascript: link, no bold element.
    let links = to_dba["links"].as_array().unwrap();
    assert!(
        links
            .iter()
            .all(|l| !l.as_str().unwrap().starts_with("javascript:")),
        "{links:?}"
    );
    let body: Value = serde_json::from_str(to_dba["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["msgtype"], "markdown");
    assert!(
        body["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("SlowQueries")
    );
    let taken = std::fs::metadata(&screenshot)
        .and_then(|m| m.modified())
        .ok();
    assert!(
        taken.is_some() && taken != taken_before,
        "no new screenshot at {}",
        screenshot.display()
    );

    let result = seen["testResult"].as_str().unwrap_or_default();
    assert!(
        result.contains("delivered") && result.contains("errcode 0"),
        "{result}"
    );
    let tests = dingtalk.delivered(OPS_TOKEN);
    assert!(
        tests.iter().any(|r| r.text().contains("test-robot")),
        "the test message did not reach ops: {tests:#?}"
    );
    // Nothing was sent by the preview: dba got only the one refused message.
    assert_eq!(
        dingtalk
            .requests()
            .iter()
            .filter(|r| r.token == DBA_TOKEN)
            .count(),
        1
    );

    for page in seen["pages"].as_array().unwrap() {
        let html = page.as_str().unwrap();
        for credential in [AUTH_TOKEN, OPS_TOKEN, OPS_SECRET, DBA_TOKEN] {
            assert!(
                !html.contains(credential),
                "{credential} on the page:\n{html}"
            );
        }
        assert!(!html.contains("<script"), "the page has a script");
    }
}

#[tokio::test]
async fn the_page_refuses_a_form_posted_from_another_site() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(OPS_TOKEN)]).await;
    let bridge = start(&dingtalk, "").await;
    let client = testkit::http();
    let host = bridge.url.trim_start_matches("http://");
    let post = |origin: String| {
        client
            .post(format!("{}/test-robot", bridge.url))
            .basic_auth("operator", Some(AUTH_TOKEN))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("robot=ops")
            .send()
    };
    let refused = post("http://evil.example".to_owned()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let wrong_password = client
        .get(format!("{}/", bridge.url))
        .basic_auth("operator", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_password.status(), 401);
    assert!(
        wrong_password.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let accepted = post(format!("http://{host}")).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.text().await.unwrap().contains("test-result"));
    assert_eq!(
        dingtalk.delivered(OPS_TOKEN).len(),
        1,
        "only the same-site form sent"
    );
}

#[tokio::test]
async fn every_built_in_sample_previews_and_a_bad_payload_is_reported_on_the_page() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(OPS_TOKEN)]).await;
    let bridge = start(&dingtalk, "").await;
    let client = testkit::http();
    let preview = |form: String| {
        client
            .post(format!("{}/preview", bridge.url))
            .bearer_auth(AUTH_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    for (sample, alerts) in [
        ("firing", "2 alerts"),
        ("resolved", "1 alert,"),
        ("storm", "300 alerts"),
        ("chinese", "1 alert,"),
    ] {
        let answer = preview(format!("sample={sample}&payload=")).await.unwrap();
        assert_eq!(answer.status(), 200, "{sample}");
        let html = answer.text().await.unwrap();
        assert!(html.contains("id=\"preview-result\""), "{sample}: {html}");
        assert!(html.contains(alerts), "{sample}: {alerts:?} not in {html}");
    }
    let answer = preview("payload=%7B%22alerts%22%3A+3%7D".to_owned())
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let html = answer.text().await.unwrap();
    assert!(html.contains("id=\"preview-error\""), "{html}");
    assert!(!html.contains("id=\"preview-result\""), "{html}");
    assert!(dingtalk.requests().is_empty(), "a preview sends nothing");
}

#[tokio::test]
async fn the_page_shows_a_failed_reload_and_whether_each_active_time_is_open() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(OPS_TOKEN)]).await;
    // A window that is open now, and one that opens two hours from now.
    let hour = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .hour();
    let later = (hour + 2) % 24;
    let windows = format!(
        r#"
  - name: always-open
    robots: [ops]
    continue: true
    active_time: {{ start: "00:00", end: "24:00", timezone: UTC }}
  - name: closed-now
    robots: [ops]
    active_time: {{ start: "{later:02}:00", end: "{:02}:00", timezone: UTC }}
"#,
        (later + 1) % 24
    );
    let bridge = start(&dingtalk, &windows).await;
    let client = testkit::http();
    let page = || async {
        let answer = client
            .get(format!("{}/", bridge.url))
            .bearer_auth(AUTH_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap()
    };
    let html = page().await;
    let row = |name: &str| {
        let start = html
            .find(&format!("data-strategy=\"{name}\""))
            .unwrap_or_else(|| panic!("no row for {name}: {html}"));
        html[start..]
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        row("always-open").contains("open now"),
        "{}",
        row("always-open")
    );
    assert!(
        row("closed-now").contains("closed now"),
        "{}",
        row("closed-now")
    );
    assert!(!html.contains("id=\"reload-failure\""), "{html}");

    std::fs::write(bridge.dir().join("config.yaml"), "robots: [oops\n").unwrap();
    let reload = client
        .post(format!("{}/-/reload", bridge.url))
        .bearer_auth(AUTH_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 400);
    let html = page().await;
    let failure = html
        .split("id=\"reload-failure\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no reload failure shown: {html}"));
    assert!(failure.contains("config.yaml:"), "{failure}");
    // The configuration in force is still the one loaded at start.
    assert!(html.contains("data-strategy=\"always-open\""), "{html}");
}
