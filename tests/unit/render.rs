//! `render::Renderer`: the message a robot receives for a group of alerts.

use std::collections::BTreeSet;

use alertmanager_dingtalk::dingtalk::{
    MAX_TEXT_BYTES, MAX_TITLE_BYTES, MESSAGE_BUDGET, Mention, Message, Robot,
};
use alertmanager_dingtalk::ingest::{self, Notification};
use alertmanager_dingtalk::render::{Extras, Renderer, TemplatePart, TemplateSource, shorten};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::{fixture, robot};

const KEYWORD: &str = "HertzBeat";
const MOBILE: &str = "13800000000";
const EXTERNAL_URL: &str = "http://alertmanager.example.com:9093";

/// When the tests render: after every fixture's alerts started.
fn now() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
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
    renderer.render(
        template,
        notification,
        &all,
        robot,
        &Extras::default(),
        now(),
    )
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
        message.size() <= MESSAGE_BUDGET,
        "title and text: {} bytes",
        message.size()
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
        &Extras::default(),
        now(),
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

    let strategy = Extras {
        mention: Mention {
            mobiles: vec!["13900000000".to_owned(), MOBILE.to_owned()],
            user_ids: vec!["manager01".to_owned()],
            all: false,
        },
        msgtype: None,
        actions: None,
        ..Extras::default()
    };
    let message = renderer(&[]).render(
        "default",
        &notification,
        &[0, 1, 2],
        &robot,
        &strategy,
        now(),
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
    ingest::parse(body.to_string().as_bytes()).unwrap()
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
        let one = renderer(&[]).render(
            "default",
            &notification,
            &[0],
            &robot,
            &Extras::default(),
            now(),
        );
        let two = renderer(&[]).render(
            "default",
            &notification,
            &[0, 1],
            &robot,
            &Extras::default(),
            now(),
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

/// A template whose text is the keyword followed by each alert's description, so that the
/// size of the text with any number of alerts shown is known exactly.
fn sized_template() -> TemplateSource {
    TemplateSource {
        name: "sized".to_owned(),
        title: "{{ alertname }}".to_owned(),
        text: "HertzBeat{% for a in alerts %}{{ a.annotations.description }}{% endfor %}"
            .to_owned(),
    }
}

/// The text of [`sized_template`] for alerts with descriptions of `lengths` bytes when the
/// first `shown` are shown.
fn sized_text(lengths: &[usize], shown: usize) -> String {
    let mut text = KEYWORD.to_owned();
    for &length in &lengths[..shown] {
        text.push_str(&"x".repeat(length));
    }
    let omitted = lengths.len() - shown;
    if omitted > 0 {
        let alerts = if omitted == 1 { "alert" } else { "alerts" };
        text.push_str(&format!(
            "\n\n…and {omitted} more {alerts} · [see all in Alertmanager]({EXTERNAL_URL})"
        ));
    }
    text
}

/// Renders alerts with descriptions of `lengths` bytes and checks that the message shows
/// every alert if they fit, and otherwise the most that fit: the longest prefix whose text
/// is within the limit (with these sizes the text grows with every alert shown).
fn check_fits(lengths: &[usize]) -> Message {
    let count = lengths.len();
    let mut notification = many_alerts(count, "");
    for (alert, &length) in notification.alerts.iter_mut().zip(lengths) {
        alert
            .annotations
            .insert("description".to_owned(), "x".repeat(length));
    }
    let fits = |shown| sized_text(lengths, shown).len() <= MAX_TEXT_BYTES;
    let expected = if fits(count) {
        count
    } else {
        (1..count)
            .rev()
            .find(|&shown| fits(shown))
            .expect("one alert fits")
    };
    let message = render_all(
        &renderer(&[sized_template()]),
        "sized",
        &notification,
        &robot(&[KEYWORD], &[]),
    );
    assert!(
        message.text == sized_text(lengths, expected),
        "expected {expected} of {count} alerts shown in {} bytes, got {} bytes ending {:?}",
        sized_text(lengths, expected).len(),
        message.text.len(),
        &message.text[message.text.len().saturating_sub(100)..]
    );
    message
}

#[test]
fn as_many_alerts_as_fit_whatever_their_sizes() {
    // Even sizes, as in an outage.
    check_fits(&[500; 100]);
    check_fits(&[500; 1000]);
    check_fits(&[20; 1000]);
    // Short alerts first, then long ones, and the other way round.
    check_fits(&[[10; 10].as_slice(), &[3000; 20]].concat());
    check_fits(&[[3000; 3].as_slice(), &[10; 2000]].concat());
    check_fits(&[[100; 60].as_slice(), &[2000; 100]].concat());
    // Growing and shrinking.
    check_fits(&(0..300).map(|i| 2 + i * 37 % 4000).collect::<Vec<_>>());
    check_fits(
        &(0..300)
            .map(|i| 2 + (300 - i) * 53 % 5000)
            .collect::<Vec<_>>(),
    );
    // Sizes all over the place.
    for seed in 1..=20_u64 {
        let mut state = seed;
        let lengths: Vec<usize> = (0..200)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let roll = (state >> 33) as usize;
                if roll.is_multiple_of(10) {
                    roll % 9000
                } else {
                    2 + roll % 400
                }
            })
            .collect();
        check_fits(&lengths);
    }
}

