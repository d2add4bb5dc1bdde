//! The preview's built-in payloads: what Alertmanager sends for a firing group, a
//! resolved one, a 300-alert group and alerts with Chinese labels. Their alerts started
//! 17 minutes before `now`, so durations read as they would in a real group.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// `(name, what the page calls it)` of every sample, in the order the page offers them.
pub(super) const SAMPLES: [(&str, &str); 4] = [
    ("firing", "Firing: 2 alerts"),
    ("resolved", "Resolved: 1 alert"),
    ("storm", "A 300-alert group"),
    ("chinese", "Chinese labels"),
];

/// The sample `name` as Alertmanager would POST it, pretty-printed; `None` if there is
/// no such sample.
pub(super) fn sample(name: &str, now: Timestamp) -> Option<String> {
    let started = now - SignedDuration::from_mins(17);
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
