//! Grafana's and HertzBeat's webhooks end to end to the fake DingTalk: the payloads of
//! `tests/data/sources/` arrive as the golden messages of `tests/data/snapshots/` (the
//! unit tests' files, with the one line that depends on the time of the run masked), a
//! repeat is suppressed, bad bodies and bad signatures are refused with a reason and
//! counted by source, and `render --source` reads them too.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use testkit::{Bridge, FakeDingTalk, FakeRobot, run_command};

use crate::{BINARY, QUIET, QUIET_WITHIN};

const WAIT: Duration = Duration::from_secs(15);

fn data(path: &str) -> String {
    let file = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn config(api_url: &str, extra: &str) -> String {
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
  timeout: 2s
timezone: Asia/Shanghai
sources:
  hertzbeat:
    timezone: Asia/Shanghai
{extra}
robots:
  ops:
    access_token: ops-token
strategies:
  - name: all
    robots: [ops]
"#
    )
}

/// A fake DingTalk with the robot `ops`, and a bridge sending everything to it with `extra`
/// under `sources:`.
async fn start(extra: &str) -> (FakeDingTalk, Bridge) {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), extra)).await;
    (dingtalk, bridge)
}

/// `message` (title, a blank line, text) with the time since the alerts started masked:
/// the golden files were rendered at a fixed instant, the run is now.
fn masked(message: &str) -> String {
    message
        .lines()
        .map(|line| match line.split_once("firing for: ") {
            Some((before, _)) => format!("{before}firing for: …"),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn grafana_and_hertzbeat_payloads_arrive_as_their_golden_messages_once() {
    let (dingtalk, bridge) = start("").await;

    let json = Some("application/json");
    for (path, payload) in [
        ("/grafana", data("sources/grafana-panel.json")),
        ("/hertzbeat", data("sources/hertzbeat-firing.txt")),
    ] {
        let (status, answer) = bridge.post(path, payload.clone(), json).await;
        assert_eq!(
            (status, answer.trim()),
            (200, "ok: 1 alerts, 1 messages queued"),
            "{path}"
        );
        // HertzBeat and Grafana repeat a group they still alert on: the repeat within
        // the dedup window is the same notification.
        let (status, answer) = bridge.post(path, payload, json).await;
        assert_eq!(status, 200, "{answer}");
    }
    dingtalk
        .wait_until("both messages", WAIT, |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() == 2
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    let delivered = dingtalk.delivered("ops-token");
    assert_eq!(
        delivered.len(),
        2,
        "one message each, no repeat: {:?}",
        dingtalk.requests()
    );

    for (request, golden) in delivered
        .iter()
        .zip(["default.grafana-panel.md", "default.hertzbeat.md"])
    {
        let arrived = format!("{}\n\n{}\n", request.title(), request.text());
        let expected = data(&format!("snapshots/{golden}"));
        assert_eq!(masked(&arrived), masked(&expected), "{golden}");
    }
    for source in ["grafana", "hertzbeat"] {
        let series = format!(
            r#"alertmanager_dingtalk_webhooks_total{{source="{source}",outcome="accepted"}}"#
        );
        assert_eq!(bridge.metric(&series).await, 2.0, "{series}");
    }
}

#[tokio::test]
async fn bad_bodies_are_refused_with_a_reason_and_counted_by_source() {
    let (dingtalk, bridge) = start("").await;
    let json = Some("application/json");

    let (status, answer) = bridge.post("/grafana", "not json", json).await;
    assert_eq!(status, 400);
    assert!(
        answer.starts_with("invalid Grafana payload: expected ident"),
        "{answer}"
    );
    let (status, answer) = bridge
        .post("/hertzbeat", r#"{"title": "x", "status": "firing"}"#, json)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer.trim(),
        "invalid HertzBeat payload: missing field `alerts` at line 1 column 34"
    );
    let (status, answer) = bridge
        .post("/hertzbeat", r#"{"alerts": "none"}"#, json)
        .await;
    assert_eq!(status, 400);
    assert!(
        answer.starts_with("invalid HertzBeat payload: invalid type: string"),
        "{answer}"
    );

    for (source, expected) in [("grafana", 1.0), ("hertzbeat", 2.0), ("alertmanager", 0.0)] {
        let series = format!(
            r#"alertmanager_dingtalk_webhooks_total{{source="{source}",outcome="invalid"}}"#
        );
        assert_eq!(bridge.metric(&series).await, expected, "{series}");
    }
    assert!(dingtalk.requests().is_empty());
}

fn signature(secret: &str, signed: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_configured_grafana_signature_is_required_and_never_shown() {
    let secret = "grafana-shared-secret";
    let extra = format!(
        "  grafana:\n    hmac_secret: {secret}\n    timestamp_header: X-Grafana-Alert-Timestamp"
    );
    let (dingtalk, bridge) = start(&extra).await;
    let body = data("sources/grafana.json");
    let url = format!("{}/grafana", bridge.url);
    let now = jiff::Timestamp::now().as_second().to_string();
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = bridge
            .client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let signed_at = |at: &str| signature(secret, format!("{at}:{body}").as_bytes());

    let (status, answer) = post(vec![]).await;
    assert_eq!(status, 401);
    assert!(
        answer.starts_with("no X-Grafana-Alert-Signature header"),
        "{answer}"
    );
    let wrong = signature("another-secret", format!("{now}:{body}").as_bytes());
    let (status, answer) = post(vec![
        ("X-Grafana-Alert-Signature", wrong),
        ("X-Grafana-Alert-Timestamp", now.clone()),
    ])
    .await;
    assert_eq!(status, 401);
    assert!(
        answer.starts_with("the signature does not match the body"),
        "{answer}"
    );
    let old = (jiff::Timestamp::now().as_second() - 3600).to_string();
    let (status, answer) = post(vec![
        ("X-Grafana-Alert-Signature", signed_at(&old)),
        ("X-Grafana-Alert-Timestamp", old.clone()),
    ])
    .await;
    assert_eq!(status, 401);
    assert!(answer.contains("a replay, or a clock off"), "{answer}");
    assert!(dingtalk.requests().is_empty());

    let (status, answer) = post(vec![
        ("X-Grafana-Alert-Signature", signed_at(&now)),
        ("X-Grafana-Alert-Timestamp", now.clone()),
    ])
    .await;
    assert_eq!(status, 200, "{answer}");
    dingtalk
        .wait_until("the signed notification", WAIT, |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    let refused =
        r#"alertmanager_dingtalk_webhooks_total{source="grafana",outcome="bad_signature"}"#;
    assert_eq!(bridge.metric(refused).await, 3.0);
    assert!(!bridge.log().contains(secret), "the secret is never logged");
    let (_, page) = bridge.get("/").await;
    assert!(!page.contains(secret), "nor shown on the status page");
}

#[tokio::test]
async fn render_reads_each_source() {
    let (_dingtalk, bridge) = start("").await;
    for (source, file, expected) in [
        ("grafana", "grafana.json", "![panel]"),
        (
            "hertzbeat",
            "hertzbeat-strict.json",
            "Disk /data of web-2 is 95% full",
        ),
    ] {
        std::fs::write(bridge.dir().join(file), data(&format!("sources/{file}"))).unwrap();
        let output = run_command(
            BINARY,
            bridge.dir(),
            &["render", "--source", source, file],
            &[],
        );
        assert!(
            output.success,
            "{source}: {}{}",
            output.stdout, output.stderr
        );
        if source == "grafana" {
            // The documented body has no image: only its values and links show.
            assert!(!output.stdout.contains(expected), "{}", output.stdout);
            assert!(
                output.stdout.contains("values: B=44.23943737541908, C=1"),
                "{}",
                output.stdout
            );
        } else {
            assert!(output.stdout.contains(expected), "{}", output.stdout);
        }
    }
    let wrong = run_command(
        BINARY,
        bridge.dir(),
        &["render", "hertzbeat-strict.json"],
        &[],
    );
    assert!(!wrong.success);
    assert!(
        wrong.stderr.contains("invalid Alertmanager payload"),
        "{}",
        wrong.stderr
    );
}

#[tokio::test]
async fn the_preview_has_a_sample_of_each_source_and_reads_a_pasted_payload_as_its_source() {
    let (dingtalk, bridge) = start("").await;
    let form = Some("application/x-www-form-urlencoded");
    for (sample, shown) in [
        ("grafana", "values: B=92.6, C=1"),
        ("hertzbeat", "CPU usage of db-1 is 93.5%, above 90%"),
    ] {
        let (status, page) = bridge
            .post("/preview", format!("sample={sample}&payload="), form)
            .await;
        assert_eq!(status, 200, "{sample}");
        assert!(
            page.contains("class=\"bubble\"") && page.contains(shown),
            "{sample}: {page}"
        );
    }
    let pasted: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("source", "hertzbeat")
        .append_pair("payload", &data("sources/hertzbeat-strict.json"))
        .finish();
    let (status, page) = bridge.post("/preview", pasted.clone(), form).await;
    assert_eq!(status, 200);
    assert!(page.contains("Disk /data of web-2 is 95% full"), "{page}");
    // The same payload read as Alertmanager's is not one.
    let (status, page) = bridge
        .post(
            "/preview",
            pasted.replace("source=hertzbeat", "source=alertmanager"),
            form,
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("invalid Alertmanager payload"), "{page}");
    assert!(dingtalk.requests().is_empty(), "a preview sends nothing");
}
