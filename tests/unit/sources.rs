//! The sources other than Alertmanager: Grafana's webhook body and its signature,
//! HertzBeat's template output (strict or not), and what is derived for what they lack.
//! Payloads are in `tests/data/sources/` (where each comes from is in its README).

use std::path::PathBuf;

use alertmanager_dingtalk::ingest::grafana::{self, SignatureError, Signed};
use alertmanager_dingtalk::ingest::hertzbeat::{self, drop_stray_commas};
use alertmanager_dingtalk::ingest::{self, Notification, Source, Status};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use sha2::Sha256;

/// A payload of `tests/data/sources/`.
pub(crate) fn source_payload(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sources")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shanghai() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap()
}

fn now() -> Timestamp {
    "2026-12-06T09:00:00Z".parse().unwrap()
}

/// A HertzBeat payload of `tests/data/sources/`, read in Asia/Shanghai.
pub(crate) fn hertzbeat_payload(name: &str) -> Notification {
    hertzbeat::parse(&source_payload(name), &shanghai(), now()).unwrap()
}

#[test]
fn grafana_documented_body_is_read_with_its_values_and_links() {
    let n = grafana::parse(&source_payload("grafana.json")).unwrap();
    assert_eq!(n.source, Source::Grafana);
    assert_eq!(n.group_key, "grafana/{}:{}");
    assert_eq!(
        (n.title.as_str(), n.state.as_str()),
        ("[FIRING:2]  (blue)", "alerting")
    );
    assert_eq!(n.org_id, Some(1));
    assert_eq!(n.alerts.len(), 2);
    let first = &n.alerts[0];
    assert_eq!(first.fingerprint, "c6eadffa33fcdf37");
    let values = first.values.as_ref().unwrap();
    assert_eq!((values["B"], values["C"]), (44.23943737541908, 1.0));
    assert!(
        first
            .silence_url
            .starts_with("https://play.grafana.org/alerting/silence/new?")
    );
    assert_eq!(first.ended_at(), None);
}

#[test]
fn grafana_panel_links_and_image_are_kept() {
    let n = grafana::parse(&source_payload("grafana-panel.json")).unwrap();
    let alert = &n.alerts[0];
    assert_eq!(alert.dashboard_url, "http://localhost/d/abcd?orgId=1");
    assert_eq!(
        alert.panel_url,
        "http://localhost/d/abcd?orgId=1&viewPanel=efgh"
    );
    assert_eq!(
        alert.image_url,
        "http://localhost/public/img/attachments/efgh.png"
    );
    assert_eq!(alert.values, None);
}

#[test]
fn bad_bodies_are_refused_with_a_reason_naming_the_source() {
    let cases: [(Source, &[u8], &str); 6] = [
        (
            Source::Grafana,
            b"not json",
            "invalid Grafana payload: expected ident",
        ),
        (
            Source::Grafana,
            br#"{"status":"firing","alerts":[]}"#,
            "invalid Grafana payload: `alerts` is empty",
        ),
        // Grafana's legacy alerting sent another shape altogether.
        (
            Source::Grafana,
            br#"{"evalMatches":[],"ruleName":"x","state":"alerting"}"#,
            "invalid Grafana payload: missing field `status`",
        ),
        (
            Source::HertzBeat,
            br#"{"title":"x","status":"firing"}"#,
            "invalid HertzBeat payload: missing field `alerts`",
        ),
        (
            Source::HertzBeat,
            br#"{"alerts":[{"labels":{"a":"b"} "content":"x"}]}"#,
            "invalid HertzBeat payload: expected `,` or `}`",
        ),
        (
            Source::HertzBeat,
            br#"{"alerts":[{"labels":{},"startAt":"yesterday"}]}"#,
            "invalid HertzBeat payload: alert 1: `startAt` \"yesterday\" is not yyyy-MM-dd HH:mm:ss",
        ),
    ];
    for (source, body, expected) in cases {
        let error = ingest::parse_from(source, body, &shanghai(), now()).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with(expected),
            "{shown:?} should start with {expected:?}"
        );
        assert!(!shown.contains('\n'), "one line: {shown:?}");
    }
}