#[test]
fn an_alert_that_fits_to_the_byte_is_shown() {
    let mut lengths = vec![500; 100];
    // The last alert shown fills the text to the byte.
    let last = MAX_TEXT_BYTES / 500 - 2;
    lengths[last] = 0;
    lengths[last] = MAX_TEXT_BYTES - sized_text(&lengths, last + 1).len();
    let message = check_fits(&lengths);
    assert_eq!(message.text.len(), MAX_TEXT_BYTES);
    let more = |n: usize| format!("…and {n} more alerts");
    assert!(message.text.contains(&more(100 - last - 1)));

    // One byte more, and it is not.
    lengths[last] += 1;
    let message = check_fits(&lengths);
    assert!(message.text.contains(&more(100 - last)));
}

#[test]
fn all_alerts_are_shown_when_they_fit_without_the_note_about_the_rest() {
    // Two alerts and the note would not fit; all three without the note do.
    let lengths = [MAX_TEXT_BYTES - 50, 2, 2];
    assert!(sized_text(&lengths, 2).len() > MAX_TEXT_BYTES);
    let message = check_fits(&lengths);
    assert!(!message.text.contains("more alert"));
}

#[test]
fn all_alerts_are_shown_when_they_fit_even_if_fewer_would_not() {
    // This template shows only the last alert. Every alert but the last is too long to
    // show, so only the message with all of them fits.
    let template = TemplateSource {
        name: "latest".to_owned(),
        title: "{{ alertname }}".to_owned(),
        text: "HertzBeat: {{ alerts|length }} alerts, the latest {{ (alerts|last).labels.instance }}: {{ (alerts|last).annotations.description }}".to_owned(),
    };
    let mut notification = many_alerts(40, &"长".repeat(10_000));
    notification.alerts[39]
        .annotations
        .insert("description".to_owned(), "short".to_owned());
    let message = render_all(
        &renderer(&[template]),
        "latest",
        &notification,
        &robot(&[KEYWORD], &[]),
    );
    assert_eq!(
        message.text,
        format!("HertzBeat: 40 alerts, the latest {}: short", instance(39))
    );
}

#[test]
fn templates_see_every_alert_however_they_read_them() {
    const COUNT: usize = 300;
    let template = TemplateSource {
        name: "scattered".to_owned(),
        title: "{{ alerts[250].labels.instance }}".to_owned(),
        text: "HertzBeat {{ alerts[-1].labels.instance }} {{ alerts[200].annotations.summary }}\n{% for a in alerts|reverse %}{{ a.labels.instance }} {% endfor %}".to_owned(),
    };
    let message = render_all(
        &renderer(&[template]),
        "scattered",
        &many_alerts(COUNT, "-"),
        &robot(&[KEYWORD], &[]),
    );
    assert_eq!(message.title, format!("{} · HertzBeat", instance(250)));
    let every: Vec<String> = (0..COUNT).rev().map(instance).collect();
    assert_eq!(
        message.text,
        format!(
            "HertzBeat {} {} 磁盘空间不足\n{} ",
            instance(COUNT - 1),
            instance(200),
            every.join(" ")
        )
    );
}

