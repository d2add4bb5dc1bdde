//! Tests of the fake's interactive cards, through HTTP as a client sees them.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::test_support::{GROUP, KEY, SECRET, access, request, timeout_message, two_apps as fake};
use super::*;

const WAIT: Duration = Duration::from_secs(5);

async fn send(fake: &FakeDingTalk, token: &str, body: &Value) -> (u16, Value) {
    request(fake, reqwest::Method::POST, CARD_SEND_PATH, token, body).await
}

async fn update(fake: &FakeDingTalk, token: &str, body: &Value) -> (u16, Value) {
    request(fake, reqwest::Method::PUT, CARD_UPDATE_PATH, token, body).await
}

/// `StandardCard` data as open-dingtalk's `interactive_card.py` builds it: a title, a
/// markdown block, a divider and a block of buttons that open links.
fn card_data(title: &str, text: &str, buttons: &[(&str, &str)]) -> Value {
    let actions: Vec<Value> = buttons
        .iter()
        .enumerate()
        .map(|(i, (label, url))| {
            json!({
                "type": "button",
                "label": { "type": "text", "text": label, "id": format!("text_{i}") },
                "actionType": "openLink",
                "url": { "all": url },
                "status": "primary",
                "id": format!("button_{i}"),
            })
        })
        .collect();
    json!({
        "config": { "autoLayout": true, "enableForward": true },
        "header": {
            "title": { "type": "text", "text": title },
            "logo": "@lALPDfJ6V_FPDmvNAfTNAfQ",
        },
        "contents": [
            { "type": "markdown", "text": text, "id": "markdown_1" },
            { "type": "divider", "id": "divider_1" },
            { "type": "action", "actions": actions, "id": "action_1" },
        ],
    })
}

/// A send of `data` as card `biz_id` by robot `KEY` to `GROUP`.
fn send_body(biz_id: &str, data: &Value) -> Value {
    json!({
        "cardTemplateId": "StandardCard",
        "cardBizId": biz_id,
        "robotCode": KEY,
        "openConversationId": GROUP,
        "cardData": data.to_string(),
        "sendOptions": {},
    })
}

/// An update of card `biz_id` to `data`.
fn update_body(biz_id: &str, data: &Value) -> Value {
    json!({
        "cardBizId": biz_id,
        "cardData": data.to_string(),
        "updateOptions": { "updateCardDataByKey": false },
    })
}

#[tokio::test]
async fn a_sent_card_is_recorded_with_its_title_markdown_and_buttons() {
    let fake = fake().await;
    let token = access(&fake).await;
    let mut data = card_data(
        "[FIRING] Disk",
        "**disk** full",
        &[("Silence", "https://a/s")],
    );
    data["contents"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "text", "text": "since 10:00", "id": "text_9" }));
    data["contents"][2]["actions"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "type": "button",
            "label": { "type": "text", "text": "Ack", "id": "text_8" },
            "actionType": "request",
            "status": "normal",
            "id": "button_8",
        }));

    let (status, answer) = send(&fake, &token, &send_body("card-1", &data)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["processQueryKey"].is_string(), "{answer}");

    let cards = fake.cards();
    assert_eq!(cards.len(), 1);
    let card = &cards[0];
    assert_eq!(card.biz_id, "card-1");
    assert_eq!(card.open_conversation_id, GROUP);
    assert_eq!(card.robot_code, KEY);
    assert_eq!(card.history, vec![data.clone()]);
    assert_eq!(card.latest(), &data);
    assert_eq!(card.title(), "[FIRING] Disk");
    assert_eq!(card.markdown(), "**disk** full\nsince 10:00");
    assert_eq!(
        card.buttons(),
        vec![
            ("Silence".to_owned(), "https://a/s".to_owned()),
            ("Ack".to_owned(), String::new()),
        ]
    );
    assert_eq!((card.updates(), card.repeated_sends), (0, 0));
    assert_eq!(fake.card("card-1").as_ref(), Some(card));
    assert_eq!(fake.cards_in_group(GROUP), cards);
    assert!(fake.cards_in_group("cidOther==").is_empty());
    assert_eq!(fake.card("card-2"), None);

    let sends: Vec<Request> = fake
        .requests()
        .into_iter()
        .filter(Request::is_card_send)
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(
        (sends[0].http_status, sends[0].token.as_str()),
        (200, &*token)
    );
}

/// The SDK documents `cardBizId`: "同一个outTrackId重复创建，卡片数据不覆盖更新".
#[tokio::test]
async fn a_repeated_send_is_taken_but_keeps_the_first_data() {
    let fake = fake().await;
    let token = access(&fake).await;
    let first = card_data("first", "one", &[]);
    assert_eq!(
        send(&fake, &token, &send_body("card-1", &first)).await.0,
        200
    );

    let second = card_data("second", "two", &[]);
    for _ in 0..2 {
        let (status, answer) = send(&fake, &token, &send_body("card-1", &second)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["processQueryKey"].is_string(), "{answer}");
    }

    let cards = fake.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].history, vec![first]);
    assert_eq!(cards[0].title(), "first");
    assert_eq!(cards[0].repeated_sends, 2);
    assert_eq!(cards[0].updates(), 0);
}