/// Grafana's signature of `body` with `secret`, at `timestamp` when given.
fn sign(secret: &str, body: &[u8], timestamp: Option<&str>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    if let Some(timestamp) = timestamp {
        mac.update(format!("{timestamp}:").as_bytes());
    }
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn grafana_signatures_are_checked() {
    let body = source_payload("grafana.json");
    let header = "X-Grafana-Alert-Signature";
    let good = sign("s3cret", &body, None);
    fn plain(value: Option<&str>) -> Signed<'_> {
        Signed {
            signature: ("X-Grafana-Alert-Signature", value),
            timestamp: None,
        }
    }
    let check =
        |secret: &str, body: &[u8], signed| grafana::verify(secret.as_bytes(), body, signed, now());
    assert_eq!(check("s3cret", &body, plain(Some(&good))), Ok(()));
    let upper = good.to_uppercase();
    assert_eq!(check("s3cret", &body, plain(Some(&upper))), Ok(()));
    assert_eq!(
        check("other", &body, plain(Some(&good))),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check("s3cret", b"{}", plain(Some(&good))),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check("s3cret", &body, plain(None)),
        Err(SignatureError::Missing(header.to_owned()))
    );

    let at = now().as_second().to_string();
    let stamped = sign("s3cret", &body, Some(&at));
    fn with_time<'a>(signature: &'a str, timestamp: Option<&'a str>) -> Signed<'a> {
        Signed {
            signature: ("X-Grafana-Alert-Signature", Some(signature)),
            timestamp: Some(("X-Grafana-Alert-Timestamp", timestamp)),
        }
    }
    assert_eq!(
        check("s3cret", &body, with_time(&stamped, Some(&at))),
        Ok(())
    );
    // The body alone signed is not enough once a timestamp is expected.
    assert_eq!(
        check("s3cret", &body, with_time(&good, Some(&at))),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check("s3cret", &body, with_time(&stamped, None)),
        Err(SignatureError::NoTimestamp(
            "X-Grafana-Alert-Timestamp".to_owned()
        ))
    );
    let old = (now().as_second() - 600).to_string();
    let replayed = sign("s3cret", &body, Some(&old));
    assert_eq!(
        check("s3cret", &body, with_time(&replayed, Some(&old))),
        Err(SignatureError::Stale(600))
    );
}

