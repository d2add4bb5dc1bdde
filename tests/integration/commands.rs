//! Commands over DingTalk's Stream mode (issue 22): the bridge opens the fake gateway's
//! WebSocket for an application whose robot takes commands; `list`, `silence`,
//! `unsilence`, `ack` and `help` act on a real Alertmanager and are answered through the
//! message's session webhook; a bad command, a sender outside `command_users`, a message
//! from another group and a redelivered message act on nothing (more than once); the
//! connection comes back after it is dropped or the gateway says `disconnect`.

use std::time::Duration;

use testkit::{BotMessage, Bridge, FakeApp, FakeDingTalk, Redis, SessionReply};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET};

const KEY: &str = "dingcommandapp";
const SECRET: &str = "command-app-secret";
const GROUP: &str = "cidOps==";
const OTHER_GROUP: &str = "cidElsewhere==";
const WAIT: Duration = Duration::from_secs(30);

/// The fake DingTalk with the application, its robot in [`GROUP`] and [`OTHER_GROUP`].
async fn dingtalk() -> FakeDingTalk {
    let dingtalk = FakeDingTalk::start(Vec::new()).await;
    dingtalk.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP, OTHER_GROUP]));
    dingtalk
}

/// The config of a bridge whose robot `ops` (in [`GROUP`]) takes commands from
/// `command_users` (everyone when empty), through `alertmanager` (none: no commands).
fn config(dingtalk: &FakeDingTalk, alertmanager: Option<&str>, command_users: &[&str]) -> String {
    let commands = match alertmanager {
        Some(url) => {
            let users = match command_users {
                [] => String::new(),
                users => format!("    command_users: [{}]\n", users.join(", ")),
            };
            format!("    commands: true\n{users}alertmanager:\n  urls: [\"{url}\"]\n")
        }
        None => String::new(),
    };
    format!(
        "dingtalk:\n  api_url: \"{}\"\n  openapi_url: \"{}\"\n  timeout: 2s\n\
         robots:\n  ops:\n    app_key: {KEY}\n    app_secret: {SECRET}\n    \
         open_conversation_id: \"{GROUP}\"\n{commands}\
         strategies:\n  - name: all\n    robots: [ops]\n",
        dingtalk.api_url(),
        dingtalk.openapi_url(),
    )
}

/// A bridge and a real Alertmanager notifying it; the bridge takes commands once it is
/// reloaded with the Alertmanager's address, which exists only after the bridge's.
async fn bridge_and_alertmanager(
    dingtalk: &FakeDingTalk,
    command_users: &[&str],
) -> (Bridge, Alertmanager) {
    let bridge = Bridge::start(BINARY, &config(dingtalk, None, &[])).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let commanding = config(dingtalk, Some(&alertmanager.url()), command_users);
    std::fs::write(bridge.dir().join("config.yaml"), commanding).unwrap();
    let (status, answer) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        dingtalk.wait_for_stream_connections(1, WAIT).await,
        "no Stream connection\n{}",
        bridge.log()
    );
    (bridge, alertmanager)
}

/// Pushes `text` from Alice (staff id `alice01`) in [`GROUP`] and waits for the reply.
async fn command(dingtalk: &FakeDingTalk, text: &str) -> SessionReply {
    command_as(
        dingtalk,
        BotMessage::new(GROUP, text).sender("Alice", "alice01"),
    )
    .await
}

async fn command_as(dingtalk: &FakeDingTalk, message: BotMessage) -> SessionReply {
    let before = dingtalk.session_replies().len();
    let frame = dingtalk.push_bot_message(message);
    let ack = dingtalk.wait_for_ack(&frame, WAIT).await.expect("an ack");
    assert_eq!(ack.code, 200, "{ack:?}");
    let replies = dingtalk.wait_for_session_replies(before + 1, WAIT).await;
    replies
        .get(before)
        .cloned()
        .unwrap_or_else(|| panic!("no reply to the command"))
}

