//! Tests of the fake's DINGs and one-to-one messages, through HTTP as a client sees them.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::ding::{
    DING_READ_PATH, DING_SEND_PATH, MAX_IN_APP_RECEIVERS, MAX_SMS_OR_CALL_RECEIVERS,
    ONE_TO_ONE_PATH,
};
use super::test_support::{GROUP, KEY, SECRET, access, request, timeout_message, two_apps as fake};
use super::*;

const WAIT: Duration = Duration::from_secs(5);
/// The code of a missing or mistyped parameter.
const BAD: &str = "invalidParameter.param.invalid";

/// POSTs `body` to `path` with `token` in the OpenAPI's header: the status and the answer.
async fn call(fake: &FakeDingTalk, path: &str, token: &str, body: &Value) -> (u16, Value) {
    request(fake, reqwest::Method::POST, path, token, body).await
}

/// Asserts that `body` sent to `path` with `token` is refused with HTTP 400 and `code`.
async fn assert_refused(
    fake: &FakeDingTalk,
    case: &str,
    path: &str,
    token: &str,
    body: &Value,
    code: &str,
) {
    let (status, answer) = call(fake, path, token, body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some(code)),
        "{case}: {answer}"
    );
    assert!(answer["requestid"].is_string(), "{case}");
}

/// User ids `user0`, `user1`… up to `count`.
fn users(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("user{i}")).collect()
}

/// A DING by robot `KEY` of `remind_type` to `receivers`.
fn ding_body(remind_type: u8, receivers: &[String]) -> Value {
    json!({
        "robotCode": KEY,
        "remindType": remind_type,
        "receiverUserIdList": receivers,
        "content": "[FIRING] Disk full on db-1",
    })
}

/// A query of the read statuses of the DING `open_ding_id` of robot `KEY`.
fn read_body(open_ding_id: &str) -> Value {
    json!({ "robotCode": KEY, "openDingId": open_ding_id })
}

/// A markdown one-to-one message by robot `KEY` to `users`.
fn one_to_one_body(users: &[&str]) -> Value {
    json!({
        "robotCode": KEY,
        "userIds": users,
        "msgKey": "sampleMarkdown",
        "msgParam": json!({ "title": "[FIRING] Disk", "text": "**disk** full" }).to_string(),
    })
}