#[test]
fn hertzbeat_template_output_without_annotations_is_read_despite_its_stray_comma() {
    let raw = source_payload("hertzbeat-firing.txt");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&raw).is_err(),
        "the fixture is not strict JSON"
    );
    let n = hertzbeat_payload("hertzbeat-firing.txt");
    assert_eq!(n.source, Source::HertzBeat);
    assert_eq!(n.status, Status::Firing);
    assert_eq!(n.title, "🔔 HertzBeat Alert Notification");
    assert_eq!(n.group_key, r#"hertzbeat/{alertname="HighCpuUsage"}"#);
    assert_eq!(n.group_labels["alertname"], "HighCpuUsage");
    let alert = &n.alerts[0];
    assert_eq!(alert.status, Status::Firing);
    // 16:00 in Asia/Shanghai.
    assert_eq!(
        alert.starts_at,
        "2026-12-06T08:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(alert.ended_at(), None);
    assert_eq!(
        alert.annotations["summary"],
        "CPU usage of db-1 is 93.5%, above 90%"
    );
    assert_eq!(alert.annotations["content"], alert.annotations["summary"]);
    assert_eq!(alert.annotations["trigger_times"], "3");
    // The template's commonLabels rewrite severity for display; the shared labels are
    // taken from the alerts instead.
    assert_eq!(n.common_labels["severity"], "critical");
    assert_eq!(alert.fingerprint.len(), 16);
    assert!(alert.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn hertzbeat_resolved_alert_with_every_optional_field_is_read() {
    let n = hertzbeat_payload("hertzbeat-resolved.txt");
    assert_eq!(n.status, Status::Resolved);
    let alert = &n.alerts[0];
    assert_eq!(alert.status, Status::Resolved);
    assert_eq!(
        alert.ended_at(),
        Some("2026-12-06T08:20:00Z".parse().unwrap())
    );
    // Its own summary stays; the content is kept beside it.
    assert_eq!(alert.annotations["summary"], "db-1 CPU back under 90%");
    assert_eq!(
        alert.annotations["content"],
        "CPU usage of db-1 is 93.5%, above 90%"
    );
    // The same alert as in the firing notice: one fingerprint, one group.
    let firing = hertzbeat_payload("hertzbeat-firing.txt");
    assert_eq!(alert.fingerprint, firing.alerts[0].fingerprint);
    assert_eq!(n.group_key, firing.group_key);
}

#[test]
fn hertzbeat_strict_template_with_two_alerts() {
    let n = hertzbeat_payload("hertzbeat-strict.json");
    assert_eq!(n.alerts.len(), 2);
    assert_eq!(n.group_key, r#"hertzbeat/{alertname="DiskFull"}"#);
    assert_eq!(
        n.common_labels.keys().collect::<Vec<_>>(),
        ["alertname", "severity"]
    );
    assert_eq!(
        n.alerts[1].starts_at,
        "2026-12-06T07:58:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(n.alerts[1].annotations["trigger_times"], "2");
    assert_ne!(n.alerts[0].fingerprint, n.alerts[1].fingerprint);
}

#[test]
fn derived_fingerprints_do_not_depend_on_label_order_and_identity_is_stable() {
    let ordered = br#"{"alerts":[{"labels":{"a":"1","b":"2"},"startAt":"2026-12-06 16:00:00"}]}"#;
    let reordered = br#"{"alerts":[{"labels":{"b":"2","a":"1"},"startAt":"2026-12-06 16:00:00"}]}"#;
    let later = br#"{"alerts":[{"labels":{"b":"2","a":"1"},"startAt":"2026-12-06 16:30:00"}]}"#;
    let read = |body: &[u8]| hertzbeat::parse(body, &shanghai(), now()).unwrap();
    assert_eq!(
        read(ordered).alerts[0].fingerprint,
        read(reordered).alerts[0].fingerprint
    );
    // A repeat of the same notice is a duplicate; the alert firing anew is not.
    assert_eq!(read(ordered).identity(), read(reordered).identity());
    assert_ne!(read(ordered).identity(), read(later).identity());
    // Without a start time (the template prints epoch 0), the alert starts now.
    let epoch = br#"{"alerts":[{"labels":{"a":"1"},"startAt":"1970-01-01 08:00:00"}]}"#;
    assert_eq!(read(epoch).alerts[0].starts_at, now());
}

#[test]
fn stray_commas_are_dropped_outside_strings_only() {
    let cases: [(&str, &str); 5] = [
        (r#"{"a": 1,}"#, r#"{"a": 1}"#),
        ("{\"a\": 1,\n  ,\n \"b\": 2}", "{\"a\": 1\n  ,\n \"b\": 2}"),
        (r#"[, 1, 2 ,]"#, r#"[ 1, 2 ]"#),
        (
            r#"{"a": "x,}", "b": "\",]"}"#,
            r#"{"a": "x,}", "b": "\",]"}"#,
        ),
        (r#"{"a": [1,,2]}"#, r#"{"a": [1,2]}"#),
    ];
    for (given, expected) in cases {
        assert_eq!(
            String::from_utf8(drop_stray_commas(given.as_bytes())).unwrap(),
            expected,
            "{given}"
        );
    }
}

#[test]
fn a_body_sent_to_alertmanager_cannot_claim_another_source() {
    let mut body: serde_json::Value =
        serde_json::from_slice(&crate::fixture_bytes("firing_3.json")).unwrap();
    body["source"] = "grafana".into();
    let n = ingest::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(n.source, Source::Alertmanager);
    // Stored notifications of Alertmanager keep their form: no source written.
    assert!(!serde_json::to_string(&n).unwrap().contains("\"source\""));
}