#[tokio::test]
async fn updates_grow_the_history_and_unknown_or_forgotten_cards_are_refused() {
    let fake = fake().await;
    let token = access(&fake).await;
    let firing = card_data("[FIRING] Disk", "full", &[("Silence", "https://a/s")]);
    let (status, answer) = update(&fake, &token, &update_body("card-1", &firing)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("param.cardNotExist")),
        "an update before any send"
    );
    assert!(fake.cards().is_empty());

    assert_eq!(
        send(&fake, &token, &send_body("card-1", &firing)).await.0,
        200
    );
    let acked = card_data("[FIRING] Disk", "full, acknowledged", &[]);
    let resolved = card_data("[RESOLVED] Disk", "fine", &[]);
    for data in [&acked, &resolved] {
        let (status, answer) = update(&fake, &token, &update_body("card-1", data)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["processQueryKey"].is_string(), "{answer}");
    }
    let card = fake.card("card-1").unwrap();
    assert_eq!(card.history, vec![firing.clone(), acked, resolved]);
    assert_eq!(card.updates(), 2);
    assert_eq!(card.title(), "[RESOLVED] Disk");
    assert_eq!(card.markdown(), "fine");
    assert!(card.buttons().is_empty());

    assert!(fake.forget_card("card-1"));
    assert!(!fake.forget_card("card-1"));
    assert_eq!(fake.card("card-1"), None);
    let (status, answer) = update(&fake, &token, &update_body("card-1", &firing)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("param.cardNotExist")),
        "an update after forget_card"
    );
    // A send creates it anew.
    assert_eq!(
        send(&fake, &token, &send_body("card-1", &firing)).await.0,
        200
    );
    assert_eq!(fake.card("card-1").unwrap().history, vec![firing]);
    let updates = fake
        .requests()
        .iter()
        .filter(|r| r.is_card_update())
        .count();
    assert_eq!(updates, 4);
}

#[tokio::test]
async fn each_refusal_has_its_status_and_code() {
    let fake = fake().await;
    let token = access(&fake).await;
    let data = card_data("t", "x", &[]);
    assert_eq!(send(&fake, &token, &send_body("known", &data)).await.0, 200);

    let send_with = |field: &str, value: Value| {
        let mut body = send_body("card-1", &data);
        body[field] = value;
        body
    };
    let update_with = |field: &str, value: Value| {
        let mut body = update_body("known", &data);
        body[field] = value;
        body
    };
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let cases = [
        (
            "a send with an unknown token",
            post.clone(),
            CARD_SEND_PATH,
            "nope",
            send_body("card-1", &data),
            400,
            "InvalidAuthentication",
        ),
        (
            "a send by an unknown robot",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("robotCode", "ghost".into()),
            400,
            "invalidParameter.robotCode.notExsit",
        ),
        (
            "a send by another application's robot",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("robotCode", "otherrobot".into()),
            400,
            "invalidParameter.robotCode.auth",
        ),
        (
            "a send to a group the robot is not in",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("openConversationId", "cidOther==".into()),
            400,
            "invalid.openConversationId",
        ),
        (
            "a send to a single chat",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("openConversationId", Value::Null),
            400,
            "invalid.openConversationId",
        ),
        (
            "a template the fake does not know",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardTemplateId", "xxxx.schema".into()),
            400,
            "param.error",
        ),
        (
            "no template",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardTemplateId", Value::Null),
            400,
            "param.error",
        ),
        (
            "an empty cardBizId",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardBizId", "".into()),
            400,
            "param.error",
        ),
        (
            "cardData as an object, not a string",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardData", data.clone()),
            400,
            "param.error",
        ),
        (
            "cardData that is not JSON",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardData", "{config".into()),
            400,
            "param.error",
        ),
        (
            "cardData without contents",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardData", r#"{"header":{}}"#.into()),
            400,
            "param.error",
        ),
        (
            "cardData that is an array",
            post.clone(),
            CARD_SEND_PATH,
            &*token,
            send_with("cardData", "[]".into()),
            400,
            "param.error",
        ),
        (
            "a send as PUT",
            put.clone(),
            CARD_SEND_PATH,
            &*token,
            send_body("card-1", &data),
            405,
            "MethodNotAllowed",
        ),
        (
            "an update with an unknown token",
            put.clone(),
            CARD_UPDATE_PATH,
            "nope",
            update_body("known", &data),
            400,
            "InvalidAuthentication",
        ),
        (
            "an update as POST",
            post.clone(),
            CARD_UPDATE_PATH,
            &*token,
            update_body("known", &data),
            405,
            "MethodNotAllowed",
        ),
        (
            "an update without cardBizId",
            put.clone(),
            CARD_UPDATE_PATH,
            &*token,
            update_with("cardBizId", Value::Null),
            400,
            "param.error",
        ),
        (
            "an update without cardData (of private data only)",
            put.clone(),
            CARD_UPDATE_PATH,
            &*token,
            update_with("cardData", Value::Null),
            400,
            "param.error",
        ),
        (
            "an update without contents",
            put.clone(),
            CARD_UPDATE_PATH,
            &*token,
            update_with("cardData", "{}".into()),
            400,
            "param.error",
        ),
        (
            "an update by key",
            put.clone(),
            CARD_UPDATE_PATH,
            &*token,
            update_with("updateOptions", json!({ "updateCardDataByKey": true })),
            400,
            "param.error",
        ),
    ];
    for (case, method, path, token, body, want_status, want_code) in cases {
        let (status, answer) = request(&fake, method, path, token, &body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (want_status, Some(want_code)),
            "{case}: {answer}"
        );
        assert!(answer["requestid"].is_string(), "{case}");
    }
    let cards = fake.cards();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!((cards[0].updates(), cards[0].repeated_sends), (0, 0));

    fake.revoke_tokens();
    let (status, answer) = send(&fake, &token, &send_body("card-1", &data)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("InvalidAuthentication")),
        "a revoked token"
    );
}