/// Waits until `alertmanager` has `n` active silences.
async fn active_silences(alertmanager: &Alertmanager, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..300 {
        let active = alertmanager.active_silences().await;
        if active.len() == n {
            return active;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not {n} active silences: {:?}",
        alertmanager.silences().await
    );
}

/// Waits until the group has received a message about `name`.
async fn group_message_about(dingtalk: &FakeDingTalk, name: &str, containing: &str) -> String {
    dingtalk
        .wait_until(
            &format!("a message about {name} with {containing:?}"),
            WAIT,
            |requests| {
                requests.iter().any(|r| {
                    r.delivered() && r.text().contains(name) && r.text().contains(containing)
                })
            },
        )
        .await;
    let messages = dingtalk.delivered_to_group(GROUP);
    let message = messages
        .iter()
        .rev()
        .find(|r| r.text().contains(name) && r.text().contains(containing))
        .expect("the message");
    message.text().to_owned()
}

#[tokio::test]
async fn list_silence_unsilence_and_ack_act_on_a_real_alertmanager() {
    let dingtalk = dingtalk().await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[]).await;
    let open = &dingtalk.stream_opens()[0];
    assert_eq!(open.client_id, KEY);
    assert!(
        open.subscribes("CALLBACK", "/v1.0/im/bot/messages/get"),
        "{open:?}"
    );

    alertmanager
        .post_alerts(&[TestAlert::firing(&[
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
        ])])
        .await;
    group_message_about(&dingtalk, "DiskFull", "db-1").await;

    let help = command(&dingtalk, " help").await;
    assert!(
        help.text().contains("silence <duration> <matchers>"),
        "{help:?}"
    );
    assert_eq!(help.body["at"]["atUserIds"][0], "alice01", "{help:?}");
    assert!(help.text().contains("@alice01"), "{help:?}");
    assert!(help.text().contains("HertzBeat"), "the keyword: {help:?}");
    assert_eq!(help.conversation_id, GROUP);

    let list = command(&dingtalk, " list").await;
    assert!(
        list.text()
            .contains("1. {alertname=\"DiskFull\"} (bridge) — 1 firing"),
        "{list:?}"
    );

    let silenced = command(
        &dingtalk,
        " silence 1h alertname=DiskFull instance=~\"db-.*\"",
    )
    .await;
    let silences = active_silences(&alertmanager, 1).await;
    let id = silences[0]["id"].as_str().unwrap();
    assert_eq!(silences[0]["createdBy"], "Alice (alice01)");
    assert!(
        silenced.text().contains(&format!("`{id}`")),
        "the full id: {silenced:?}"
    );
    let matchers = silences[0]["matchers"].as_array().unwrap();
    assert!(
        matchers
            .iter()
            .any(|m| m["name"] == "instance" && m["isRegex"] == true),
        "{matchers:?}"
    );

    let listed = command(&dingtalk, "列表").await;
    assert!(listed.text().contains("1 silenced"), "{listed:?}");

    let unsilenced = command(&dingtalk, &format!("取消静默 {id}")).await;
    assert!(
        unsilenced
            .text()
            .contains(&format!("Expired silence `{id}`")),
        "{unsilenced:?}"
    );
    active_silences(&alertmanager, 0).await;

    let acked = command(&dingtalk, "ack 1").await;
    assert!(
        acked
            .text()
            .contains("Acknowledged {alertname=\"DiskFull\"} (bridge) as Alice (alice01)"),
        "{acked:?}"
    );
    let again = command(&dingtalk, "认领 1").await;
    assert!(
        again
            .text()
            .contains("was acknowledged by Alice (alice01) already"),
        "{again:?}"
    );
    let (_, acks) = bridge.get("/api/v1/acks").await;
    assert!(acks.contains("Alice (alice01)"), "{acks}");

    // The group's next message names who took it on.
    alertmanager
        .post_alerts(&[
            TestAlert::firing(&[("alertname", "DiskFull"), ("instance", "db-1")]),
            TestAlert::firing(&[("alertname", "DiskFull"), ("instance", "db-2")]),
        ])
        .await;
    let next = group_message_about(&dingtalk, "DiskFull", "db-2").await;
    assert!(next.contains("Acknowledged by Alice (alice01)"), "{next}");

    let done = bridge
        .metric("alertmanager_dingtalk_actions_total{action=\"silence\",outcome=\"done\"}")
        .await;
    assert_eq!(done, 1.0);
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_stream_connected{app=\"dingcommandapp\"}")
            .await,
        1.0
    );
    assert!(!bridge.log().contains(SECRET), "the secret in the log");
}

