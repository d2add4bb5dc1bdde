//! Tests of the fake's OpenAPI, through HTTP as a client sees it.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::test_support::{GROUP, KEY, SECRET, client, two_apps as fake};
use super::*;

/// POSTs `body` to `path` with `token` in the OpenAPI's header; the status and the answer.
async fn call(fake: &FakeDingTalk, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = client()
        .post(format!("{}{path}", fake.openapi_url()))
        .header("x-acs-dingtalk-access-token", token)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn token(fake: &FakeDingTalk, key: &str, secret: &str) -> (u16, Value) {
    let body = json!({ "appKey": key, "appSecret": secret });
    call(fake, TOKEN_PATH, "", &body).await
}

fn markdown(robot_code: &str, group: &str, text: &str) -> Value {
    json!({
        "robotCode": robot_code,
        "openConversationId": group,
        "msgKey": "sampleMarkdown",
        "msgParam": json!({ "title": "[HertzBeat] t", "text": text }).to_string(),
    })
}

#[tokio::test]
async fn a_token_then_a_group_message_is_delivered_and_recorded() {
    let fake = fake().await;
    let (status, answer) = token(&fake, KEY, SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(answer["expireIn"], 7200);
    let access = answer["accessToken"].as_str().unwrap().to_owned();

    let (status, answer) = call(&fake, GROUP_PATH, &access, &markdown(KEY, GROUP, "body")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["processQueryKey"].is_string());
    let delivered = fake.delivered_to_group(GROUP);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].token, access);
    assert_eq!(delivered[0].title(), "[HertzBeat] t");
    assert_eq!(delivered[0].text(), "body");
    assert_eq!(fake.counts().delivered, 1);
    assert!(fake.requests()[0].is_token_request());
}

#[tokio::test]
async fn each_refusal_has_its_status_and_code() {
    let fake = fake().await;
    let (status, answer) = token(&fake, KEY, "wrong").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("InvalidAuthentication"))
    );
    let access = token(&fake, KEY, SECRET).await.1["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let param = |key: &str, param: &str| {
        let mut body = markdown(KEY, GROUP, "x");
        body["msgKey"] = key.into();
        body["msgParam"] = param.into();
        body
    };
    let too_long = json!({ "title": "t", "text": "x".repeat(MAX_MSG_PARAM_BYTES) }).to_string();
    let cases = [
        (
            "unknown token",
            "nope".to_owned(),
            markdown(KEY, GROUP, "x"),
            400,
            "InvalidAuthentication",
        ),
        (
            "unknown robot",
            access.clone(),
            markdown("ghost", GROUP, "x"),
            400,
            "invalidParameter.robotCode.notExsit",
        ),
        (
            "another app's robot",
            access.clone(),
            markdown("otherrobot", GROUP, "x"),
            400,
            "invalidParameter.robotCode.auth",
        ),
        (
            "not in the group",
            access.clone(),
            markdown(KEY, "cidOther==", "x"),
            400,
            "invalid.openConversationId",
        ),
        (
            "unknown msgKey",
            access.clone(),
            param("sampleNothing", "{}"),
            400,
            "invalidParameter.msgKey.invalid",
        ),
        (
            "fields missing",
            access.clone(),
            param("sampleActionCard2", r#"{"title":"t","text":"x"}"#),
            400,
            "invalidParameter.msgParam.invalid",
        ),
        (
            "too long",
            access.clone(),
            param("sampleMarkdown", &too_long),
            400,
            "invalidParameter.msgParam.invalid",
        ),
    ];
    for (case, token, body, want_status, want_code) in cases {
        let (status, answer) = call(&fake, GROUP_PATH, &token, &body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (want_status, Some(want_code)),
            "{case}"
        );
        assert!(answer["requestid"].is_string(), "{case}");
    }
    assert!(fake.delivered_to_group(GROUP).is_empty());

    fake.revoke_tokens();
    let (status, answer) = call(&fake, GROUP_PATH, &access, &markdown(KEY, GROUP, "x")).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("InvalidAuthentication"))
    );
}

#[tokio::test]
async fn an_app_sending_too_fast_is_throttled_and_modes_inject_failures() {
    let fake = FakeDingTalk::start(Vec::new()).await;
    let mut app = FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]);
    app.per_second = 2;
    fake.add_app(app);
    let access = token(&fake, KEY, SECRET).await.1["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = markdown(KEY, GROUP, "x");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&fake, GROUP_PATH, &access, &body).await);
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    assert_eq!(statuses[2].0, 403);
    assert_eq!(
        statuses[2].1["code"],
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
    );

    fake.set_mode(Mode::OpenApiError(503, "ServiceUnavailable".into()));
    let (status, answer) = call(&fake, GROUP_PATH, &access, &body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    // Tokens are still given out.
    assert_eq!(token(&fake, KEY, SECRET).await.0, 200);
}
