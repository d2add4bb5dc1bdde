//! `dingtalk::encode` and `Mention`: the JSON body DingTalk receives.

use alertmanager_dingtalk::dingtalk::{Button, Mention, Message, MsgType, encode};
use serde_json::json;

fn message(mention: Mention) -> Message {
    Message {
        title: "[FIRING:1] HighCPUUsage · HertzBeat".to_owned(),
        text: "### CPU above 90%\n\n@13800000000".to_owned(),
        mention,
        buttons: Vec::new(),
        msgtype: None,
    }
}

fn check(msgtype: MsgType, message: &Message, expected: serde_json::Value) {
    let body: serde_json::Value = serde_json::from_str(&encode(msgtype, message)).unwrap();
    assert_eq!(body, expected);
}

#[test]
fn markdown_body() {
    check(
        MsgType::Markdown,
        &message(Mention {
            mobiles: vec!["13800000000".to_owned()],
            ..Mention::default()
        }),
        json!({
            "msgtype": "markdown",
            "markdown": {
                "title": "[FIRING:1] HighCPUUsage · HertzBeat",
                "text": "### CPU above 90%\n\n@13800000000",
            },
            "at": { "atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": false },
        }),
    );
}

#[test]
fn text_body() {
    check(
        MsgType::Text,
        &message(Mention {
            all: true,
            user_ids: vec!["manager01".to_owned()],
            ..Mention::default()
        }),
        json!({
            "msgtype": "text",
            "text": { "content": "### CPU above 90%\n\n@13800000000" },
            "at": { "atMobiles": [], "atUserIds": ["manager01"], "isAtAll": true },
        }),
    );
}

#[test]
fn action_card_body_has_the_buttons_side_by_side_and_no_at() {
    let mut card = message(Mention::default());
    card.buttons = vec![
        Button {
            title: "View in Alertmanager · HertzBeat".to_owned(),
            url: "http://am:9093".to_owned(),
        },
        Button {
            title: "Source".to_owned(),
            url: "http://prom:9090/graph".to_owned(),
        },
    ];
    check(
        MsgType::ActionCard,
        &card,
        json!({
            "msgtype": "actionCard",
            "actionCard": {
                "title": "[FIRING:1] HighCPUUsage · HertzBeat",
                "text": "### CPU above 90%\n\n@13800000000",
                "btnOrientation": "1",
                "btns": [
                    { "title": "View in Alertmanager · HertzBeat", "actionURL": "http://am:9093" },
                    { "title": "Source", "actionURL": "http://prom:9090/graph" },
                ],
            },
        }),
    );
}

#[test]
fn an_action_card_without_buttons_goes_as_markdown() {
    let digest = message(Mention::default());
    assert_eq!(
        encode(MsgType::ActionCard, &digest),
        encode(MsgType::Markdown, &digest)
    );
}

fn mention(all: bool, mobiles: &[&str], user_ids: &[&str]) -> Mention {
    Mention {
        all,
        mobiles: mobiles.iter().map(|m| (*m).to_owned()).collect(),
        user_ids: user_ids.iter().map(|u| (*u).to_owned()).collect(),
    }
}

#[test]
fn mentions_merge_without_duplicates() {
    for (a, b, expected) in [
        (
            mention(false, &["138"], &[]),
            mention(false, &["139", "138"], &["u1"]),
            mention(false, &["138", "139"], &["u1"]),
        ),
        (
            mention(true, &[], &[]),
            mention(false, &[], &["u1"]),
            mention(true, &[], &["u1"]),
        ),
        (Mention::default(), Mention::default(), Mention::default()),
    ] {
        assert_eq!(a.merged(&b), expected, "{a:?} + {b:?}");
    }
}

#[test]
fn at_text_lists_mobiles_then_user_ids() {
    assert_eq!(
        mention(false, &["138", "139"], &["u1"]).at_text(),
        "@138 @139 @u1"
    );
    assert_eq!(mention(true, &[], &[]).at_text(), "");
}
