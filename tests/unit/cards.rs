//! Cards updated in place, at the level of `Cards::post`: what is sent and updated under
//! which `cardBizId` when DingTalk answers, when an answer is lost, when DingTalk no longer
//! has a card, and when the group resolves; and the card's data.

use std::collections::VecDeque;
use std::sync::Mutex;

use alertmanager_dingtalk::deliver::cards::{CardGroup, Cards};
use alertmanager_dingtalk::dingtalk::card::CardCall;
use alertmanager_dingtalk::dingtalk::{
    App, AppRobot, Button, Endpoint, Mention, Message, MsgType, RateLimit, Robot, Secret,
    SendError, SendFuture, Sender,
};

/// A DingTalk that records card calls and answers them from a script (then `Ok`).
#[derive(Default)]
struct Recording {
    calls: Mutex<Vec<(CardCall, serde_json::Value)>>,
    answers: Mutex<VecDeque<Result<(), SendError>>>,
}

impl Recording {
    fn answering(answers: Vec<Result<(), SendError>>) -> Self {
        Recording {
            answers: Mutex::new(answers.into()),
            ..Recording::default()
        }
    }

    /// The calls so far: which, and the `cardBizId`.
    fn calls(&self) -> Vec<(CardCall, String)> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .map(|(call, body)| (*call, body["cardBizId"].as_str().unwrap().to_owned()))
            .collect()
    }
}

impl Sender for Recording {
    fn send<'a>(&'a self, _: &'a Robot, _: String) -> SendFuture<'a> {
        panic!("a card robot's group message")
    }

    fn card<'a>(&'a self, _: &'a Robot, body: String, call: CardCall) -> SendFuture<'a> {
        let body = serde_json::from_str(&body).unwrap();
        self.calls.lock().unwrap().push((call, body));
        let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Ok(()));
        Box::pin(async move { answer })
    }

    fn one_to_one<'a>(&'a self, _: &'a Robot, _: String) -> SendFuture<'a> {
        panic!("a 1:1 message from a robot whose messages name nobody on call")
    }
}

fn robot() -> Robot {
    Robot {
        name: "ops".to_owned(),
        endpoint: Endpoint::App(AppRobot {
            app: App {
                openapi_url: url::Url::parse("http://127.0.0.1:9/").unwrap(),
                app_key: "key".to_owned(),
                app_secret: Secret::new("secret"),
            },
            robot_code: "key".to_owned(),
            open_conversation_id: "cid".to_owned(),
        }),
        keywords: vec!["HertzBeat".to_owned()],
        mention: Mention::default(),
        oncall: Vec::new(),
        rate_limit: RateLimit::DINGTALK,
        msgtype: MsgType::Card,
        commands: None,
    }
}

fn message(title: &str) -> Message {
    Message {
        title: title.to_owned(),
        text: format!("### {title}"),
        mention: Mention::default(),
        buttons: vec![Button {
            title: "Acknowledge".to_owned(),
            url: "https://bridge.example/act/x".to_owned(),
        }],
        msgtype: None,
    }
}

const FIRING: CardGroup<'static> = CardGroup {
    group_key: "{}:{alertname=\"DiskFull\"}",
    resolved: false,
};
const RESOLVED: CardGroup<'static> = CardGroup {
    resolved: true,
    ..FIRING
};

fn lost() -> Result<(), SendError> {
    Err(SendError::Network("timed out".to_owned()))
}

fn gone() -> Result<(), SendError> {
    Err(SendError::OpenApi {
        call: alertmanager_dingtalk::dingtalk::Call::CardUpdate,
        status: 400,
        code: "param.cardNotExist".to_owned(),
        message: "卡片不存在".to_owned(),
        request_id: String::new(),
    })
}

