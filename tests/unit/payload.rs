//! `ingest::parse`: the Alertmanager webhook body.

use alertmanager_dingtalk::ingest::{self, Status};

use crate::{fixture, fixture_bytes};

#[test]
fn fixtures_parse() {
    let firing = fixture("firing_3.json");
    assert_eq!(firing.version, "4");
    assert_eq!(firing.status, Status::Firing);
    assert_eq!(firing.receiver, "dingtalk-ops");
    assert_eq!(firing.alerts.len(), 3);
    assert_eq!(firing.external_url, "http://alertmanager.example.com:9093");
    assert_eq!(firing.group_labels["alertname"], "HighCPUUsage");
    assert_eq!(firing.common_labels["severity"], "critical");
    let first = &firing.alerts[0];
    assert_eq!(first.name(), "HighCPUUsage");
    assert_eq!(first.labels["instance"], "db-1.example.com:9100");
    assert_eq!(
        first.annotations["summary"],
        "CPU usage above 90% on db-1.example.com:9100"
    );
    assert_eq!(first.starts_at, "2024-05-01T00:00:00Z".parse().unwrap());
    assert_eq!(first.ended_at(), None, "0001-01-01 means still firing");
    assert!(
        first
            .generator_url
            .starts_with("http://prometheus.example.com:9090/graph")
    );
    assert_eq!(first.fingerprint, "3b8d2b7a4c6f1e01");

    let resolved = fixture("resolved_1.json");
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(resolved.alerts[0].status, Status::Resolved);
    assert_eq!(
        resolved.alerts[0].ended_at(),
        Some("2024-05-01T01:30:00Z".parse().unwrap())
    );
}

#[test]
fn newer_and_unknown_fields_are_tolerated() {
    let notification = fixture("newer_fields.json");
    assert_eq!(notification.truncated_alerts, 2);
    assert_eq!(notification.alerts.len(), 1);
    assert_eq!(
        notification.alerts[0].starts_at,
        "2024-05-01T03:10:00.000000001+08:00".parse().unwrap()
    );
}

/// Parses `body`, expecting it to be refused with a one-line reason mentioning `mentions`.
fn check_refused(body: &str, mentions: &str) {
    let error = ingest::parse(body.as_bytes()).expect_err(body);
    let message = error.to_string();
    assert!(
        message.starts_with("invalid Alertmanager payload: "),
        "{message}"
    );
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
    assert!(!message.contains('\n'), "{message:?} is one line");
}

const ALERT: &str =
    r#"{"status":"firing","labels":{"alertname":"A"},"startsAt":"2024-05-01T00:00:00Z"}"#;

#[test]
fn payloads_of_the_wrong_shape_are_refused() {
    check_refused(r#"{"version":"4","status":"firing"}"#, "alerts");
    check_refused(
        r#"{"version":"4","status":"firing","alerts":[]}"#,
        "`alerts` is empty",
    );
    check_refused(
        &format!(r#"{{"status":"weird","alerts":[{ALERT}]}}"#),
        "weird",
    );
    check_refused(&format!(r#"{{"alerts":[{ALERT}]}}"#), "status");
    check_refused(
        r#"{"status":"firing","alerts":[{"status":"firing","labels":{}}]}"#,
        "startsAt",
    );
    check_refused(
        r#"{"status":"firing","alerts":[{"status":"firing","startsAt":"yesterday"}]}"#,
        "",
    );
    check_refused(r#"{"status":"firing","alerts":{"a":1}}"#, "");
    check_refused("", "EOF");
    check_refused("not json", "");
    check_refused("{\n  \"status\": \"firing\",\n  \"alerts\": [\n", "");
}

#[test]
fn optional_fields_default() {
    let notification =
        ingest::parse(format!(r#"{{"status":"firing","alerts":[{ALERT}]}}"#).as_bytes()).unwrap();
    assert_eq!(notification.version, "");
    assert!(notification.common_labels.is_empty());
    assert_eq!(notification.external_url, "");
    assert_eq!(notification.truncated_alerts, 0);
    let alert = &notification.alerts[0];
    assert!(alert.annotations.is_empty());
    assert_eq!(alert.ended_at(), None);
    assert_eq!(alert.generator_url, "");
}

#[test]
fn an_alert_without_alertname_has_an_empty_name() {
    let notification = ingest::parse(
        br#"{"status":"firing","alerts":[{"status":"firing","labels":{"job":"x"},"startsAt":"2024-05-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    assert_eq!(notification.alerts[0].name(), "");
}

#[test]
fn fixture_bytes_are_real_json() {
    for name in ["firing_3.json", "resolved_1.json", "newer_fields.json"] {
        let value: serde_json::Value = serde_json::from_slice(&fixture_bytes(name)).unwrap();
        assert_eq!(value["version"], "4", "{name}");
    }
}
