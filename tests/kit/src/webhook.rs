//! Alertmanager webhook bodies (version 4) to send the bridge: [`payload`], a small
//! group named alert by alert, for behaviour tests; [`webhook_body`], a group of any size
//! grown from one real Alertmanager alert (`benches/data/one_alert.json`, 1.4 KB as
//! sent), for benchmarks. Both are JSON text; nothing here parses them as the bridge does.

use serde_json::{Value, json};

/// A minimal valid webhook body: one alert per `(name, labels)` in `alerts`, all in one
/// group, with a summary annotation and a fingerprint derived from the name. The group's
/// key names its alerts, as Alertmanager's grouping by `alertname` would: payloads of
/// other alerts are other groups.
pub fn payload(status: &str, alerts: &[(&str, &[(&str, &str)])]) -> String {
    let names: Vec<&str> = alerts.iter().map(|(name, _)| *name).collect();
    let group_key = format!("{{}}:{{alertname=~\"{}\"}}", names.join("|"));
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, labels)| {
            let mut label_map = serde_json::Map::new();
            label_map.insert("alertname".into(), (*name).into());
            for (k, v) in *labels {
                label_map.insert((*k).into(), (*v).into());
            }
            json!({
                "status": status,
                "labels": label_map,
                "annotations": { "summary": format!("{name} needs attention") },
                "startsAt": "2024-05-01T00:00:00Z",
                "endsAt": if status == "resolved" { "2024-05-01T01:00:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": format!("fp-{name}"),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "dingtalk",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    })
    .to_string()
}

/// Like [`payload`], for one alert `name` without labels firing since `starts_at` (RFC
/// 3339): an alert that fires again after it resolved starts anew, and an Alertmanager HA
/// pair's copies carry the same `startsAt`.
pub fn payload_since(status: &str, name: &str, starts_at: &str) -> String {
    let mut body: Value = serde_json::from_str(&payload(status, &[(name, &[])])).expect("JSON");
    body["alerts"][0]["startsAt"] = starts_at.into();
    body.to_string()
}

/// Teams the alerts are spread over: in `benches/data/strategies.yaml` some have their own
/// strategies early in the list, some late, and some only reach the catch-alls at the end.
const TEAMS: [&str; 16] = [
    "platform", "db", "web", "payments", "data", "ml", "network", "search", "mobile", "storage",
    "security", "infra", "growth", "ads", "billing", "iot",
];

/// A webhook body of `n` alerts, compact as Alertmanager sends it. Each alert is the
/// fixture's, on its own instance and with its own team, severity and fingerprint, so the
/// alerts take different routes; the common labels and annotations are what they share.
pub fn webhook_body(n: usize) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_str(include_str!("../../../benches/data/one_alert.json"))
            .expect("valid JSON");
    let base = body["alerts"][0].clone();
    let base_instance = base["labels"]["instance"]
        .as_str()
        .expect("an instance label");
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            let mut alert = base.clone();
            let instance = format!("10.12.{}.{}:9100", i / 250, i % 250 + 1);
            let description = base["annotations"]["description"].as_str().unwrap_or("");
            alert["annotations"]["description"] =
                json!(description.replace(base_instance, &instance));
            let labels = &mut alert["labels"];
            labels["instance"] = json!(instance);
            labels["team"] = json!(TEAMS[i % TEAMS.len()]);
            labels["severity"] = json!(if i % 5 == 4 { "critical" } else { "warning" });
            alert["fingerprint"] = json!(format!("{:016x}", 0x3f1c_2a9b_0000_0000_u64 + i as u64));
            alert
        })
        .collect();
    body["alerts"] = Value::Array(alerts);
    if n > 1 {
        let labels = body["commonLabels"].as_object_mut().expect("commonLabels");
        for varying in ["instance", "team", "severity"] {
            labels.remove(varying);
        }
        let annotations = body["commonAnnotations"]
            .as_object_mut()
            .expect("commonAnnotations");
        annotations.remove("description");
    }
    serde_json::to_vec(&body).expect("serializable")
}