#[tokio::test]
async fn a_group_is_sent_once_then_updated_and_a_resolved_one_ends_its_card() {
    let (cards, dingtalk, robot) = (Cards::in_memory(), Recording::default(), robot());
    for (title, group) in [
        ("firing", FIRING),
        ("grown", FIRING),
        ("resolved", RESOLVED),
    ] {
        let message = message(title);
        cards
            .post(&dingtalk, None, &robot, &message, group)
            .await
            .unwrap();
    }
    let calls = dingtalk.calls();
    let id = &calls[0].1;
    assert_eq!(
        calls,
        [
            (CardCall::Send, id.clone()),
            (CardCall::Update, id.clone()),
            (CardCall::Update, id.clone()),
        ]
    );
    assert!(cards.is_empty(), "the episode ended");
    cards
        .post(&dingtalk, None, &robot, &message("again"), FIRING)
        .await
        .unwrap();
    let (call, new_id) = dingtalk.calls().pop().unwrap();
    assert_eq!(call, CardCall::Send);
    assert_ne!(&new_id, id, "a new episode, a new card");
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_goes_again_under_the_same_id_then_is_updated() {
    let (cards, robot) = (Cards::in_memory(), robot());
    let dingtalk = Recording::answering(vec![lost()]);
    let first = cards
        .post(&dingtalk, None, &robot, &message("firing"), FIRING)
        .await;
    assert!(matches!(first, Err(SendError::Network(_))), "{first:?}");
    cards
        .post(&dingtalk, None, &robot, &message("firing"), FIRING)
        .await
        .unwrap();
    let calls = dingtalk.calls();
    let id = &calls[0].1;
    assert_eq!(
        calls,
        [
            (CardCall::Send, id.clone()),
            (CardCall::Send, id.clone()),
            (CardCall::Update, id.clone()),
        ],
        "sent again under its id (DingTalk keeps the first data), then updated"
    );
    cards
        .post(&dingtalk, None, &robot, &message("grown"), FIRING)
        .await
        .unwrap();
    assert_eq!(
        dingtalk.calls()[3],
        (CardCall::Update, id.clone()),
        "then only updated"
    );
}

#[tokio::test]
async fn a_card_dingtalk_refuses_to_update_for_good_is_replaced() {
    let (cards, robot) = (Cards::in_memory(), robot());
    let dingtalk = Recording::answering(vec![Ok(()), gone()]);
    cards
        .post(&dingtalk, None, &robot, &message("firing"), FIRING)
        .await
        .unwrap();
    cards
        .post(&dingtalk, None, &robot, &message("grown"), FIRING)
        .await
        .unwrap();
    let calls = dingtalk.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!((calls[1].0, &calls[1].1), (CardCall::Update, &calls[0].1));
    assert_eq!(calls[2].0, CardCall::Send);
    assert_ne!(calls[2].1, calls[0].1, "a new card");
    // A retryable failure of an update is not a replacement.
    let dingtalk = Recording::answering(vec![Ok(()), lost()]);
    let cards = Cards::in_memory();
    cards
        .post(&dingtalk, None, &robot, &message("firing"), FIRING)
        .await
        .unwrap();
    assert!(
        cards
            .post(&dingtalk, None, &robot, &message("grown"), FIRING)
            .await
            .is_err()
    );
    assert_eq!(dingtalk.calls().len(), 2);
}

#[tokio::test]
async fn the_card_data_is_a_standard_card_with_the_message_and_its_buttons() {
    let (cards, dingtalk, robot) = (Cards::in_memory(), Recording::default(), robot());
    cards
        .post(
            &dingtalk,
            None,
            &robot,
            &message("[FIRING:1] DiskFull"),
            FIRING,
        )
        .await
        .unwrap();
    let body = dingtalk.calls.lock().unwrap()[0].1.clone();
    assert_eq!(body["cardTemplateId"], "StandardCard");
    assert_eq!(
        (
            body["robotCode"].as_str(),
            body["openConversationId"].as_str()
        ),
        (Some("key"), Some("cid"))
    );
    let data: serde_json::Value = serde_json::from_str(body["cardData"].as_str().unwrap()).unwrap();
    assert_eq!(data["header"]["title"]["text"], "[FIRING:1] DiskFull");
    assert_eq!(data["contents"][0]["type"], "markdown");
    assert_eq!(data["contents"][0]["text"], "### [FIRING:1] DiskFull");
    let button = &data["contents"][2]["actions"][0];
    assert_eq!(button["actionType"], "openLink");
    assert_eq!(button["url"]["all"], "https://bridge.example/act/x");
    assert_eq!(button["label"]["text"], "Acknowledge");
}

#[tokio::test(start_paused = true)]
async fn a_card_changes_at_most_once_in_its_spacing() {
    use alertmanager_dingtalk::deliver::cards::SPACING;
    let (cards, dingtalk, robot) = (Cards::in_memory(), Recording::default(), robot());
    let start = tokio::time::Instant::now();
    let mut at = Vec::new();
    for title in ["firing", "acknowledged", "silenced"] {
        let message = message(title);
        cards
            .post(&dingtalk, None, &robot, &message, FIRING)
            .await
            .unwrap();
        at.push(start.elapsed());
    }
    assert_eq!(
        at[0],
        std::time::Duration::ZERO,
        "the first send waits for nothing"
    );
    assert_eq!(at[1], SPACING, "the first update waits for the spacing");
    assert_eq!(at[2], SPACING * 2);
    assert_eq!(dingtalk.calls().len(), 3);
}