#[tokio::test]
async fn refused_commands_act_on_nothing() {
    let dingtalk = dingtalk().await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &["alice01"]).await;

    let wrong = command(&dingtalk, "silence 1h alertname").await;
    assert!(wrong.text().contains("no operator"), "{wrong:?}");
    assert!(
        wrong.text().contains("silence <duration> <matchers>"),
        "how to write it: {wrong:?}"
    );
    let unknown = command(&dingtalk, "silenc 1h alertname=X").await;
    assert!(
        unknown.text().contains("there is no command \"silenc\""),
        "{unknown:?}"
    );

    // What was written comes back inert: no link, no mention.
    let markup = command(&dingtalk, "silence 1h [x](http://evil.example) @all").await;
    assert!(
        !markup.text().contains("[x](") && !markup.text().contains("@all"),
        "{markup:?}"
    );
    assert!(markup.text().contains("［x］"), "{markup:?}");

    let outsider = BotMessage::new(GROUP, "silence 1h alertname=X").sender("Mallory", "mallory9");
    let refused = command_as(&dingtalk, outsider).await;
    assert!(refused.text().contains("may not command"), "{refused:?}");
    // A guest from another organisation has no staff id.
    let guest = BotMessage::new(GROUP, "silence 1h alertname=X").sender("Guest", "");
    let refused = command_as(&dingtalk, guest).await;
    assert!(refused.text().contains("may not command"), "{refused:?}");
    assert_eq!(
        refused.body["at"]["atUserIds"],
        serde_json::json!([]),
        "{refused:?}"
    );

    // From a group no robot takes commands in: acknowledged to the gateway, no reply.
    let before = dingtalk.session_replies().len();
    let elsewhere =
        BotMessage::new(OTHER_GROUP, "silence 1h alertname=X").sender("Alice", "alice01");
    let frame = dingtalk.push_bot_message(elsewhere);
    assert_eq!(
        dingtalk
            .wait_for_ack(&frame, WAIT)
            .await
            .expect("an ack")
            .code,
        200
    );
    // The three bad commands and the message from elsewhere.
    bridge
        .wait_for_metric(
            "alertmanager_dingtalk_actions_total{action=\"unknown\",outcome=\"refused\"}",
            4.0,
        )
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        dingtalk.session_replies().len(),
        before,
        "no reply to another group"
    );

    // A message delivered again (same msgId, a new frame) acts once and is answered once.
    let message =
        BotMessage::new(GROUP, "silence 1h alertname=Redelivered").sender("Alice", "alice01");
    command_as(&dingtalk, message.clone()).await;
    let again = dingtalk.push_bot_message(message);
    assert_eq!(
        dingtalk
            .wait_for_ack(&again, WAIT)
            .await
            .expect("an ack")
            .code,
        200
    );
    let replies = dingtalk.session_replies().len();
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        dingtalk.session_replies().len(),
        replies,
        "the redelivery is not answered"
    );
    let silences = active_silences(&alertmanager, 1).await;
    assert_eq!(
        silences[0]["matchers"][0]["value"], "Redelivered",
        "only the allowed one acted"
    );
    let refusals = bridge
        .metric("alertmanager_dingtalk_actions_total{action=\"silence\",outcome=\"refused\"}")
        .await;
    assert_eq!(refusals, 2.0, "the outsider's and the guest's");
}

/// Waits until the `opened`th connection is open, and only it.
async fn reconnected(dingtalk: &FakeDingTalk, opened: usize) {
    for _ in 0..300 {
        if dingtalk.stream_connections_opened() == opened && dingtalk.stream_connections() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} connections opened, {} open; wanted {opened} and 1",
        dingtalk.stream_connections_opened(),
        dingtalk.stream_connections()
    );
}

#[tokio::test]
async fn the_connection_comes_back_after_a_drop_and_a_disconnect() {
    let dingtalk = dingtalk().await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[]).await;

    let opaque = dingtalk.push_ping();
    let mut answered = false;
    for _ in 0..300 {
        let acks = dingtalk.stream_acks();
        if acks
            .iter()
            .any(|ack| ack.code == 200 && ack.data.contains(&opaque))
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "the ping is answered with its data: {:?}",
        dingtalk.stream_acks()
    );

    dingtalk.drop_stream_connections();
    reconnected(&dingtalk, 2).await;
    command(&dingtalk, "silence 1h alertname=AfterDrop").await;
    active_silences(&alertmanager, 1).await;

    let frames = dingtalk.push_disconnect();
    let ack = dingtalk
        .wait_for_ack(&frames[0], WAIT)
        .await
        .expect("disconnect acknowledged");
    assert_eq!(ack.code, 200);
    reconnected(&dingtalk, 3).await;
    let listed = command(&dingtalk, "list").await;
    assert!(listed.text().contains("No alert fires"), "{listed:?}");

    let (_, page) = bridge.get("/").await;
    assert!(
        page.contains("Commands over Stream mode") && page.contains("connected since"),
        "{page}"
    );
}

#[tokio::test]
async fn replicas_act_once_on_a_message_both_receive() {
    let dingtalk = dingtalk().await;
    let redis = Redis::start();
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: 2\n",
        redis.url()
    );
    let first = Bridge::start(
        BINARY,
        &format!("{cluster}{}", config(&dingtalk, None, &[])),
    )
    .await;
    let second = Bridge::start(
        BINARY,
        &format!("{cluster}{}", config(&dingtalk, None, &[])),
    )
    .await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", first.url)).await;
    let commanding = format!(
        "{cluster}{}",
        config(&dingtalk, Some(&alertmanager.url()), &[])
    );
    for bridge in [&first, &second] {
        std::fs::write(bridge.dir().join("config.yaml"), &commanding).unwrap();
        let (status, answer) = bridge.post("/-/reload", "", None).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert!(dingtalk.wait_for_stream_connections(2, WAIT).await);

    let message = BotMessage::new(GROUP, "silence 1h alertname=Both").sender("Alice", "alice01");
    dingtalk.push_bot_message_on(0, message.clone());
    dingtalk.push_bot_message_on(1, message);
    let replies = dingtalk.wait_for_session_replies(1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(dingtalk.session_replies().len(), 1, "{replies:?}");
    active_silences(&alertmanager, 1).await;
    drop((first, second));
}
