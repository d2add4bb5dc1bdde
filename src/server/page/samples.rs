//! The preview's built-in payloads: what Alertmanager sends for a firing group, a
//! resolved one, a 300-alert group and alerts with Chinese labels; what Grafana's webhook
//! contact point sends for an alert with its panel, and what HertzBeat's webhook template
//! writes (stray comma included). Their alerts started 17 minutes before `now`, so
//! durations read as they would in a real group.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::ingest::Source;

/// `(name, what the page calls it)` of every sample, in the order the page offers them.
pub(super) const SAMPLES: [(&str, &str); 6] = [
    ("firing", "Firing: 2 alerts"),
    ("resolved", "Resolved: 1 alert"),
    ("storm", "A 300-alert group"),
    ("chinese", "Chinese labels"),
    ("grafana", "Grafana: 1 alert with its panel"),
    ("hertzbeat", "HertzBeat: 1 alert"),
];

/// Who sends the sample `name`.
pub(super) fn source_of(name: &str) -> Source {
    match name {
        "grafana" => Source::Grafana,
        "hertzbeat" => Source::HertzBeat,
        _ => Source::Alertmanager,
    }
}

/// The sample `name` as its source would POST it (HertzBeat's times in `hertzbeat_zone`);
/// `None` if there is no such sample.
pub(super) fn sample(name: &str, now: Timestamp, hertzbeat_zone: &TimeZone) -> Option<String> {
    let started = now - SignedDuration::from_mins(17);
    match name {
        "grafana" => return Some(grafana(started)),
        "hertzbeat" => return Some(hertzbeat(started, hertzbeat_zone)),
        _ => {}
    }
    let alert = |status: &str, labels: Value, annotations: Value, fingerprint: usize| {
        let ends = if status == "resolved" {
            now.to_string()
        } else {
            "0001-01-01T00:00:00Z".to_owned()
        };
        json!({
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": started.to_string(),
            "endsAt": ends,
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": format!("{fingerprint:016x}"),
        })
    };
    let (alertname, severity, alerts) = match name {
        "firing" => (
            "InstanceDown",
            "critical",
            (1..=2)
                .map(|i| {
                    alert(
                        "firing",
                        json!({"alertname": "InstanceDown", "severity": "critical", "job": "node", "instance": format!("web-{i}:9100")}),
                        json!({"summary": format!("web-{i}:9100 is down"), "description": "The target has not answered scrapes for 5 minutes."}),
                        i,
                    )
                })
                .collect::<Vec<_>>(),
        ),
        "resolved" => (
            "HighLatency",
            "warning",
            vec![alert(
                "resolved",
                json!({"alertname": "HighLatency", "severity": "warning", "job": "api", "instance": "api-1:8080"}),
                json!({"summary": "p99 latency of api-1 is back under 500 ms"}),
                3,
            )],
        ),
        "storm" => (
            "PodCrashLooping",
            "critical",
            (0..300)
                .map(|i| {
                    alert(
                        "firing",
                        json!({"alertname": "PodCrashLooping", "severity": "critical", "namespace": "shop", "pod": format!("checkout-{i:03}")}),
                        json!({"summary": format!("checkout-{i:03} restarted 5 times in 10 minutes")}),
                        1000 + i,
                    )
                })
                .collect(),
        ),
        "chinese" => (
            "磁盘空间不足",
            "严重",
            vec![alert(
                "firing",
                json!({"alertname": "磁盘空间不足", "severity": "严重", "机房": "杭州-2 🔥", "instance": "db-1"}),
                json!({"summary": "磁盘 /data 使用率 97% 💾", "description": "请尽快清理"}),
                4,
            )],
        ),
        _ => return None,
    };
    let status = if name == "resolved" {
        "resolved"
    } else {
        "firing"
    };
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "dingtalk",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": severity},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": alerts,
    });
    serde_json::to_string_pretty(&body).ok()
}

/// A Grafana webhook body for one firing alert, in the shape of the example in Grafana's
/// webhook notifier documentation (grafana.com/docs/grafana/latest/alerting/configure-
/// notifications/manage-contact-points/integrations/webhook-notifier/), with a panel
/// image as Grafana attaches it when image rendering is set up.
fn grafana(started: Timestamp) -> String {
    // Written out rather than built with `json!`, which takes kilobytes of code per body.
    format!(
        r#"{{
  "receiver": "dingtalk",
  "status": "firing",
  "orgId": 1,
  "alerts": [
    {{
      "status": "firing",
      "labels": {{ "alertname": "High memory usage", "team": "blue", "zone": "us-1" }},
      "annotations": {{
        "summary": "Memory usage of us-1 is above 90 %",
        "runbook_url": "https://runbooks.example.com/memory"
      }},
      "startsAt": "{started}",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "{GRAFANA}/alerting/grafana/f7a2c1/view?orgId=1",
      "fingerprint": "c6eadffa33fcdf37",
      "silenceURL": "{GRAFANA}/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DHigh+memory+usage&matcher=team%3Dblue&matcher=zone%3Dus-1&orgId=1",
      "dashboardURL": "{GRAFANA}/d/a1b2c3?orgId=1",
      "panelURL": "{GRAFANA}/d/a1b2c3?orgId=1&viewPanel=4",
      "values": {{ "B": 92.6, "C": 1 }},
      "valueString": "[ var='B' labels={{zone=us-1}} value=92.6 ], [ var='C' labels={{zone=us-1}} value=1 ]",
      "imageURL": "{GRAFANA}/public/img/attachments/p4.png"
    }}
  ],
  "groupLabels": {{ "alertname": "High memory usage" }},
  "commonLabels": {{ "alertname": "High memory usage", "team": "blue", "zone": "us-1" }},
  "commonAnnotations": {{}},
  "externalURL": "{GRAFANA}/",
  "version": "1",
  "groupKey": "{{}}/{{}}:{{alertname=\"High memory usage\"}}",
  "truncatedAlerts": 0,
  "title": "[FIRING:1] High memory usage (blue us-1)",
  "state": "alerting",
  "message": "**Firing**\n\nValue: B=92.6, C=1\nLabels:\n - alertname = High memory usage\n"
}}
"#
    )
}

/// The Grafana of the sample.
const GRAFANA: &str = "https://grafana.example.com";

/// What HertzBeat's webhook template (`2-WebhookTemplate.txt`) writes, with times in
/// `zone`, for one firing alert without annotations: the comma after `startAt` it leaves is kept, as HertzBeat sends it.
fn hertzbeat(started: Timestamp, zone: &TimeZone) -> String {
    let started = started
        .to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    format!(
        r#"{{
  "title": "🔔 HertzBeat Alert Notification",
  "status": "firing",
  "commonLabels": {{
    "severity": "❤️ Critical",
    "alertName": "HighCpuUsage"
  }},
  "alerts": [
    {{
      "index": 1,
      "labels": {{
        "alertname": "HighCpuUsage",
        "instance": "db-1:22",
        "severity": "critical"
      }},
      "content": "CPU usage of db-1 is 93.5%, above 90%",
      "triggerTimes": 3,
      "startAt": "{started}",
    }}
  ],
  "commonAnnotations": {{
  }}
}}
"#
    )
}
