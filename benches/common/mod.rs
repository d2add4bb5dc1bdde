//! Fixtures shared by the benchmarks: webhook bodies of any size grown from one real
//! Alertmanager alert (`data/one_alert.json`, 1.4 KB as sent), the 50-strategy config
//! (`data/strategies.yaml`) loaded by the service's own loader, and a fixed clock.

use std::path::Path;

use alertmanager_dingtalk::config::{self, Config};
use alertmanager_dingtalk::payload::{self, Notification};
use jiff::Timestamp;
use serde_json::{Value, json};

/// Alerts per notification: one is the usual group, ten a busy one, a hundred a large
/// one, and a thousand an outage. From about forty alerts on, the default template's text
/// passes DingTalk's 20000 bytes and rendering truncates.
pub const SIZES: [usize; 4] = [1, 10, 100, 1000];

/// Wednesday 2024-05-01 10:00 in Shanghai: inside office hours, outside night windows,
/// so the strategies' `active_time` windows are both open and closed.
pub fn now() -> Timestamp {
    "2024-05-01T02:00:00Z".parse().expect("a valid timestamp")
}

/// `data/strategies.yaml`, loaded as the service loads its config: compiled matchers,
/// templates and robots.
pub fn config() -> Config {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/strategies.yaml");
    config::load_with_env(&file, |_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// Teams the alerts are spread over: some have their own strategies early in the list,
/// some late, and some only reach the catch-alls at the end.
const TEAMS: [&str; 16] = [
    "platform", "db", "web", "payments", "data", "ml", "network", "search", "mobile", "storage",
    "security", "infra", "growth", "ads", "billing", "iot",
];

/// A webhook body of `n` alerts, compact as Alertmanager sends it. Each alert is the
/// fixture's, on its own instance and with its own team, severity and fingerprint, so the
/// alerts take different routes; the common labels and annotations are what they share.
pub fn webhook_body(n: usize) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_str(include_str!("../data/one_alert.json")).expect("valid JSON");
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

/// [`webhook_body`] parsed, as the webhook handler has it before routing.
pub fn notification(n: usize) -> Notification {
    payload::parse(&webhook_body(n)).expect("a valid payload")
}
