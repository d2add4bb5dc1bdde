//! Mentions taken from alert labels (`mention.mobiles_from_label`,
//! `mention.user_ids_from_label` of a strategy): merged with the static ones, each person
//! once, values that are no phone number or user id left out, never `@all`.

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::config::load_with_env;
use alertmanager_dingtalk::ingest;
use alertmanager_dingtalk::route::LabelMentions;
use jiff::Timestamp;

fn alert(labels: &str) -> String {
    format!(
        r#"{{"status": "firing", "labels": {{"alertname": "DiskFull", {labels}}}, "annotations": {{}},
            "startsAt": "2024-05-01T00:00:00Z", "fingerprint": "{}"}}"#,
        labels.len()
    )
}

fn notification(alerts: &[&str]) -> ingest::Notification {
    let alerts: Vec<String> = alerts.iter().map(|a| alert(a)).collect();
    let body = format!(
        r#"{{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
            "groupLabels": {{}}, "commonLabels": {{}}, "commonAnnotations": {{}}, "externalURL": "",
            "alerts": [{}]}}"#,
        alerts.join(",")
    );
    ingest::parse(body.as_bytes()).unwrap()
}

#[test]
fn label_values_are_mentioned_once_and_only_when_they_look_right() {
    let from = LabelMentions {
        mobiles: Some("owner_mobile".to_owned()),
        user_ids: Some("owner".to_owned()),
    };
    let n = notification(&[
        r#""owner_mobile": "13800000001", "owner": "zhangsan""#,
        r#""owner_mobile": "13800000001", "owner": "lisi""#,
        r#""owner_mobile": "+86-139-0000-0002""#,
        r#""owner_mobile": "[click](http://evil.example)", "owner": "two words""#,
        r#""owner_mobile": "123", "owner": "x@all""#,
    ]);
    let mention = from.of(&n.alerts);
    assert_eq!(mention.mobiles, ["13800000001", "+86-139-0000-0002"]);
    assert_eq!(mention.user_ids, ["zhangsan", "lisi"]);
    assert!(!mention.all);
}

#[test]
fn a_strategy_mentions_the_owners_of_its_alerts_beside_its_own_people() {
    let dir = std::env::temp_dir().join(format!("amd-mentions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "robots:\n  ops:\n    access_token: abc\nstrategies:\n  - name: owners\n    robots: [ops]\n    \
         mention: { mobiles: ['13800000009', '13800000001'], mobiles_from_label: owner_mobile }\n",
    )
    .unwrap();
    let config = load_with_env(&file, |_| None).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let n = notification(&[
        r#""owner_mobile": "13800000001""#,
        r#""owner_mobile": "13800000002""#,
    ]);

    let plan = plan::plan(&config, &n, Timestamp::UNIX_EPOCH);

    let message = &plan.messages[0].message;
    assert_eq!(
        message.mention.mobiles,
        ["13800000009", "13800000001", "13800000002"]
    );
    assert!(!message.mention.all);
    for mobile in &message.mention.mobiles {
        assert!(
            message.text.contains(&format!("@{mobile}")),
            "{}",
            message.text
        );
    }
}

#[test]
fn mentioning_people_in_an_action_card_is_warned_about() {
    let dir = std::env::temp_dir().join(format!("amd-card-mentions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "robots:\n  cards:\n    access_token: abc\n    msgtype: actionCard\n    mention: { mobiles: ['13800000009'] }\n  \
         plain:\n    access_token: def\nstrategies:\n  - name: owners\n    robots: [plain]\n    msgtype: actionCard\n    \
         mention: { mobiles_from_label: owner_mobile }\n  - name: quiet\n    robots: [cards]\n",
    )
    .unwrap();
    let config = load_with_env(&file, |_| None).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("robot `cards` sends action cards"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].starts_with("strategy `owners` mentions people"),
        "{warnings:#?}"
    );
}
