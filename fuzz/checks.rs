//! What each fuzz target feeds its input through and checks, shared by the targets in
//! `fuzz_targets/` and by the replay of the regression corpus in the normal test suite
//! (`tests/unit/fuzz_replay.rs`). A panic is a finding.

use std::sync::OnceLock;

use alertmanager_dingtalk::config::load_with_env;
use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::dingtalk::{
    self, Endpoint, MESSAGE_BUDGET, Mention, MsgType, Robot, Secret, Webhook,
};
use alertmanager_dingtalk::ingest::{self, LabelSet};
use alertmanager_dingtalk::render::{Extras, Renderer};
use alertmanager_dingtalk::route::matcher::Matcher;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The webhook payload parser: an error or a notification, never a panic.
pub fn payload(data: &[u8]) {
    let _ = ingest::parse(data);
}

/// The matcher parser, and a parsed matcher applied to a label value: the input is the
/// matcher, a newline, and the value.
pub fn matcher(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (matcher, value) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(matcher) = Matcher::parse(matcher) {
        let mut labels = LabelSet::new();
        labels.insert(matcher.name().to_owned(), value.to_owned());
        let _ = matcher.matches(&labels);
        let _ = matcher.matches(&LabelSet::new());
    }
}

/// The config loader on the input as `config.yaml`, every `${VAR}` set.
pub fn config(data: &[u8]) {
    let file = std::env::temp_dir().join(format!(
        "alertmanager-dingtalk-fuzz-config-{}.yaml",
        std::process::id()
    ));
    if std::fs::write(&file, data).is_ok() {
        let _ = load_with_env(&file, |_| Some("value".to_owned()));
    }
}

/// A payload rendered by both built-in templates for a markdown and an action card
/// robot: each message carries the keyword in its title and text, stays within the
/// budget, and its body within DingTalk's 20000 bytes.
pub fn render(data: &[u8]) {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    let Ok(notification) = ingest::parse(data) else {
        return;
    };
    let renderer = RENDERER.get_or_init(|| {
        Renderer::new(&[], TimeZone::UTC)
            .unwrap_or_else(|_| panic!("the built-in templates compile"))
    });
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    let now = Timestamp::from_second(1_714_525_200).unwrap_or(Timestamp::UNIX_EPOCH);
    for msgtype in [MsgType::Markdown, MsgType::ActionCard] {
        let robot = robot(msgtype);
        for template in ["default", "default-zh"] {
            let message = renderer.render(
                template,
                &notification,
                &all,
                &robot,
                &Extras::default(),
                now,
            );
            assert!(
                message.title.contains("HertzBeat"),
                "no keyword in the title: {:?}",
                message.title
            );
            assert!(message.text.contains("HertzBeat"), "no keyword in the text");
            assert!(message.size() <= MESSAGE_BUDGET, "{} bytes", message.size());
            let body = dingtalk::encode(robot.msgtype, &message);
            assert!(body.len() <= 20_000, "a body of {} bytes", body.len());
        }
    }
}

fn robot(msgtype: MsgType) -> Robot {
    Robot {
        name: "ops".to_owned(),
        endpoint: Endpoint::Webhook(Webhook {
            api_url: url::Url::parse("http://127.0.0.1:9/robot/send")
                .unwrap_or_else(|_| unreachable!()),
            access_token: Secret::new("token"),
            secret: None,
        }),
        keywords: vec!["HertzBeat".to_owned()],
        mention: Mention {
            mobiles: vec!["13800000000".to_owned()],
            ..Mention::default()
        },
        oncall: Vec::new(),
        rate_limit: RateLimit::DINGTALK,
        msgtype,
        commands: None,
    }
}