/// Sends a DING that the fake takes; its `openDingId`.
async fn send_ding(fake: &FakeDingTalk, token: &str, body: &Value) -> String {
    let (status, answer) = call(fake, DING_SEND_PATH, token, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["openDingId"].as_str().unwrap().to_owned()
}

/// The `readStatus` of each receiver of the DING `open_ding_id`, in the answer's order.
async fn read_statuses(fake: &FakeDingTalk, token: &str, open_ding_id: &str) -> Vec<String> {
    let (status, answer) = call(fake, DING_READ_PATH, token, &read_body(open_ding_id)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    let infos = answer["result"]["robotDingReadInfoList"]
        .as_array()
        .unwrap();
    infos
        .iter()
        .map(|info| {
            let (user, status) = (&info["userId"], &info["readStatus"]);
            format!("{}={}", user.as_str().unwrap(), status.as_str().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_ding_is_recorded_with_its_fields_and_gets_an_open_ding_id() {
    let fake = fake().await;
    let token = access(&fake).await;
    let mut body = ding_body(3, &users(2));
    body["callVoice"] = "Standard_Female_Voice".into();

    let id = send_ding(&fake, &token, &body).await;
    assert!(!id.is_empty());
    let dings = fake.dings();
    assert_eq!(dings.len(), 1);
    let ding = &dings[0];
    assert_eq!(ding.open_ding_id, id);
    assert_eq!(ding.robot_code, KEY);
    assert_eq!(ding.remind_type, 3);
    assert_eq!(ding.receivers, ["user0", "user1"]);
    assert_eq!(ding.content, "[FIRING] Disk full on db-1");
    assert_eq!(ding.call_voice.as_deref(), Some("Standard_Female_Voice"));
    assert!(ding.read_by.is_empty());
    assert_eq!(fake.ding(&id).as_ref(), Some(ding));

    let second = send_ding(&fake, &token, &ding_body(1, &users(1))).await;
    assert_ne!(second, id, "each DING has its own openDingId");
    let second = fake.ding(&second).unwrap();
    assert_eq!((second.remind_type, second.call_voice), (1, None));
    assert_eq!(fake.dings().len(), 2);
    assert_eq!(fake.ding("fake-ding-none"), None);
}

#[tokio::test]
async fn a_ding_takes_as_many_receivers_as_its_remind_type_allows() {
    let fake = fake().await;
    let token = access(&fake).await;
    let cases = [
        (1, MAX_IN_APP_RECEIVERS),
        (2, MAX_SMS_OR_CALL_RECEIVERS),
        (3, MAX_SMS_OR_CALL_RECEIVERS),
    ];
    for (remind_type, max) in cases {
        send_ding(&fake, &token, &ding_body(remind_type, &users(max))).await;
        let body = ding_body(remind_type, &users(max + 1));
        let case = format!("{} receivers of remindType {remind_type}", max + 1);
        let limit = "ding.receivercount.limit";
        assert_refused(&fake, &case, DING_SEND_PATH, &token, &body, limit).await;
    }
    let counts: Vec<(u8, usize)> = fake
        .dings()
        .iter()
        .map(|d| (d.remind_type, d.receivers.len()))
        .collect();
    assert_eq!(counts, [(1, 200), (2, 20), (3, 20)]);
    let (_, answer) = call(&fake, DING_SEND_PATH, &token, &ding_body(3, &users(21))).await;
    assert_eq!(answer["message"], "ding receiver count limit");
}

#[tokio::test]
async fn each_call_takes_only_a_valid_token_and_a_robot_of_its_application() {
    let fake = fake().await;
    let token = access(&fake).await;
    let id = send_ding(&fake, &token, &ding_body(1, &users(1))).await;
    let calls = [
        (DING_SEND_PATH, ding_body(2, &users(2))),
        (DING_READ_PATH, read_body(&id)),
        (ONE_TO_ONE_PATH, one_to_one_body(&["user0"])),
    ];
    for (path, body) in calls {
        let robot = |code: Value| {
            let mut body = body.clone();
            body["robotCode"] = code;
            body
        };
        let cases = [
            (
                "an unknown token",
                "nope",
                body.clone(),
                "InvalidAuthentication",
            ),
            (
                "an unknown robot",
                &token,
                robot("ghost".into()),
                "invalidParameter.robotCode.notExsit",
            ),
            (
                "another application's robot",
                &token,
                robot("otherrobot".into()),
                "invalidParameter.robotCode.auth",
            ),
            ("no robotCode", &token, robot(Value::Null), BAD),
        ];
        for (case, token, body, code) in cases {
            assert_refused(&fake, &format!("{path}: {case}"), path, token, &body, code).await;
        }
        let (status, answer) = call(&fake, path, &token, &Value::Null).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("MissingBody")),
            "{path}"
        );
    }
    assert_eq!(fake.dings().len(), 1, "a refused DING is not kept");
    assert!(fake.one_to_one_messages().is_empty());

    fake.revoke_tokens();
    let body = ding_body(1, &users(1));
    assert_refused(
        &fake,
        "a revoked token",
        DING_SEND_PATH,
        &token,
        &body,
        "InvalidAuthentication",
    )
    .await;
}

#[tokio::test]
async fn each_bad_parameter_is_refused() {
    let fake = fake().await;
    let token = access(&fake).await;
    let id = send_ding(&fake, &token, &ding_body(1, &users(1))).await;
    let ding = |field: &str, value: Value| {
        let mut body = ding_body(2, &users(2));
        body[field] = value;
        (DING_SEND_PATH, body)
    };
    let read = |field: &str, value: Value| {
        let mut body = read_body(&id);
        body[field] = value;
        (DING_READ_PATH, body)
    };
    let oto = |field: &str, value: Value| {
        let mut body = one_to_one_body(&["user0"]);
        body[field] = value;
        (ONE_TO_ONE_PATH, body)
    };
    let too_long = json!({ "title": "t", "text": "x".repeat(MAX_MSG_PARAM_BYTES) }).to_string();
    let (bad_key, bad_param) = (
        "invalidParameter.msgKey.invalid",
        "invalidParameter.msgParam.invalid",
    );
    let cases = [
        ("remindType 4", ding("remindType", 4.into()), BAD),
        (
            "remindType as a string",
            ding("remindType", "1".into()),
            BAD,
        ),
        ("no remindType", ding("remindType", Value::Null), BAD),
        ("no receivers", ding("receiverUserIdList", json!([])), BAD),
        (
            "a receiver not a string",
            ding("receiverUserIdList", json!(["user0", 7])),
            BAD,
        ),
        ("no content", ding("content", Value::Null), BAD),
        ("an empty content", ding("content", "".into()), BAD),
        ("callVoice as a number", ding("callVoice", 1.into()), BAD),
        (
            "an unknown openDingId",
            read("openDingId", "fake-ding-none".into()),
            BAD,
        ),
        ("no openDingId", read("openDingId", Value::Null), BAD),
        ("no userIds", oto("userIds", json!([])), BAD),
        ("userIds as a string", oto("userIds", "user0".into()), BAD),
        (
            "an unknown msgKey",
            oto("msgKey", "sampleNothing".into()),
            bad_key,
        ),
        (
            "msgParam not JSON",
            oto("msgParam", "{title".into()),
            bad_param,
        ),
        (
            "msgParam as an object",
            oto("msgParam", json!({ "title": "t", "text": "x" })),
            bad_param,
        ),
        (
            "msgParam without its text",
            oto("msgParam", r#"{"title":"t"}"#.into()),
            bad_param,
        ),
        (
            "msgParam too long",
            oto("msgParam", too_long.into()),
            bad_param,
        ),
    ];
    for (case, (path, body), code) in cases {
        assert_refused(&fake, case, path, &token, &body, code).await;
    }
    assert_eq!(fake.dings().len(), 1, "a refused DING is not kept");
    assert!(fake.one_to_one_messages().is_empty());
}

#[tokio::test]
async fn read_statuses_start_unread_and_become_read_once_marked() {
    let fake = fake().await;
    let token = access(&fake).await;
    let id = send_ding(&fake, &token, &ding_body(1, &users(2))).await;
    assert_eq!(
        read_statuses(&fake, &token, &id).await,
        ["user0=UNREAD", "user1=UNREAD"]
    );

    assert!(fake.mark_ding_read(&id, "user1"));
    assert!(fake.mark_ding_read(&id, "user1"), "marking again");
    assert!(!fake.mark_ding_read(&id, "stranger"), "not a receiver");
    assert!(
        !fake.mark_ding_read("fake-ding-none", "user0"),
        "no such DING"
    );
    assert_eq!(
        read_statuses(&fake, &token, &id).await,
        ["user0=UNREAD", "user1=READ"]
    );
    let ding = fake.ding(&id).unwrap();
    assert_eq!(ding.read_by, ["user1"]);
    assert_eq!(ding.read_status("user0"), Some("UNREAD"));
    assert_eq!(ding.read_status("user1"), Some("READ"));
    assert_eq!(ding.read_status("stranger"), None);

    // Another robot of the same application may not read this one's DING.
    let other = FakeApp::new("app3", "secret3").robot("robot3", &[GROUP]);
    fake.add_app(other.robot("robot4", &[]));
    let body = json!({ "appKey": "app3", "appSecret": "secret3" });
    let other_token = call(&fake, TOKEN_PATH, "", &body).await.1["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_id = {
        let mut body = ding_body(1, &users(1));
        body["robotCode"] = "robot3".into();
        send_ding(&fake, &other_token, &body).await
    };
    let body = json!({ "robotCode": "robot4", "openDingId": other_id });
    let (status, answer) = call(&fake, DING_READ_PATH, &other_token, &body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalidParameter.param.invalid")),
        "{answer}"
    );
}

#[tokio::test]
async fn a_one_to_one_message_is_recorded_with_its_parsed_param() {
    let fake = fake().await;
    let token = access(&fake).await;
    let (status, answer) = call(
        &fake,
        ONE_TO_ONE_PATH,
        &token,
        &one_to_one_body(&["user0", "user1"]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["invalidStaffIdList"], json!([]));
    assert_eq!(answer["flowControlledStaffIdList"], json!([]));
    assert_eq!(answer["filteredStaffIdList"], json!([]));
    let key = answer["processQueryKey"].as_str().unwrap();

    let messages = fake.one_to_one_messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.robot_code, KEY);
    assert_eq!(message.user_ids, ["user0", "user1"]);
    assert_eq!(message.msg_key, "sampleMarkdown");
    assert_eq!(
        message.msg_param,
        json!({ "title": "[FIRING] Disk", "text": "**disk** full" })
    );
    assert_eq!(message.process_query_key, key);
    let request = fake.requests().pop().unwrap();
    assert_eq!(
        (request.title(), request.text()),
        ("[FIRING] Disk", "**disk** full")
    );
    assert!(fake.dings().is_empty());
}

#[tokio::test]
async fn each_call_is_throttled_per_application_and_api_and_takes_injected_failures() {
    let fake = FakeDingTalk::start(Vec::new()).await;
    let mut app = FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]);
    app.per_second = 2;
    fake.add_app(app);
    let token = access(&fake).await;
    let id = send_ding(&fake, &token, &ding_body(1, &users(1))).await;
    let calls = [
        (DING_SEND_PATH, ding_body(1, &users(1))),
        (DING_READ_PATH, read_body(&id)),
        (ONE_TO_ONE_PATH, one_to_one_body(&["user0"])),
    ];
    for (path, body) in &calls {
        let mut statuses = Vec::new();
        // The DING sent above counts against its API.
        let allowed = if *path == DING_SEND_PATH { 1 } else { 2 };
        for _ in 0..=allowed {
            statuses.push(call(&fake, path, &token, body).await);
        }
        let last = statuses.pop().unwrap();
        assert!(
            statuses.iter().all(|(s, _)| *s == 200),
            "{path}: {statuses:?}"
        );
        assert_eq!(
            (last.0, last.1["code"].as_str()),
            (403, Some("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")),
            "{path}"
        );
    }
    assert_eq!(fake.dings().len(), 2, "a throttled DING is not kept");
    assert_eq!(fake.one_to_one_messages().len(), 2);

    fake.set_mode(Mode::OpenApiError(503, "ServiceUnavailable".into()));
    for (path, body) in &calls {
        let (status, answer) = call(&fake, path, &token, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (503, Some("ServiceUnavailable")),
            "{path}"
        );
    }
    assert_eq!(fake.dings().len(), 2);
}

#[tokio::test]
async fn wait_for_dings_and_messages_return_once_they_hold_and_panic_on_timeout() {
    let fake = Arc::new(fake().await);
    let token = access(&fake).await;
    let sender = tokio::spawn({
        let (fake, token) = (Arc::clone(&fake), token.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            send_ding(&fake, &token, &ding_body(3, &users(1))).await;
            call(&fake, ONE_TO_ONE_PATH, &token, &one_to_one_body(&["user0"])).await
        }
    });
    let dings = fake
        .wait_for_dings("a phone-call DING", WAIT, |dings| {
            dings.iter().any(|d| d.remind_type == 3)
        })
        .await;
    assert_eq!(dings.len(), 1);
    let messages = fake
        .wait_for_one_to_one_messages("a message to user0", WAIT, |messages| {
            messages.iter().any(|m| m.user_ids == ["user0"])
        })
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(sender.await.unwrap().0, 200);

    let waiting = Arc::clone(&fake);
    let message = timeout_message(async move {
        waiting
            .wait_for_dings("two DINGs", Duration::from_millis(100), |dings| {
                dings.len() == 2
            })
            .await
    })
    .await;
    assert!(
        message.starts_with("timed out after 100ms waiting until two DINGs; 1 DING(s):"),
        "{message}"
    );
    assert!(message.contains(&dings[0].open_ding_id), "{message}");
}
