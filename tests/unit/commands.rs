//! Commands written to a robot: what parses, in English and Chinese, and what a bad one
//! is told; and `commands`/`command_users` in `config.yaml`.

use std::time::Duration;

use alertmanager_dingtalk::act::commands::{Command, parse};

use crate::config::{check_errors, check_ok};

fn silence(text: &str) -> (Duration, Vec<String>) {
    match parse(text) {
        Ok(Command::Silence { length, matchers }) => {
            (length, matchers.iter().map(ToString::to_string).collect())
        }
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn each_command_in_both_languages() {
    for (text, action) in [
        ("list", "list"),
        (" 列表 ", "list"),
        ("/list", "list"),
        ("ack 2", "acknowledge"),
        ("认领 2", "acknowledge"),
        ("unsilence 0f2c-11", "unsilence"),
        ("取消静默 0f2c-11", "unsilence"),
        ("silence 1h alertname=X", "silence"),
        ("静默 1h alertname=X", "silence"),
        ("help", "help"),
        ("帮助", "help"),
        ("", "help"),
        ("LIST", "list"),
    ] {
        let command = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(command.action(), action, "{text:?}");
    }
    assert!(matches!(parse("ack 3"), Ok(Command::Ack(3))));
    assert!(matches!(parse("unsilence abc"), Ok(Command::Unsilence(id)) if id == "abc"));
}

#[test]
fn silence_matchers_as_alertmanager_writes_them() {
    assert_eq!(
        silence(r#"silence 2h alertname="DiskFull" instance=~"db.*""#),
        (
            Duration::from_secs(7200),
            vec![
                r#"alertname="DiskFull""#.into(),
                r#"instance=~"db.*""#.into()
            ]
        )
    );
    // Quotes optional for plain values; commas, braces and spaces around the operator.
    assert_eq!(
        silence(r#"silence 1d {alertname = DiskFull, job!="node exporter"}"#).1,
        vec![r#"alertname="DiskFull""#, r#"job!="node exporter""#]
    );
    assert_eq!(
        silence("静默 90m severity=critical").0,
        Duration::from_secs(5400)
    );
}

#[test]
fn a_bad_command_says_what_is_wrong() {
    for (text, says) in [
        ("silenc 1h alertname=X", "there is no command \"silenc\""),
        ("silence soon alertname=X", "is not a duration"),
        (
            "silence alertname=X",
            "takes a duration and at least one matcher",
        ),
        ("silence 1h", "takes a duration and at least one matcher"),
        ("silence 30s alertname=X", "at least a minute"),
        ("silence 1h alertname", "no operator"),
        ("silence 1h alertname=\"DiskFull", "badly quoted"),
        ("silence 1h instance=~\"db(\"", "invalid regex"),
        (
            "silence 1h instance=~\".*\"",
            "at least one `name=\"value\"` matcher",
        ),
        ("ack", "takes the number"),
        ("ack 0", "takes the number"),
        ("ack two", "takes the number"),
        ("unsilence", "takes one silence id"),
        ("unsilence a b", "takes one silence id"),
        ("unsilence a`b", "takes one silence id"),
        ("silence 31d alertname=X", "at most 30d"),
        ("列表 x", "takes nothing after it"),
        ("list all", "takes nothing after it"),
    ] {
        let error = parse(text).expect_err(text);
        assert!(
            error.contains(says),
            "{text:?}: {error:?} should say {says:?}"
        );
    }
}

const APP: &str =
    "robots:\n  ops:\n    app_key: k\n    app_secret: s\n    open_conversation_id: cid1\n";
const STRATEGY: &str = "strategies:\n  - name: all\n    robots: [ops]\n";
const ALERTMANAGER: &str = "alertmanager:\n  urls: [http://127.0.0.1:9093]\n";

#[test]
fn commands_on_a_robot_of_an_application() {
    let config = check_ok(&format!(
        "{ALERTMANAGER}{APP}    commands: true\n    command_users: [u1, u2]\n{STRATEGY}"
    ));
    let commands = config.robots["ops"].commands.clone().expect("commands");
    assert!(commands.allows("u1") && commands.allows("u2") && !commands.allows("u3"));
    assert!(config.acknowledges());
    assert!(config.alertmanager.is_some() && config.actions.is_none());

    let config = check_ok(&format!(
        "{ALERTMANAGER}{APP}    commands: true\n{STRATEGY}"
    ));
    assert!(
        config.robots["ops"]
            .commands
            .as_ref()
            .expect("commands")
            .allows("anyone")
    );
    let config = check_ok(&format!("{APP}{STRATEGY}"));
    assert!(config.robots["ops"].commands.is_none() && !config.acknowledges());
}

#[test]
fn commands_need_an_application_robot_alertmanager_and_someone_allowed() {
    check_errors(
        &format!("{APP}    commands: true\n{STRATEGY}"),
        &[(6, "need `alertmanager.urls`")],
    );
    check_errors(
        &format!(
            "{ALERTMANAGER}robots:\n  ops:\n    access_token: t\n    commands: true\n{STRATEGY}"
        ),
        &[(6, "is a webhook robot, which receives nothing")],
    );
    check_errors(
        &format!("{ALERTMANAGER}{APP}    command_users: [u1]\n{STRATEGY}"),
        &[(8, "has `command_users` but not `commands: true`")],
    );
    check_errors(
        &format!("{ALERTMANAGER}{APP}    commands: true\n    command_users: []\n{STRATEGY}"),
        &[(9, "would let nobody command")],
    );
}
