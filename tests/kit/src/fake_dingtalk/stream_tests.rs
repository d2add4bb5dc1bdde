//! Tests of the fake's Stream mode, through HTTP and a WebSocket as a client sees them.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

use super::stream::{OPEN_PATH, SESSION_PATH};
use super::test_support::client;
use super::*;

const KEY: &str = "dingstreamkey";
const SECRET: &str = "stream-secret";
const GROUP: &str = "cidGroup==";
const WAIT: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<TcpStream>;

async fn fake() -> FakeDingTalk {
    let fake = FakeDingTalk::start(Vec::new()).await;
    fake.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
    fake
}

/// Opens a connection subscribing to `subscriptions`; the status and the answer.
async fn open_with(
    fake: &FakeDingTalk,
    secret: &str,
    subscriptions: &[(&str, &str)],
) -> (u16, Value) {
    let subscriptions: Vec<Value> = subscriptions
        .iter()
        .map(|(kind, topic)| json!({ "type": kind, "topic": topic }))
        .collect();
    let body = json!({
        "clientId": KEY,
        "clientSecret": secret,
        "subscriptions": subscriptions,
        "ua": "testkit/1",
        "localIp": "127.0.0.1",
    });
    let response = client()
        .post(format!("{}{OPEN_PATH}", fake.openapi_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Opens a connection for robot messages with the right secret; the status and the answer.
async fn open(fake: &FakeDingTalk) -> (u16, Value) {
    open_with(fake, SECRET, &[("CALLBACK", BOT_MESSAGE_TOPIC)]).await
}

/// Connects the WebSocket of an open's answer.
async fn connect(answer: &Value) -> Result<Socket, tungstenite::Error> {
    let endpoint = answer["endpoint"].as_str().unwrap();
    let ticket = answer["ticket"].as_str().unwrap();
    connect_to(&format!("{endpoint}?ticket={ticket}")).await
}

async fn connect_to(url: &str) -> Result<Socket, tungstenite::Error> {
    let parsed = url::Url::parse(url).unwrap();
    let tcp = TcpStream::connect(parsed.socket_addrs(|| None).unwrap()[0])
        .await
        .unwrap();
    tokio_tungstenite::client_async(url, tcp)
        .await
        .map(|(socket, _)| socket)
}

/// Opens and connects a client for robot messages.
async fn connected(fake: &FakeDingTalk) -> Socket {
    let (status, answer) = open(fake).await;
    assert_eq!(status, 200, "{answer}");
    connect(&answer).await.unwrap()
}

/// The next text frame, parsed.
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame within the wait")
            .expect("the connection open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Acks `frame` with code 200 and `data`, as the SDKs do.
async fn ack(socket: &mut Socket, frame: &Value, data: &str) {
    let message_id = &frame["headers"]["messageId"];
    let ack = json!({
        "code": 200,
        "headers": { "contentType": "application/json", "messageId": message_id },
        "message": "OK",
        "data": data,
    });
    socket.send(Message::text(ack.to_string())).await.unwrap();
}

/// A frame's `data`, parsed.
fn data(frame: &Value) -> Value {
    serde_json::from_str(frame["data"].as_str().unwrap()).unwrap()
}

/// Reads until the connection ends; whether the server sent a close frame first.
async fn closed_with_close_frame(socket: &mut Socket) -> bool {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.unwrap() {
            Some(Ok(Message::Close(_))) => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return false,
        }
    }
}

/// POSTs `body` to a session webhook; the status and the answer.
async fn reply(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_bot_message_is_pushed_and_its_ack_recorded() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let opens = fake.stream_opens();
    assert_eq!(opens.len(), 1);
    assert_eq!((opens[0].client_id.as_str(), opens[0].status), (KEY, 200));
    assert!(opens[0].subscribes("CALLBACK", BOT_MESSAGE_TOPIC));
    assert_eq!(opens[0].ua, "testkit/1");

    let message = BotMessage::new(GROUP, " ack 1").sender("Ann", "staff1");
    let id = fake.push_bot_message(message.clone());
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["specVersion"], "1.0");
    assert_eq!(frame["type"], "CALLBACK");
    assert_eq!(frame["headers"]["topic"], BOT_MESSAGE_TOPIC);
    assert_eq!(frame["headers"]["messageId"], id.as_str());
    assert_eq!(frame["headers"]["appId"], KEY);
    assert_eq!(frame["headers"]["contentType"], "application/json");
    assert!(
        frame["headers"]["time"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    let data = data(&frame);
    assert_eq!(data["conversationId"], GROUP);
    assert_eq!(data["conversationType"], "2");
    assert_eq!(data["msgtype"], "text");
    assert_eq!(data["text"]["content"], " ack 1");
    assert_eq!(data["senderNick"], "Ann");
    assert_eq!(data["senderStaffId"], "staff1");
    assert_eq!(data["msgId"], message.msg_id.as_str());
    assert_eq!(
        data["robotCode"], KEY,
        "an internal app's robot code is its key"
    );
    assert_eq!(data["isInAtList"], true);
    let webhook = data["sessionWebhook"].as_str().unwrap();
    let prefix = format!("{}{SESSION_PATH}?session=", fake.openapi_url());
    assert!(webhook.starts_with(&prefix), "{webhook}");
    let created = data["createAt"].as_i64().unwrap();
    assert_eq!(
        data["sessionWebhookExpiredTime"].as_i64().unwrap() - created,
        90 * 60 * 1000
    );

    assert_eq!(
        fake.wait_for_ack(&id, Duration::from_millis(100)).await,
        None
    );
    ack(&mut socket, &frame, "{\"response\":\"ok\"}").await;
    let acked = fake.wait_for_ack(&id, WAIT).await.unwrap();
    assert_eq!(
        (acked.connection, acked.code, acked.message.as_str()),
        (0, 200, "OK")
    );
    assert_eq!(acked.data_json(), json!({ "response": "ok" }));
    assert_eq!(fake.stream_acks(), vec![acked]);
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_401() {
    let fake = fake().await;
    let (status, answer) = open_with(&fake, "wrong", &[("CALLBACK", BOT_MESSAGE_TOPIC)]).await;
    assert_eq!(status, 401);
    assert_eq!(answer["code"], "InvalidAuthentication");
    assert!(answer.get("ticket").is_none());
    assert_eq!(fake.stream_opens()[0].status, 401);

    let response = client()
        .post(format!("{}{OPEN_PATH}", fake.openapi_url()))
        .json(&json!({ "clientId": "unknown", "clientSecret": SECRET, "subscriptions": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn refused_opens_answer_503_until_allowed_again() {
    let fake = fake().await;
    fake.refuse_stream_opens(true);
    let (status, answer) = open(&fake).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    fake.refuse_stream_opens(false);
    let (status, answer) = open(&fake).await;
    assert_eq!(status, 200);
    assert!(answer["ticket"].is_string());
    let statuses: Vec<u16> = fake.stream_opens().iter().map(|o| o.status).collect();
    assert_eq!(statuses, [503, 200]);
}

#[tokio::test]
async fn a_ticket_opens_one_connection_only() {
    let fake = fake().await;
    let (_, answer) = open(&fake).await;
    let _socket = connect(&answer).await.unwrap();
    match connect(&answer).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a used ticket was not refused: {other:?}"),
    }
    let endpoint = answer["endpoint"].as_str().unwrap();
    match connect_to(&format!("{endpoint}?ticket=made-up")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("an unknown ticket was not refused: {other:?}"),
    }
    assert_eq!(fake.stream_connections(), 1);
    assert_eq!(fake.stream_connections_opened(), 1);
}

#[tokio::test]
async fn a_ping_is_answered_with_its_data_and_recorded() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let opaque = fake.push_ping();
    let frame = next_frame(&mut socket).await;
    assert_eq!(
        (frame["type"].as_str(), frame["headers"]["topic"].as_str()),
        (Some("SYSTEM"), Some("ping"))
    );
    assert_eq!(data(&frame), json!({ "opaque": opaque }));
    ack(&mut socket, &frame, frame["data"].as_str().unwrap()).await;
    let id = frame["headers"]["messageId"].as_str().unwrap();
    let pong = fake.wait_for_ack(id, WAIT).await.unwrap();
    assert_eq!(pong.data_json()["opaque"], opaque.as_str());
}

#[tokio::test]
async fn disconnect_closes_once_acked() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let ids = fake.push_disconnect();
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["headers"]["topic"], "disconnect");
    assert_eq!(ids, [frame["headers"]["messageId"].as_str().unwrap()]);
    let acked_at = std::time::Instant::now();
    ack(&mut socket, &frame, "").await;
    assert!(closed_with_close_frame(&mut socket).await);
    assert!(
        acked_at.elapsed() < Duration::from_millis(1500),
        "closed after the 2 s grace, not on the ack"
    );
    assert!(fake.wait_for_stream_connections(0, WAIT).await);

    // The client reconnects with a new ticket.
    let _socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    assert_eq!(fake.stream_connections_opened(), 2);
}

#[tokio::test]
async fn disconnect_closes_after_2s_without_an_ack() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    fake.push_disconnect();
    let pushed_at = std::time::Instant::now();
    assert_eq!(
        next_frame(&mut socket).await["headers"]["topic"],
        "disconnect"
    );
    assert!(closed_with_close_frame(&mut socket).await);
    assert!(pushed_at.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn dropped_connections_end_without_a_close_frame() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    fake.drop_stream_connections();
    assert!(!closed_with_close_frame(&mut socket).await);
    assert!(fake.wait_for_stream_connections(0, WAIT).await);
}

#[tokio::test]
async fn a_redelivery_is_a_new_frame_of_the_same_message() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let message = BotMessage::new(GROUP, "ack").msg_id("msg-1");
    let first = fake.push_bot_message(message.clone());
    let second = fake.push_bot_message(message);
    assert_ne!(first, second);
    let frames = [next_frame(&mut socket).await, next_frame(&mut socket).await];
    assert_eq!(frames[0]["headers"]["messageId"], first.as_str());
    assert_eq!(frames[1]["headers"]["messageId"], second.as_str());
    assert_eq!(data(&frames[0])["msgId"], "msg-1");
    assert_eq!(data(&frames[1])["msgId"], "msg-1");
    assert_ne!(
        BotMessage::new(GROUP, "ack").msg_id,
        BotMessage::new(GROUP, "ack").msg_id
    );
}

#[tokio::test]
async fn messages_go_to_the_connection_asked_for() {
    let fake = fake().await;
    let mut first = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let mut second = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(2, WAIT).await);

    let latest = fake.push_bot_message(BotMessage::new(GROUP, "to the latest"));
    assert_eq!(
        next_frame(&mut second).await["headers"]["messageId"],
        latest.as_str()
    );
    let on_first = fake.push_bot_message_on(0, BotMessage::new(GROUP, "to the first"));
    let frame = next_frame(&mut first).await;
    assert_eq!(frame["headers"]["messageId"], on_first.as_str());
    assert_eq!(frame["headers"]["connectionId"], "fakeconnection-0");
    ack(&mut first, &frame, "").await;
    assert_eq!(
        fake.wait_for_ack(&on_first, WAIT).await.unwrap().connection,
        0
    );

    // The first got nothing else: the next frame it reads is a ping.
    fake.push_ping();
    assert_eq!(next_frame(&mut first).await["headers"]["topic"], "ping");
}

#[tokio::test]
async fn bot_messages_need_a_subscription() {
    let fake = fake().await;
    let (_, answer) = open_with(&fake, SECRET, &[("EVENT", "*")]).await;
    let _socket = connect(&answer).await.unwrap();
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    let pushed = catch_unwind(AssertUnwindSafe(|| {
        fake.push_bot_message(BotMessage::new(GROUP, "ack"))
    }));
    assert!(
        pushed.is_err(),
        "pushed on a connection that did not subscribe"
    );
    // The fake still works after the refusal.
    assert_eq!(fake.stream_connections(), 1);
}

#[tokio::test]
async fn a_session_reply_is_taken_while_its_session_is() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    fake.push_bot_message(BotMessage::new(GROUP, "ack"));
    let webhook = data(&next_frame(&mut socket).await)["sessionWebhook"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({ "msgtype": "markdown", "markdown": { "title": "t", "text": "Acknowledged" } });

    let (status, answer) = reply(&webhook, &body).await;
    assert_eq!(
        (status, answer["errcode"].as_i64()),
        (200, Some(0)),
        "{answer}"
    );
    let replies = fake.wait_for_session_replies(1, WAIT).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].conversation_id, GROUP);
    assert_eq!(replies[0].body, body);
    assert_eq!(replies[0].text(), "Acknowledged");
    assert!(webhook.ends_with(&replies[0].session));

    let unknown = format!("{}{SESSION_PATH}?session=made-up", fake.openapi_url());
    assert_eq!(reply(&unknown, &body).await.1["errcode"], 300001);
    fake.expire_sessions();
    assert_eq!(reply(&webhook, &body).await.1["errcode"], 300001);
    assert_eq!(fake.session_replies().len(), 1);
}

#[tokio::test]
async fn other_texts_are_recorded_apart_from_acks() {
    let fake = fake().await;
    let mut socket = connected(&fake).await;
    assert!(fake.wait_for_stream_connections(1, WAIT).await);
    socket.send(Message::text("hello")).await.unwrap();
    let id = fake.push_bot_message(BotMessage::new(GROUP, "ack"));
    let frame = next_frame(&mut socket).await;
    ack(&mut socket, &frame, "").await;
    assert!(fake.wait_for_ack(&id, WAIT).await.is_some());
    assert_eq!(fake.stream_other_texts(), ["hello"]);
}
