//! The built-in templates, `default` and `default-zh`, action cards, and the helpers they
//! use (`duration`, `silence_url`): golden files of what a group sees for firing,
//! resolved, mixed, 1000 and Chinese-and-emoji alerts, and of Grafana's and HertzBeat's
//! payloads, in `tests/data/snapshots/`. `UPDATE_SNAPSHOTS=1 cargo test
//! --test unit templates` rewrites them after an intended change; review the diff.

use std::path::PathBuf;

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::dingtalk::{MAX_BUTTON_BYTES, Message, MsgType, Robot, encode};
use alertmanager_dingtalk::ingest::{self, Notification, Status};
use alertmanager_dingtalk::render::{Extras, Renderer, TemplateSource};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use crate::sources::{hertzbeat_payload, source_payload};
use crate::{fixture, load_config, robot};

/// Alerts with Chinese and emoji in labels and annotations.
const CHINESE: &str = r#"{
  "version": "4", "status": "firing", "receiver": "运维", "groupKey": "{}:{alertname=\"磁盘空间不足\"}",
  "groupLabels": {"alertname": "磁盘空间不足"}, "commonLabels": {"alertname": "磁盘空间不足", "severity": "严重"},
  "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com:9093",
  "alerts": [{
    "status": "firing", "fingerprint": "0f1e2d3c4b5a6978",
    "labels": {"alertname": "磁盘空间不足", "severity": "严重", "机房": "杭州-2 🔥", "instance": "db-1"},
    "annotations": {"summary": "磁盘 /data 使用率 97% 💾", "description": "请尽快清理"},
    "startsAt": "2024-05-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=disk"
  }]
}"#;

fn snapshot_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/snapshots/{name}"))
}

/// Renders every alert of `notification` with the built-in `template`, 1 h 5 min after
/// the first alert started.
fn render(
    template: &str,
    notification: &Notification,
    extra: &[TemplateSource],
) -> (String, String) {
    let message = render_for(template, notification, extra, &robot(&["HertzBeat"], &[]));
    (message.title, message.text)
}

fn render_for(
    template: &str,
    notification: &Notification,
    extra: &[TemplateSource],
    robot: &Robot,
) -> Message {
    let renderer = Renderer::new(extra, TimeZone::get("Asia/Shanghai").unwrap()).unwrap();
    let now = notification.alerts[0].starts_at + SignedDuration::from_mins(65);
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    renderer.render(template, notification, &all, robot, &Extras::default(), now)
}

fn check_snapshot(name: &str, template: &str, notification: &Notification) {
    let (title, text) = render(template, notification, &[]);
    compare_with_snapshot(name, &format!("{title}\n\n{text}\n"));
}

/// Compares `rendered` with the golden file `name`, or writes it with `UPDATE_SNAPSHOTS`.
fn compare_with_snapshot(name: &str, rendered: &str) {
    let file = snapshot_file(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&file, rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            file.display()
        )
    });
    assert_eq!(rendered, expected, "{name} differs from {}", file.display());
}

fn chinese() -> Notification {
    ingest::parse(CHINESE.as_bytes()).unwrap()
}

/// The firing fixture with its second alert resolved 30 minutes after it started.
fn mixed() -> Notification {
    let mut notification = fixture("firing_3.json");
    let alert = &mut notification.alerts[1];
    alert.status = Status::Resolved;
    alert.ends_at = Some(alert.starts_at + SignedDuration::from_mins(30));
    notification
}

/// The fixtures of the golden files: `(name, group)`.
fn fixtures() -> Vec<(&'static str, Notification)> {
    vec![
        ("firing", fixture("firing_3.json")),
        ("resolved", fixture("resolved_1.json")),
        ("mixed", mixed()),
        ("chinese", chinese()),
        ("1000", ingest::parse(&testkit::webhook_body(1000)).unwrap()),
        ("grafana", grafana("grafana.json")),
        ("grafana-panel", grafana("grafana-panel.json")),
        ("hertzbeat", hertzbeat_payload("hertzbeat-firing.txt")),
        (
            "hertzbeat-resolved",
            hertzbeat_payload("hertzbeat-resolved.txt"),
        ),
    ]
}

fn grafana(name: &str) -> Notification {
    ingest::grafana::parse(&source_payload(name)).unwrap()
}

#[test]
fn built_in_template_snapshots() {
    for (name, notification) in fixtures() {
        for template in ["default", "default-zh"] {
            check_snapshot(&format!("{template}.{name}.md"), template, &notification);
        }
    }
}

#[test]
fn action_card_snapshots() {
    let mut card_robot = robot(&["HertzBeat"], &[]);
    card_robot.msgtype = MsgType::ActionCard;
    for (name, notification) in fixtures() {
        let card = render_for("default", &notification, &[], &card_robot);
        let body = encode(MsgType::ActionCard, &card);
        assert!(body.len() < 20_000, "{name}: {} bytes", body.len());
        check_snapshot_json(&format!("actionCard.{name}.json"), &body);
    }
}

