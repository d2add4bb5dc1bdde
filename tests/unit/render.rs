//! `render::Renderer`: the message a robot receives for a group of alerts.

use std::collections::BTreeSet;

use alertmanager_dingtalk::dingtalk::{MAX_TEXT_BYTES, Mention, Message, MsgType, Robot, Secret};
use alertmanager_dingtalk::payload::{self, Notification};
use alertmanager_dingtalk::rate_window::RateLimit;
use alertmanager_dingtalk::render::{Renderer, TemplatePart, TemplateSource};
use jiff::tz::TimeZone;
use url::Url;

use crate::fixture;

const KEYWORD: &str = "HertzBeat";
const MOBILE: &str = "13800000000";
const EXTERNAL_URL: &str = "http://alertmanager.example.com:9093";

fn robot(keywords: &[&str], mobiles: &[&str]) -> Robot {
    Robot {
        name: "ops".to_owned(),
        api_url: Url::parse("https://oapi.dingtalk.com/robot/send").unwrap(),
        access_token: Secret::new("token"),
        secret: None,
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        mention: Mention {
            mobiles: mobiles.iter().map(|m| (*m).to_owned()).collect(),
            ..Mention::default()
        },
        rate_limit: RateLimit::DINGTALK,
        msgtype: MsgType::Markdown,
    }
}

fn renderer(templates: &[TemplateSource]) -> Renderer {
    Renderer::new(templates, TimeZone::get("Asia/Shanghai").unwrap())
        .unwrap_or_else(|errors| panic!("{errors:?}"))
}

/// Renders every alert of `notification` with `template` for `robot`.
fn render_all(
    renderer: &Renderer,
    template: &str,
    notification: &Notification,
    robot: &Robot,
) -> Message {
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    renderer.render(template, notification, &all, robot, &Mention::default())
}

/// Renders `fixture` with the built-in template and checks that the text contains every
/// one of `expected`.
fn check_text(fixture_name: &str, expected: &[&str]) {
    let message = render_all(
        &renderer(&[]),
        "default",
        &fixture(fixture_name),
        &robot(&[KEYWORD], &[]),
    );
    for part in expected {
        assert!(
            message.text.contains(part),
            "{fixture_name}: text should contain {part:?}:\n{}",
            message.text
        );
    }
}

/// The properties every message has, whatever it contains.
fn check_invariants(message: &Message, keyword: &str) {
    assert!(message.title.contains(keyword), "title: {}", message.title);
    assert!(message.text.contains(keyword), "text lacks {keyword}");
    assert!(
        message.text.len() <= MAX_TEXT_BYTES,
        "{} bytes",
        message.text.len()
    );
    assert!(
        !message.text.contains('\u{FFFD}'),
        "text has a broken character"
    );
    assert!(
        !message.title.contains('\u{FFFD}'),
        "title has a broken character"
    );
}