#[tokio::test]
async fn cards_are_throttled_per_application_and_api() {
    let fake = FakeDingTalk::start(Vec::new()).await;
    let mut app = FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]);
    app.per_second = 2;
    fake.add_app(app);
    let token = access(&fake).await;
    let data = card_data("t", "x", &[]);

    let mut sends = Vec::new();
    for id in ["card-1", "card-2", "card-3"] {
        sends.push(send(&fake, &token, &send_body(id, &data)).await);
    }
    let mut updates = Vec::new();
    for _ in 0..3 {
        updates.push(update(&fake, &token, &update_body("card-1", &data)).await);
    }
    for answers in [&sends, &updates] {
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, [200, 200, 403], "{answers:?}");
        assert_eq!(
            answers[2].1["code"],
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
        );
    }
    assert_eq!(fake.cards().len(), 2, "a throttled send leaves no card");
    assert_eq!(fake.card("card-1").unwrap().updates(), 2);
}

#[tokio::test]
async fn cards_take_injected_failures() {
    let fake = fake().await;
    let token = access(&fake).await;
    let data = card_data("t", "x", &[]);
    assert_eq!(
        send(&fake, &token, &send_body("card-2", &data)).await.0,
        200
    );

    fake.set_mode(Mode::OpenApiError(503, "ServiceUnavailable".into()));
    let (status, answer) = send(&fake, &token, &send_body("card-9", &data)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    let (status, answer) = update(&fake, &token, &update_body("card-2", &data)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );

    fake.set_mode(Mode::Http500);
    assert_eq!(
        send(&fake, &token, &send_body("card-9", &data)).await.0,
        500
    );
    assert_eq!(fake.card("card-9"), None);
    assert_eq!(fake.card("card-2").unwrap().updates(), 0);

    fake.set_mode(Mode::Hang);
    let body = send_body("card-9", &data);
    let released = async {
        fake.wait_until("the card send arrived", WAIT, |requests| {
            requests
                .last()
                .is_some_and(|r| r.is_card_send() && r.http_status == 0)
        })
        .await;
        assert_eq!(fake.card("card-9"), None, "a hanging send made a card");
        fake.set_mode(Mode::Normal);
    };
    let ((status, answer), ()) = tokio::join!(send(&fake, &token, &body), released);
    assert_eq!(status, 200, "{answer}");
    assert!(fake.card("card-9").is_some());
}

#[tokio::test]
async fn wait_for_cards_returns_once_they_hold_and_panics_on_timeout() {
    let fake = Arc::new(fake().await);
    let token = access(&fake).await;
    let sender = tokio::spawn({
        let fake = Arc::clone(&fake);
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let data = card_data("late", "x", &[]);
            send(&fake, &token, &send_body("card-1", &data)).await
        }
    });
    let cards = fake
        .wait_for_cards("a card titled late", WAIT, |cards| {
            cards.iter().any(|c| c.title() == "late")
        })
        .await;
    assert_eq!(cards.len(), 1);
    assert_eq!(sender.await.unwrap().0, 200);

    let waiting = Arc::clone(&fake);
    let message = timeout_message(async move {
        waiting
            .wait_for_cards("two cards", Duration::from_millis(100), |cards| {
                cards.len() == 2
            })
            .await
    })
    .await;
    assert!(
        message.starts_with("timed out after 100ms waiting until two cards; 1 card(s):"),
        "{message}"
    );
    assert!(message.contains("\"card-1\""), "{message}");
}
