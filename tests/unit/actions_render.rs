//! The links a message carries with `actions:` (issue 21): their labels in both built-in
//! templates, what they sign, buttons on an action card, who acknowledged the group, and
//! the size budget kept.

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::act::link::{Action, Link, group_id};
use alertmanager_dingtalk::config::Config;
use alertmanager_dingtalk::ingest::{self, Notification};
use alertmanager_dingtalk::render::Handling;
use jiff::Timestamp;

use crate::config::check_ok;
use crate::fixture;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn config(robot: &str, template: &str) -> Config {
    check_ok(&format!(
        "external_url: https://bridge.example.com\n\
         alertmanager: {{ urls: [http://am:9093] }}\n\
         actions: {{ key: {KEY}, silence_durations: [1h, 4h, 1d] }}\n\
         robots:\n  ops: {{ access_token: t{robot} }}\n\
         strategies:\n  - name: all\n    robots: [ops]\n    template: {template}\n"
    ))
}

fn now() -> Timestamp {
    Timestamp::from_second(1_796_544_000).unwrap()
}

/// `[label](url)` pairs of a markdown text.
fn links(text: &str) -> Vec<(String, String)> {
    text.split('[')
        .skip(1)
        .filter_map(|part| {
            let (label, rest) = part.split_once("](")?;
            let (url, _) = rest.split_once(')')?;
            Some((label.to_owned(), url.to_owned()))
        })
        .filter(|(_, url)| url.contains("/act/"))
        .collect()
}

fn verify(url: &str) -> Link {
    let token = url.rsplit('/').next().unwrap();
    Link::verify(
        token,
        &alertmanager_dingtalk::dingtalk::Secret::new(KEY),
        now(),
    )
    .unwrap()
}

#[test]
fn every_message_offers_acknowledge_and_each_silence_signed_for_the_group() {
    let notification = fixture("firing_3.json");
    let plan = plan::plan(&config("", "default"), &notification, now());
    let text = &plan.messages[0].message.text;
    let links = links(text);
    let labels: Vec<&str> = links.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]
    );
    assert!(text.contains("HertzBeat"));
    let group = group_id(&notification.group_key);
    let actions: Vec<Action> = links.iter().map(|(_, url)| verify(url).action).collect();
    assert_eq!(actions[0], Action::Acknowledge);
    assert_eq!(actions[2], Action::Silence { seconds: 4 * 3600 });
    for (_, url) in &links {
        assert!(url.starts_with("https://bridge.example.com/act/"), "{url}");
        let link = verify(url);
        assert_eq!(link.group, group);
        // The group's groupLabels.
        assert_eq!(
            link.matchers,
            [("alertname".to_owned(), "HighCPUUsage".to_owned())]
        );
        assert_eq!(link.expires, now().as_second() + 7 * 86_400);
    }
}

#[test]
fn the_chinese_template_names_them_in_chinese_and_both_say_who_acknowledged() {
    let notification = fixture("firing_3.json");
    let plan = plan::plan(&config("", "default-zh"), &notification, now());
    let labels: Vec<String> = links(&plan.messages[0].message.text)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(labels, ["认领", "静默 1小时", "静默 4小时", "静默 1天"]);

    let acknowledged = Some(("Bob <b>".to_owned(), now()));
    for (template, said) in [
        (
            "default",
            "Acknowledged by Bob ＜b＞ at 2026-12-06 16:00 CST",
        ),
        ("default-zh", "已认领：Bob ＜b＞（2026-12-06 16:00 CST）"),
    ] {
        let handling = Handling {
            acknowledged: acknowledged.clone(),
            silenced: None,
        };
        let plan = plan::plan_handled(&config("", template), &notification, handling, now());
        let text = &plan.messages[0].message.text;
        assert!(text.contains(said), "{template}: {text}");
    }
}

#[test]
fn an_action_card_carries_them_as_buttons_and_not_in_its_text() {
    let notification = fixture("firing_3.json");
    let plan = plan::plan(
        &config(", msgtype: actionCard", "default"),
        &notification,
        now(),
    );
    let message = &plan.messages[0].message;
    let titles: Vec<&str> = message.buttons.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Acknowledge · HertzBeat",
            "Silence 1h",
            "Silence 4h",
            "Silence 1d",
            "View in Alertmanager"
        ]
    );
    assert!(!message.text.contains("/act/"), "{}", message.text);
    assert_eq!(
        verify(&message.buttons[1].url).action,
        Action::Silence { seconds: 3600 }
    );
}

/// What a silence would match: the group's labels, else the one alert's, else what its
/// alerts share; nothing to match, no silence offered.
#[test]
fn a_silence_matches_the_group_labels_or_else_the_alert() {
    let config = config("", "default");
    let matchers = |notification: &Notification| {
        let plan = plan::plan(&config, notification, now());
        let links = links(&plan.messages[0].message.text);
        links
            .last()
            .map(|(_, url)| verify(url))
            .map(|l| (l.action, l.matchers))
    };
    let one = ingest::parse(
        br#"{"status":"firing","groupKey":"g1","alerts":[{"status":"firing","labels":{"alertname":"A","instance":"x"},"startsAt":"2026-12-06T08:00:00Z"}]}"#,
    )
    .unwrap();
    let (_, of_one) = matchers(&one).unwrap();
    assert_eq!(
        of_one,
        [
            ("alertname".to_owned(), "A".to_owned()),
            ("instance".to_owned(), "x".to_owned())
        ]
    );
    let nothing = ingest::parse(
        br#"{"status":"firing","groupKey":"g2","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-12-06T08:00:00Z"},{"status":"firing","labels":{"alertname":"B"},"startsAt":"2026-12-06T08:00:00Z"}]}"#,
    )
    .unwrap();
    assert_eq!(
        matchers(&nothing).unwrap().0,
        Action::Acknowledge,
        "only acknowledge"
    );
}

#[test]
fn a_full_message_keeps_its_links_within_the_budget() {
    let notification = ingest::parse(&testkit::webhook_body(1000)).unwrap();
    let plan = plan::plan(&config("", "default"), &notification, now());
    for planned in &plan.messages {
        let message = &planned.message;
        assert!(message.size() <= 19_000, "{}", message.size());
        assert_eq!(links(&message.text).len(), 4, "{}", message.text);
        assert!(
            message.text.contains("more alert"),
            "truncated, with the links after"
        );
    }
    let card = plan::plan(
        &config(", msgtype: actionCard", "default"),
        &notification,
        now(),
    );
    for planned in &card.messages {
        let message = &planned.message;
        let buttons: usize = message
            .buttons
            .iter()
            .map(|b| b.title.len() + b.url.len())
            .sum();
        assert!(
            message.size() + buttons <= 19_600,
            "{} + {buttons}",
            message.size()
        );
    }
}