#[test]
fn a_message_without_alerts_is_cut_to_fit_too() {
    let template = TemplateSource {
        name: "annotations".to_owned(),
        title: "{{ alertname }}".to_owned(),
        text: "{{ common_annotations.runbook }}".to_owned(),
    };
    let mut notification = many_alerts(1, "-");
    notification
        .common_annotations
        .insert("runbook".to_owned(), "长".repeat(10_000));
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let message = renderer(&[template]).render(
        "annotations",
        &notification,
        &[],
        &robot,
        &Extras::default(),
        now(),
    );
    check_invariants(&message, KEYWORD);
    assert!(message.text.contains("…"), "the cut is marked");
    assert!(message.text.contains("@13800000000"), "mention lost");
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
        message.title.len() <= MAX_TITLE_BYTES,
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

/// A robot that DingTalk told a message was too long gets its alerts within a smaller
/// budget: title and text together, keyword, mention and the count of the rest kept.
#[test]
fn a_smaller_budget_shows_fewer_alerts_with_the_rest_counted() {
    let notification = many_alerts(200, "磁盘剩余空间低于百分之五");
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let all: Vec<usize> = (0..200).collect();
    let renderer = renderer(&[]);
    let full = renderer.render(
        "default",
        &notification,
        &all,
        &robot,
        &Extras::default(),
        now(),
    );
    for budget in [12_000, 5_000, 1_500] {
        let message = renderer.render_within(
            "default",
            &notification,
            &all,
            &robot,
            &Extras::default(),
            budget,
            now(),
        );
        check_invariants(&message, KEYWORD);
        assert!(
            message.size() <= budget,
            "{budget}: {} bytes",
            message.size()
        );
        assert!(message.text.len() < full.text.len(), "{budget}");
        assert!(message.text.contains("more alerts"), "{budget}");
        assert!(message.text.ends_with(&format!("@{MOBILE}")), "{budget}");
    }
}

/// `shorten` cuts a rendered message at a line end and keeps what every message needs.
#[test]
fn shorten_cuts_at_a_line_end_and_keeps_keyword_and_mention() {
    let robot = robot(&[KEYWORD], &[MOBILE]);
    let notification = many_alerts(100, "磁盘剩余空间低于百分之五");
    let all: Vec<usize> = (0..100).collect();
    let message = renderer(&[]).render(
        "default",
        &notification,
        &all,
        &robot,
        &Extras {
            mention: Mention {
                mobiles: vec![MOBILE.to_owned()],
                ..Mention::default()
            },
            msgtype: None,
            actions: None,
            ..Extras::default()
        },
        now(),
    );
    assert_eq!(
        shorten(&message, &robot, message.size()),
        message,
        "fits: unchanged"
    );
    for budget in [10_000, 3_000, 1_000] {
        let short = shorten(&message, &robot, budget);
        assert!(short.size() <= budget, "{budget}: {} bytes", short.size());
        assert!(short.title.contains(KEYWORD) && short.text.contains(KEYWORD));
        assert!(
            short
                .text
                .contains("(shortened: DingTalk takes only shorter messages"),
            "{}",
            short.text
        );
        assert!(
            short.text.ends_with(&format!("@{MOBILE}")),
            "{}",
            short.text
        );
        assert_eq!(short.mention, message.mention);
        let kept = short
            .text
            .split("\n\n…(shortened")
            .next()
            .unwrap_or_default();
        assert!(
            message.text.starts_with(kept),
            "the start of the text is kept"
        );
        assert!(
            message.text[kept.len()..].starts_with('\n'),
            "cut at a line end: {:?}",
            &message.text[kept.len()..kept.len() + 20]
        );
    }
}

/// The minijinja side of docs/migrating.md's table, "Go templates in minijinja".
#[test]
fn the_migration_guides_template_equivalents_render() {
    let template = TemplateSource {
        name: "migrated".to_owned(),
        title: "{{ status }} {{ common_labels.alertname }} {{ firing_count }}".to_owned(),
        text: "{% for a in alerts if a.status == \"firing\" %}\
               - {{ a.labels.instance }}: {{ a.annotations.summary }} since {{ a.starts_at }} {{ a.generator_url }}\n\
               {% endfor %}\
               {% if common_annotations.nothing %}never{% endif %}{{ external_url }}"
            .to_owned(),
    };
    let notification = fixture("firing_3.json");
    let message = render_all(
        &renderer(&[template]),
        "migrated",
        &notification,
        &robot(&[KEYWORD], &[]),
    );
    let firing = notification
        .alerts
        .iter()
        .filter(|a| a.status.as_str() == "firing")
        .count();
    assert!(
        message
            .title
            .starts_with(&format!("firing HighCPUUsage {firing}")),
        "{}",
        message.title
    );
    assert_eq!(
        message.text.matches("- ").count(),
        firing,
        "{}",
        message.text
    );
    assert!(
        message.text.contains("CPU usage above 90%"),
        "{}",
        message.text
    );
    assert!(!message.text.contains("never"), "{}", message.text);
    assert!(message.text.contains(" CST "), "{}", message.text);
}