#[test]
fn firing_title_counts_the_alerts_and_names_them() {
    let message = render_all(
        &renderer(&[]),
        "default",
        &fixture("firing_3.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(message.title.starts_with("[FIRING:3]"), "{}", message.title);
    assert!(message.title.contains("HighCPUUsage"), "{}", message.title);
    assert_eq!(
        message.title,
        "[FIRING:3] HighCPUUsage · critical · HertzBeat"
    );
    check_invariants(&message, KEYWORD);
}

#[test]
fn firing_text_shows_every_alert() {
    check_text(
        "firing_3.json",
        &[
            "HighCPUUsage",
            // Summaries.
            "CPU usage above 90% on db-1.example.com:9100",
            "CPU usage above 90% on db-2.example.com:9100",
            "CPU usage above 90% on web-7.example.com:9100",
            // Descriptions.
            "CPU usage has been 97% for the last 5 minutes.",
            "db-2 的 CPU 使用率已连续 10 分钟超过 92%。",
            "Load is driven by the nightly report job.",
            // Labels other than those in the heading.
            "instance: db-1.example.com:9100",
            "instance: web-7.example.com:9100",
            "job: node",
            "team: db",
            // Start times in the configured zone.
            "2024-05-01 08:00:00 CST",
            "2024-05-01 08:05:30 CST",
            "2024-05-01 07:59:59 CST",
            // Links, unescaped.
            "http://prometheus.example.com:9090/graph?g0.expr=instance%3Anode_cpu%3Aratio+%3E+0.9&g0.tab=1",
            "g0.tab=1&db2",
            "g0.tab=1&web7",
            EXTERNAL_URL,
        ],
    );
}

#[test]
fn firing_alerts_show_no_end_time() {
    let message = render_all(
        &renderer(&[]),
        "default",
        &fixture("firing_3.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(!message.text.contains("ended"), "{}", message.text);
    assert!(!message.text.contains("0001-01-01"), "{}", message.text);
}

#[test]
fn resolved_group() {
    let message = render_all(
        &renderer(&[]),
        "default",
        &fixture("resolved_1.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(message.title.starts_with("[RESOLVED]"), "{}", message.title);
    assert!(message.title.contains("DiskWillFillIn4Hours"));
    check_invariants(&message, KEYWORD);
    check_text(
        "resolved_1.json",
        &[
            "Disk /var/lib/postgresql on db-1 will fill within 4 hours",
            "started: 2024-05-01 08:00:00 CST",
            "ended: 2024-05-01 09:30:00 CST",
            "mountpoint: /var/lib/postgresql",
        ],
    );
}

#[test]
fn only_the_given_alerts_are_rendered() {
    let notification = fixture("firing_3.json");
    let message = renderer(&[]).render(
        "default",
        &notification,
        &[0, 2],
        &robot(&[KEYWORD], &[]),
        &Mention::default(),
    );
    assert!(message.title.starts_with("[FIRING:2]"), "{}", message.title);
    assert!(message.text.contains("db-1.example.com"));
    assert!(message.text.contains("web-7.example.com"));
    assert!(!message.text.contains("db-2.example.com"));
    assert!(!message.text.contains("more alert"), "nothing is omitted");
}

fn short_template() -> TemplateSource {
    TemplateSource {
        name: "short".to_owned(),
        title: "[{{ status|upper }}] {{ alertname }}".to_owned(),
        text: "{% for a in alerts %}- {{ a.name }}: {{ a.annotations.summary }}\n{% endfor %}"
            .to_owned(),
    }
}

#[test]
fn the_keyword_is_added_when_a_template_omits_it() {
    let message = render_all(
        &renderer(&[short_template()]),
        "short",
        &fixture("firing_3.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(
        message.title.starts_with("[FIRING] HighCPUUsage"),
        "{}",
        message.title
    );
    assert!(
        message
            .text
            .starts_with("- HighCPUUsage: CPU usage above 90%")
    );
    check_invariants(&message, KEYWORD);
}

#[test]
fn any_of_the_robots_keywords_will_do() {
    let template = TemplateSource {
        name: "mentions-second".to_owned(),
        title: "HertzBeat: {{ alertname }}".to_owned(),
        text: "HertzBeat: {{ alerts|length }} alerts".to_owned(),
    };
    let message = render_all(
        &renderer(&[template]),
        "mentions-second",
        &fixture("firing_3.json"),
        &robot(&["告警", KEYWORD], &[]),
    );
    assert_eq!(message.title, "HertzBeat: HighCPUUsage");
    assert_eq!(message.text, "HertzBeat: 3 alerts");
}

#[test]
fn a_template_that_fails_while_rendering_falls_back_to_the_built_in_one() {
    let broken = TemplateSource {
        name: "broken".to_owned(),
        title: "{{ alertname }}".to_owned(),
        text: "{{ no_such_function() }}".to_owned(),
    };
    let notification = fixture("firing_3.json");
    let robot = robot(&[KEYWORD], &[]);
    let renderer = renderer(&[broken]);
    let fallback = render_all(&renderer, "broken", &notification, &robot);
    let builtin = render_all(&renderer, "default", &notification, &robot);
    assert_eq!(fallback, builtin);
}

#[test]
fn a_custom_default_template_replaces_the_built_in_one() {
    let mut custom = short_template();
    custom.name = "default".to_owned();
    let message = render_all(
        &renderer(&[custom]),
        "default",
        &fixture("firing_3.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(
        message.text.starts_with("- HighCPUUsage:"),
        "{}",
        message.text
    );
}

#[test]
fn mentions_are_in_the_text_and_the_message() {
    let notification = fixture("firing_3.json");
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let message = render_all(&renderer(&[]), "default", &notification, &robot);
    assert!(
        message.text.contains(&format!("@{MOBILE}")),
        "{}",
        message.text
    );
    assert_eq!(message.mention.mobiles, vec![MOBILE]);
    assert!(!message.mention.all);

    let strategy_mention = Mention {
        mobiles: vec!["13900000000".to_owned(), MOBILE.to_owned()],
        user_ids: vec!["manager01".to_owned()],
        all: false,
    };
    let message = renderer(&[]).render(
        "default",
        &notification,
        &[0, 1, 2],
        &robot,
        &strategy_mention,
    );
    assert_eq!(message.mention.mobiles, vec![MOBILE, "13900000000"]);
    assert_eq!(message.mention.user_ids, vec!["manager01"]);
    for at in ["@13800000000", "@13900000000", "@manager01"] {
        assert!(message.text.contains(at), "{at} in {}", message.text);
    }
    assert_eq!(message.text.matches("@13800000000").count(), 1);
}

#[test]
fn a_template_cannot_drop_the_mentions() {
    let message = render_all(
        &renderer(&[short_template()]),
        "short",
        &fixture("firing_3.json"),
        &robot(&[KEYWORD], &[MOBILE]),
    );
    assert!(message.text.contains("@13800000000"), "{}", message.text);
}

/// A notification of `count` firing alerts, each on its own instance, with long
/// descriptions in Chinese so that a cut in the middle of a character would show.
fn many_alerts(count: usize, description: &str) -> Notification {
    let alerts: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "status": "firing",
                "labels": {
                    "alertname": "NodeFilesystemAlmostFull",
                    "instance": instance(i),
                    "job": "node",
                    "severity": "warning",
                },
                "annotations": {
                    "summary": format!("{} 磁盘空间不足", instance(i)),
                    "description": description,
                },
                "startsAt": "2024-05-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=node_filesystem_avail_bytes",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    let body = serde_json::json!({
        "version": "4",
        "status": "firing",
        "receiver": "dingtalk-ops",
        "groupLabels": { "alertname": "NodeFilesystemAlmostFull" },
        "commonLabels": { "alertname": "NodeFilesystemAlmostFull", "job": "node" },
        "externalURL": EXTERNAL_URL,
        "alerts": alerts,
    });
    payload::parse(body.to_string().as_bytes()).unwrap()
}

/// A unique name per alert; a fixed width so no name is part of another.
fn instance(i: usize) -> String {
    format!("node-{i:04}.example.com:9100")
}

#[test]
fn many_alerts_are_cut_to_fit_with_a_count_of_the_rest() {
    const COUNT: usize = 1000;
    let description =
        "根目录文件系统剩余空间低于百分之五，预计两小时内写满，请尽快清理日志。".repeat(4);
    let notification = many_alerts(COUNT, &description);
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let message = render_all(&renderer(&[]), "default", &notification, &robot);

    check_invariants(&message, KEYWORD);
    assert!(message.text.contains("@13800000000"));
    let shown: BTreeSet<usize> = (0..COUNT)
        .filter(|i| message.text.contains(&instance(*i)))
        .collect();
    assert!(!shown.is_empty());
    // The first alerts are the ones shown, each in full.
    assert_eq!(shown, (0..shown.len()).collect());
    assert_eq!(
        message.text.matches(description.as_str()).count(),
        shown.len()
    );
    let hidden = COUNT - shown.len();
    let notice = format!("…and {hidden} more alerts · [see all in Alertmanager]({EXTERNAL_URL})");
    assert!(
        message.text.contains(&notice),
        "no {notice:?} in\n{}",
        message.text
    );
    assert_eq!(
        message.title,
        "[FIRING:1000] NodeFilesystemAlmostFull · warning · HertzBeat"
    );

    // As many alerts as fit are shown: one more would not have fitted.
    let alert_size = {
        let one = renderer(&[]).render("default", &notification, &[0], &robot, &Mention::default());
        let two = renderer(&[]).render(
            "default",
            &notification,
            &[0, 1],
            &robot,
            &Mention::default(),
        );
        two.text.len() - one.text.len()
    };
    assert!(
        MAX_TEXT_BYTES - message.text.len() < alert_size,
        "{} bytes left unused with alerts of {alert_size} bytes",
        MAX_TEXT_BYTES - message.text.len()
    );
}

#[test]
fn alerts_cut_upstream_are_counted_too() {
    // Alertmanager's `max_alerts` left out two alerts of this group.
    let message = render_all(
        &renderer(&[]),
        "default",
        &fixture("newer_fields.json"),
        &robot(&[KEYWORD], &[]),
    );
    assert!(
        message.text.contains(&format!(
            "…and 2 more alerts · [see all in Alertmanager]({EXTERNAL_URL})"
        )),
        "{}",
        message.text
    );

    let mut one_left_out = fixture("newer_fields.json");
    one_left_out.truncated_alerts = 1;
    one_left_out.external_url.clear();
    let message = render_all(
        &renderer(&[]),
        "default",
        &one_left_out,
        &robot(&[KEYWORD], &[]),
    );
    assert!(
        message.text.contains("…and 1 more alert"),
        "{}",
        message.text
    );
    assert!(!message.text.contains("more alerts"), "{}", message.text);
    assert!(
        !message.text.contains("see all in Alertmanager"),
        "{}",
        message.text
    );
}

#[test]
fn one_huge_alert_is_cut_and_keeps_keyword_and_mentions() {
    // 50 KB of three-byte characters in one description.
    let description = "磁".repeat(50_000 / 3 + 1);
    let notification = many_alerts(1, &description);
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let message = render_all(&renderer(&[]), "default", &notification, &robot);
    check_invariants(&message, KEYWORD);
    assert!(message.text.contains("@13800000000"), "mention lost");
    assert!(message.text.contains(&instance(0)));
    assert!(message.text.contains('…'), "the cut is marked");
    assert!(message.text.len() > MAX_TEXT_BYTES / 2, "cut far too short");

    // Followed by more alerts: those are counted.
    let mut notification = many_alerts(3, "short");
    notification.alerts[0]
        .annotations
        .insert("description".to_owned(), description);
    let message = render_all(&renderer(&[]), "default", &notification, &robot);
    check_invariants(&message, KEYWORD);
    assert!(
        message.text.contains("…and 2 more alerts"),
        "{}",
        &message.text[message.text.len() - 300..]
    );
    assert!(message.text.contains("@13800000000"), "mention lost");
}

#[test]
fn a_custom_template_is_cut_to_fit_too() {
    let notification = many_alerts(1000, &"长描述".repeat(100));
    let template = TemplateSource {
        name: "dump".to_owned(),
        title: "{{ alertname }}".to_owned(),
        text: "{% for a in alerts %}{{ a.annotations.description }} {{ a.labels.instance }}\n{% endfor %}".to_owned(),
    };
    let message = render_all(
        &renderer(&[template]),
        "dump",
        &notification,
        &robot(&[KEYWORD], &[]),
    );
    check_invariants(&message, KEYWORD);
    assert!(message.text.contains("more alerts"));
}

#[test]
fn a_long_title_is_cut_at_a_character_boundary() {
    let mut notification = fixture("firing_3.json");
    notification
        .group_labels
        .insert("alertname".to_owned(), "超长的告警名称".repeat(40));
    let message = render_all(
        &renderer(&[]),
        "default",
        &notification,
        &robot(&[KEYWORD], &[]),
    );
    check_invariants(&message, KEYWORD);
    assert!(
        message.title.len() <= 256 + " · HertzBeat".len(),
        "{}",
        message.title.len()
    );
}

/// Compiles a template with a syntax error and checks where it is reported.
fn check_template_error(title: &str, text: &str, part: TemplatePart, line: usize) {
    let source = TemplateSource {
        name: "broken".to_owned(),
        title: title.to_owned(),
        text: text.to_owned(),
    };
    let errors = Renderer::new(&[source], TimeZone::UTC).expect_err("should not compile");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(error.name, "broken");
    assert_eq!(error.part, part);
    assert_eq!(error.line, Some(line), "{error:?}");
    assert!(!error.message.is_empty());
    assert!(error.to_string().contains("broken"), "{error}");
}

#[test]
fn template_syntax_errors_name_the_part_and_line() {
    check_template_error("{{ alertname", "fine", TemplatePart::Title, 1);
    check_template_error(
        "fine",
        "first line\nsecond line\n{% endfor %}\nfourth line",
        TemplatePart::Text,
        3,
    );
    // An unclosed block is reported where the input ends.
    check_template_error(
        "fine",
        "{% for a in alerts %}\n{{ a.name }}\n{{ a.severity }}",
        TemplatePart::Text,
        3,
    );
    check_template_error(
        "fine",
        "first line\n{{ alerts | }}\nthird line",
        TemplatePart::Text,
        2,
    );
}

#[test]
fn every_template_error_is_reported() {
    let sources = [
        TemplateSource {
            name: "a".to_owned(),
            title: "{% if %}".to_owned(),
            text: "{{".to_owned(),
        },
        TemplateSource {
            name: "b".to_owned(),
            title: "ok".to_owned(),
            text: "{% endfor %}".to_owned(),
        },
    ];
    let errors = Renderer::new(&sources, TimeZone::UTC).expect_err("should not compile");
    let found: Vec<(&str, TemplatePart)> =
        errors.iter().map(|e| (e.name.as_str(), e.part)).collect();
    assert_eq!(
        found,
        vec![
            ("a", TemplatePart::Title),
            ("a", TemplatePart::Text),
            ("b", TemplatePart::Text)
        ]
    );
}

#[test]
fn has_template() {
    let renderer = renderer(&[short_template()]);
    assert!(renderer.has_template("default"));
    assert!(renderer.has_template("short"));
    assert!(!renderer.has_template("fancy"));
}
