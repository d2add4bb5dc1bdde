//! `SendError::OpenApi`: what the OpenAPI's answers to a robot of an application mean,
//! whether the message is retried, and what the operator is told to check.

use alertmanager_dingtalk::dingtalk::{Call, Retry, SendError};

use crate::load_config;

fn refused(call: Call, status: u16, code: &str) -> SendError {
    SendError::OpenApi {
        call,
        status,
        code: code.to_owned(),
        message: "DingTalk's words".to_owned(),
        request_id: "REQ-1".to_owned(),
    }
}

/// Checks the retry decision and that the hint names `hint_part`.
fn check(call: Call, status: u16, code: &str, retry: Retry, hint_part: &str) {
    let robot = &load_config(
        "robots:\n  oncall:\n    app_key: k\n    app_secret: s\n    open_conversation_id: cid==\n",
    )
    .robots["oncall"];
    let error = refused(call, status, code);
    assert_eq!(error.retry(), retry, "{error}");
    let hint = error.hint(robot);
    assert!(hint.contains(hint_part), "{code}: {hint}");
    assert!(!error.meaning().is_empty());
}

#[test]
fn throttling_pauses_the_robot_and_server_errors_are_retried() {
    use Call::GroupMessage;
    check(
        GroupMessage,
        403,
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        Retry::AfterPause,
        "pauses",
    );
    check(
        GroupMessage,
        403,
        "Forbidden.AccessDenied.QpsLimitForApi",
        Retry::AfterPause,
        "pauses",
    );
    check(GroupMessage, 429, "", Retry::AfterPause, "pauses");
    check(
        GroupMessage,
        403,
        "Forbidden.AccessDenied.ApiCountLimitForOrg",
        Retry::AfterPause,
        "5000",
    );
    check(
        GroupMessage,
        500,
        "ServiceUnavailable",
        Retry::Later,
        "retried",
    );
    check(Call::AccessToken, 503, "", Retry::Later, "retried");
    check(
        Call::AccessToken,
        403,
        "Forbidden.AccessDenied.QpsLimitForApi",
        Retry::AfterPause,
        "pauses",
    );
}

#[test]
fn configuration_errors_are_permanent_with_a_hint() {
    use Call::{AccessToken, GroupMessage};
    check(
        AccessToken,
        400,
        "InvalidAuthentication",
        Retry::Never,
        "AppSecret",
    );
    check(AccessToken, 400, "anything", Retry::Never, "AppKey");
    check(
        GroupMessage,
        400,
        "InvalidAuthentication",
        Retry::Never,
        "app_key and app_secret",
    );
    check(
        GroupMessage,
        403,
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        Retry::Never,
        "permission",
    );
    check(
        GroupMessage,
        400,
        "invalidParameter.robotCode.notExsit",
        Retry::Never,
        "robot_code",
    );
    check(
        GroupMessage,
        400,
        "invalidParameter.robotCode.auth",
        Retry::Never,
        "belongs to",
    );
    check(
        GroupMessage,
        400,
        "invalid.openConversationId",
        Retry::Never,
        "open_conversation_id",
    );
    check(GroupMessage, 400, "bot.stopped", Retry::Never, "enable it");
    check(
        GroupMessage,
        400,
        "invalidParameter.msgParam.invalid",
        Retry::Never,
        "requestid",
    );
    check(
        GroupMessage,
        400,
        "somethingNew",
        Retry::Never,
        "not retried",
    );
}

#[test]
fn only_a_rejected_token_on_a_group_message_is_worth_a_new_token() {
    // The client's refresh is tested end to end against the fake; here, which answer
    // counts as a rejected token is pinned through the metric code and the message.
    let rejected = refused(Call::GroupMessage, 400, "InvalidAuthentication");
    assert_eq!(rejected.metric_code(), "InvalidAuthentication");
    let shown = rejected.to_string();
    assert!(shown.contains("group-message call"), "{shown}");
    assert!(shown.contains("HTTP 400"), "{shown}");
    assert!(shown.contains("requestid REQ-1"), "{shown}");
    assert_eq!(
        refused(Call::GroupMessage, 502, "").metric_code(),
        "http_502"
    );
}

#[test]
fn answers_that_are_not_the_openapi_point_at_openapi_url() {
    let config = load_config(
        "robots:\n  oncall:\n    app_key: k\n    app_secret: s\n    open_conversation_id: cid==\n  \
         hook:\n    access_token: t\n",
    );
    let not_found = SendError::Http(404);
    assert!(
        not_found
            .hint(&config.robots["oncall"])
            .contains("dingtalk.openapi_url")
    );
    assert!(
        not_found
            .hint(&config.robots["hook"])
            .contains("dingtalk.api_url")
    );
    let odd = SendError::BadAnswer("<html>".into());
    assert!(
        odd.hint(&config.robots["oncall"])
            .contains("dingtalk.openapi_url")
    );
}