#[test]
fn default_zh_speaks_chinese() {
    let (title, text) = render("default-zh", &fixture("firing_3.json"), &[]);
    assert!(title.starts_with("[告警:"), "{title}");
    for part in [
        "级别 critical",
        "开始时间: 2024-05-01 08:00:00 CST",
        "已持续: 1h 5m",
        "[静默](",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let (title, text) = render("default-zh", &fixture("resolved_1.json"), &[]);
    assert!(title.starts_with("[已恢复]"), "{title}");
    assert!(
        text.contains("结束时间: ") && text.contains("持续时间: "),
        "{text}"
    );
}

/// A template that prints one helper of the first alert.
fn helper(expression: &str) -> TemplateSource {
    TemplateSource {
        name: "helper".to_owned(),
        title: "t".to_owned(),
        text: format!("<{{{{ {expression} }}}}>"),
    }
}

#[test]
fn duration_counts_to_now_while_firing_and_to_the_end_once_resolved() {
    let (_, text) = render(
        "helper",
        &fixture("firing_3.json"),
        &[helper("alerts[0].duration")],
    );
    assert!(text.starts_with("<1h 5m>"), "{text}");
    // The resolved fixture ended 1 h 30 min after it started; `render` is 1 h 5 min in.
    let (_, text) = render(
        "helper",
        &fixture("resolved_1.json"),
        &[helper("alerts[0].duration")],
    );
    assert!(text.starts_with("<1h 30m>"), "{text}");
}

#[test]
fn silence_url_opens_alertmanagers_new_silence_page_with_the_labels_as_matchers() {
    let mut notification = fixture("firing_3.json");
    notification.alerts[0]
        .labels
        .insert("path".to_owned(), r#"C:\ "x""#.to_owned());
    let (_, text) = render("helper", &notification, &[helper("alerts[0].silence_url")]);
    let url = text.trim_start_matches('<').split('>').next().unwrap();
    let (page, filter) = url.split_once("?filter=").unwrap();
    assert_eq!(page, "http://alertmanager.example.com:9093/#/silences/new");
    assert!(
        filter
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'%'),
        "not fully encoded: {filter}"
    );
    let decoded = percent_encoding::percent_decode_str(filter)
        .decode_utf8()
        .unwrap();
    assert_eq!(
        decoded,
        r#"{alertname="HighCPUUsage",instance="db-1.example.com:9100",job="node",path="C:\\ \"x\"",severity="critical",team="db"}"#
    );

    notification.external_url.clear();
    let (_, text) = render("helper", &notification, &[helper("alerts[0].silence_url")]);
    assert!(text.starts_with("<>"), "{text}");
}

#[test]
fn an_action_card_robot_gets_buttons_to_alertmanager_a_silence_and_the_source() {
    let mut card_robot = robot(&["HertzBeat"], &[]);
    card_robot.msgtype = MsgType::ActionCard;
    let notification = fixture("firing_3.json");
    let card = render_for("default", &notification, &[], &card_robot);

    let titles: Vec<&str> = card.buttons.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(
        titles,
        ["View in Alertmanager · HertzBeat", "Silence", "Source"]
    );
    assert_eq!(card.buttons[0].url, notification.external_url);
    assert!(card.buttons[1].url.contains("/#/silences/new?filter=%7B"));
    assert_eq!(card.buttons[2].url, notification.alerts[0].generator_url);
    let button_bytes: usize = card
        .buttons
        .iter()
        .map(|b| b.title.len() + b.url.len())
        .sum();
    assert!(button_bytes <= MAX_BUTTON_BYTES);
    let body = encode(MsgType::ActionCard, &card);
    assert!(body.contains("\"msgtype\":\"actionCard\""));

    // The same group for a markdown robot carries no buttons.
    let markdown = render_for("default", &notification, &[], &robot(&["HertzBeat"], &[]));
    assert!(markdown.buttons.is_empty());
}

/// Compares a JSON body, pretty-printed, with the golden file `name`.
fn check_snapshot_json(name: &str, body: &str) {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    compare_with_snapshot(name, &(serde_json::to_string_pretty(&json).unwrap() + "\n"));
}

#[test]
fn a_strategy_may_send_another_message_type_than_its_robot() {
    let config = load_config(
        "robots:\n  ops:\n    access_token: abc\n    msgtype: text\nstrategies:\n  \
         - name: cards\n    matchers: ['severity=\"critical\"']\n    robots: [ops]\n    msgtype: actionCard\n    continue: true\n  \
         - name: plain\n    robots: [ops]\n",
    );
    let notification = fixture("firing_3.json");
    let now = notification.alerts[0].starts_at + SignedDuration::from_mins(65);
    let plan = plan::plan(&config, &notification, now);
    let body = |strategy: &str| {
        let planned = plan
            .messages
            .iter()
            .find(|m| m.strategy == strategy)
            .unwrap();
        let robot = &config.robots[&planned.robot];
        serde_json::from_str::<serde_json::Value>(&encode(robot.msgtype, &planned.message)).unwrap()
    };
    let card = body("cards");
    assert_eq!(card["msgtype"], "actionCard");
    assert_eq!(card["actionCard"]["btns"].as_array().unwrap().len(), 3);
    assert_eq!(body("plain")["msgtype"], "text");
}
