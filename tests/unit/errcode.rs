//! `dingtalk::classify` and `SendError`: what DingTalk's answers mean, whether a failed
//! send is retried, and what the operator is told to check.

use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::dingtalk::{Retry, SendError, classify};

use crate::robot;

/// Classifies an answer and checks the retry decision; `None` means success.
fn check(status: u16, body: &str, expected: Option<Retry>) {
    let outcome = classify(status, body.as_bytes());
    assert_eq!(
        outcome.as_ref().err().map(SendError::retry),
        expected,
        "HTTP {status} {body}: {outcome:?}"
    );
}

fn answer(errcode: i64, errmsg: &str) -> String {
    serde_json::json!({ "errcode": errcode, "errmsg": errmsg }).to_string()
}

#[test]
fn errcode_zero_is_success() {
    check(200, r#"{"errcode":0,"errmsg":"ok"}"#, None);
    check(200, r#"{"errcode":"0","errmsg":"ok"}"#, None);
    check(200, r#"{"errcode": " 0 ","errmsg":"ok"}"#, None);
    check(200, r#"{"errcode":0}"#, None);
    check(200, r#"{"errmsg":"ok","errcode":0,"extra":[1,2]}"#, None);
}

#[test]
fn errcode_is_read_as_number_or_string() {
    assert_eq!(
        classify(
            200,
            br#"{"errcode":"310000","errmsg":"keywords not in content"}"#
        ),
        Err(SendError::Rejected {
            errcode: 310000,
            errmsg: "keywords not in content".to_owned()
        })
    );
    assert_eq!(
        classify(200, br#"{"errcode":130101,"errmsg":"send too fast"}"#),
        Err(SendError::Rejected {
            errcode: 130101,
            errmsg: "send too fast".to_owned()
        })
    );
}

#[test]
fn rate_limit_answers_pause_the_robot() {
    for errcode in [130101, 410100, 660026] {
        check(
            200,
            &answer(errcode, "send too fast"),
            Some(Retry::AfterPause),
        );
    }
    check(429, "Too Many Requests", Some(Retry::AfterPause));
}

#[test]
fn a_message_too_long_is_sent_again_shorter() {
    check(
        200,
        &answer(460101, "message too long, exceed 20000 bytes"),
        Some(Retry::Shorter),
    );
}

/// The 130101 hint names the robot's own rate limit, not DingTalk's 20 alone: with
/// several replicas or another sender on the token, 20 may be exceeded at a lower one.
#[test]
fn the_rate_limit_hint_names_the_robots_rate_limit() {
    let mut robot = robot(&["HertzBeat"], &[]);
    robot.rate_limit = RateLimit {
        count: 15,
        window: std::time::Duration::from_secs(60),
    };
    let hint = rejected(130101, "send too fast").hint(&robot);
    assert!(hint.contains("rate_limit here is 15/60s"), "{hint}");
    assert!(hint.contains("replicas"), "{hint}");
}

#[test]
fn configuration_errors_are_never_retried() {
    for (errcode, errmsg) in [
        (310000, "keywords not in content"),
        (310000, "sign not match, more: [...]"),
        (310000, "invalid timestamp"),
        (310000, "ip 203.0.113.7 not in whitelist"),
        (310000, "security verification failed"),
        (300001, "token is not exist"),
        (300005, "token is not exist"),
        (400101, "access_token不存在"),
        (400102, "机器人已停用"),
        (400106, "robot does not exist"),
        (400013, "群已被解散"),
        (101002, "content too long"),
        (43004, "invalid Content-Type"),
        (40035, "缺少参数 json"),
    ] {
        check(200, &answer(errcode, errmsg), Some(Retry::Never));
    }
}

#[test]
fn dingtalk_trouble_is_retried_later() {
    check(500, "Internal Server Error", Some(Retry::Later));
    check(
        502,
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        Some(Retry::Later),
    );
    check(503, "", Some(Retry::Later));
    check(200, &answer(-1, "系统繁忙"), Some(Retry::Later));
    // errcode 0 with an error status is not a success.
    check(500, r#"{"errcode":0,"errmsg":"ok"}"#, Some(Retry::Later));
}

#[test]
fn a_200_that_is_not_dingtalks_answer_is_retried_later() {
    let html = "<html><head><title>Proxy login</title></head><body>sign in</body></html>";
    check(200, html, Some(Retry::Later));
    check(200, "", Some(Retry::Later));
    check(200, r#"{"errcode":"abc"}"#, Some(Retry::Later));
    let error = classify(200, html.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, SendError::BadAnswer(excerpt) if excerpt.contains("Proxy login")),
        "{error:?}"
    );
}

#[test]
fn an_unexpected_answer_is_quoted_short_and_on_one_line() {
    let body = format!("<html>\n{}\n</html>", "页".repeat(5_000));
    let SendError::BadAnswer(excerpt) = classify(200, body.as_bytes()).unwrap_err() else {
        panic!("not a bad answer");
    };
    assert!(excerpt.chars().count() <= 200, "{excerpt}");
    assert!(!excerpt.contains('\n'));
    assert!(excerpt.starts_with("<html>"));
}

#[test]
fn other_client_errors_are_never_retried() {
    check(404, "404 page not found", Some(Retry::Never));
    check(400, "Bad Request", Some(Retry::Never));
}

fn check_hint(error: SendError, keyword: &str, mentions: &str) {
    let hint = error.hint(&robot(&[keyword], &[]));
    assert!(
        hint.contains(mentions),
        "hint for {error:?}: {hint:?} should mention {mentions:?}"
    );
}

fn rejected(errcode: i64, errmsg: &str) -> SendError {
    SendError::Rejected {
        errcode,
        errmsg: errmsg.to_owned(),
    }
}

#[test]
fn hints_say_what_to_check() {
    check_hint(
        rejected(310000, "keywords not in content"),
        "HertzBeat",
        "add HertzBeat as a custom keyword",
    );
    check_hint(
        rejected(310000, "Keywords Not In Content"),
        "告警",
        "add 告警 as a custom keyword",
    );
    check_hint(rejected(310000, "sign not match"), "HertzBeat", "secret");
    check_hint(rejected(310000, "invalid timestamp"), "HertzBeat", "clock");
    check_hint(
        rejected(310000, "ip 203.0.113.7 not in whitelist"),
        "HertzBeat",
        "IP allowlist",
    );
    check_hint(
        rejected(300001, "token is not exist"),
        "HertzBeat",
        "access_token",
    );
    check_hint(rejected(130101, "send too fast"), "HertzBeat", "rate_limit");
    check_hint(rejected(460101, "message too long"), "HertzBeat", "shorter");
    check_hint(SendError::Http(404), "HertzBeat", "api_url");
    check_hint(
        SendError::Network("connection refused".to_owned()),
        "HertzBeat",
        "proxy",
    );
}

#[test]
fn every_error_has_a_hint() {
    let mut errors: Vec<SendError> = [
        -1, 0, 500, 9001, 130101, 410100, 660026, 310000, 300001, 300005, 400101, 400102, 400106,
        400013, 460101, 43004, 40035, 123456,
    ]
    .into_iter()
    .map(|errcode| rejected(errcode, "whatever"))
    .collect();
    errors.extend(
        [
            "keywords not in content",
            "sign not match",
            "ip not in whitelist",
        ]
        .map(|errmsg| rejected(310000, errmsg)),
    );
    errors.extend([200, 302, 400, 404, 429, 500, 502, 503].map(SendError::Http));
    errors.push(SendError::BadAnswer("<html>".to_owned()));
    errors.push(SendError::Network("timed out".to_owned()));
    for error in errors {
        let hint = error.hint(&robot(&["HertzBeat"], &[]));
        assert!(!hint.trim().is_empty(), "{error:?}");
        // A hint that speaks of retrying says what `retry` does.
        let wrong_claim = if error.retry() == Retry::Never {
            "will be retried"
        } else {
            "not retried"
        };
        assert!(!hint.contains(wrong_claim), "{error:?}: {hint}");
        assert!(!error.to_string().is_empty(), "{error:?}");
        assert!(!error.metric_code().is_empty(), "{error:?}");
    }
}

#[test]
fn metric_codes_are_short_labels() {
    for (error, code) in [
        (rejected(310000, "keywords not in content"), "310000"),
        (SendError::Http(502), "http_502"),
        (SendError::BadAnswer("<html>".to_owned()), "bad_answer"),
        (SendError::Network("timed out".to_owned()), "network"),
    ] {
        assert_eq!(error.metric_code(), code);
    }
}

#[test]
fn display_names_the_errcode_and_errmsg() {
    assert_eq!(
        rejected(310000, "keywords not in content").to_string(),
        "DingTalk rejected the message: errcode 310000 (keywords not in content)"
    );
    assert_eq!(
        SendError::Http(502).to_string(),
        "DingTalk answered HTTP 502"
    );
}
