//! DingTalk's "加签" signing and the robot URLs built from it.

use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::dingtalk::sign::{signature, signed_url};
use alertmanager_dingtalk::dingtalk::{Endpoint, Mention, MsgType, Robot, Secret, Webhook};
use url::Url;

/// The example from DingTalk's documentation.
const SECRET: &str = "SECb90923e19e58b466481e9e7b7a5b4f108a4531abde590ad3967fb29f0eae5c68";
const TIMESTAMP: i64 = 1582163555000;
const SIGNATURE: &str = "BQKsG+QOCl+bYJOLc6pxDHxjVquzlZPWgvRzeN2J5zY=";
const TOKEN: &str = "4a8e0d1c7b2f9e6a3d5c8b1f0e7a2d4c9b6f3e8a1d5c7b0f2e9a4d6c3b8f1e5a";
const API_URL: &str = "https://oapi.dingtalk.com/robot/send";

fn hook(secret: Option<&str>) -> Webhook {
    Webhook {
        api_url: Url::parse(API_URL).unwrap(),
        access_token: Secret::new(TOKEN),
        secret: secret.map(Secret::new),
    }
}

fn robot(secret: Option<&str>) -> Robot {
    robot_at(hook(secret))
}

fn robot_at(webhook: Webhook) -> Robot {
    Robot {
        name: "ops".to_owned(),
        endpoint: Endpoint::Webhook(webhook),
        keywords: vec!["HertzBeat".to_owned()],
        mention: Mention::default(),
        oncall: Vec::new(),
        rate_limit: RateLimit::DINGTALK,
        msgtype: MsgType::Markdown,
        commands: None,
    }
}

/// Percent-encoding of a base64 signature, done by hand: the three characters base64 uses
/// besides letters and digits.
fn encoded(signature: &str) -> String {
    signature
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The raw (still encoded) value of `name` in `url`'s query.
fn raw_query_value(url: &Url, name: &str) -> Option<String> {
    url.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

fn check_signature(secret: &str, timestamp_ms: i64, expected: &str) {
    assert_eq!(signature(secret, timestamp_ms), expected, "{timestamp_ms}");
}

#[test]
fn signature_matches_dingtalks_example() {
    check_signature(SECRET, TIMESTAMP, SIGNATURE);
}

#[test]
fn signature_depends_on_timestamp_and_secret() {
    assert_ne!(signature(SECRET, TIMESTAMP + 1), SIGNATURE);
    assert_ne!(signature("SECother", TIMESTAMP), SIGNATURE);
    // Same inputs, same signature: nothing else (the clock) goes in.
    assert_eq!(signature(SECRET, TIMESTAMP), signature(SECRET, TIMESTAMP));
}

/// `signed_url` carries the timestamp and the signature encoded exactly once.
fn check_signed_url(timestamp_ms: i64) {
    let base = Url::parse(&format!("{API_URL}?access_token={TOKEN}")).unwrap();
    let url = signed_url(&base, SECRET, timestamp_ms);
    let sign = signature(SECRET, timestamp_ms);
    assert_eq!(
        url.as_str(),
        format!(
            "{API_URL}?access_token={TOKEN}&timestamp={timestamp_ms}&sign={}",
            encoded(&sign)
        )
    );
    let raw = raw_query_value(&url, "sign").unwrap();
    assert!(!raw.contains("%25"), "encoded twice: {raw}");
    assert!(!raw.contains(['+', '/', '=']), "not encoded: {raw}");
    let decoded: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        decoded,
        vec![
            ("access_token".to_owned(), TOKEN.to_owned()),
            ("timestamp".to_owned(), timestamp_ms.to_string()),
            ("sign".to_owned(), sign),
        ]
    );
}

#[test]
fn signed_url_encodes_the_signature_once_and_keeps_the_token() {
    check_signed_url(TIMESTAMP);
    assert_eq!(
        raw_query_value(
            &signed_url(&Url::parse(API_URL).unwrap(), SECRET, TIMESTAMP),
            "sign"
        ),
        Some("BQKsG%2BQOCl%2BbYJOLc6pxDHxjVquzlZPWgvRzeN2J5zY%3D".to_owned())
    );
}

#[test]
fn signed_url_encodes_every_special_base64_character() {
    // Enough timestamps that signatures with `+`, `/` and `=` all occur.
    let timestamps: Vec<i64> = (0..64).map(|i| TIMESTAMP + i * 1_000).collect();
    let signatures: String = timestamps.iter().map(|t| signature(SECRET, *t)).collect();
    for special in ['+', '/', '='] {
        assert!(signatures.contains(special), "no signature with {special}");
    }
    for timestamp in timestamps {
        check_signed_url(timestamp);
    }
}

#[test]
fn send_url_without_secret_is_the_api_url_with_the_token() {
    let url = hook(None).send_url(TIMESTAMP);
    assert_eq!(url.as_str(), format!("{API_URL}?access_token={TOKEN}"));
}

#[test]
fn send_url_with_secret_is_signed_at_the_given_time() {
    let url = hook(Some(SECRET)).send_url(TIMESTAMP);
    assert_eq!(
        url.as_str(),
        format!(
            "{API_URL}?access_token={TOKEN}&timestamp={TIMESTAMP}&sign={}",
            encoded(SIGNATURE)
        )
    );
    let later = hook(Some(SECRET)).send_url(TIMESTAMP + 60_000);
    assert_eq!(
        raw_query_value(&later, "timestamp"),
        Some((TIMESTAMP + 60_000).to_string())
    );
    assert_eq!(
        raw_query_value(&later, "sign"),
        Some(encoded(&signature(SECRET, TIMESTAMP + 60_000)))
    );
}

#[test]
fn send_url_encodes_an_unusual_token() {
    let mut webhook = hook(None);
    webhook.access_token = Secret::new("a+b/c=d&e");
    let url = webhook.send_url(TIMESTAMP);
    assert_eq!(
        url.query_pairs().into_owned().collect::<Vec<_>>(),
        vec![("access_token".to_owned(), "a+b/c=d&e".to_owned())]
    );
}

#[test]
fn redacted_url_never_shows_the_token() {
    for robot in [robot(None), robot(Some(SECRET))] {
        let redacted = robot.redacted_url();
        assert_eq!(redacted, format!("{API_URL}?access_token=***"));
        assert!(!redacted.contains(TOKEN));
        assert!(!redacted.contains(SECRET));
    }
}

#[test]
fn redacted_url_of_an_api_url_with_a_query_is_well_formed() {
    // A webhook copied with an extra parameter keeps it in `api_url`.
    let mut webhook = hook(None);
    webhook.api_url = Url::parse(&format!("{API_URL}?region=cn")).unwrap();
    let redacted = robot_at(webhook).redacted_url();
    assert!(!redacted.contains(TOKEN));
    assert_eq!(redacted, format!("{API_URL}?region=cn&access_token=***"));
}

#[test]
fn debug_output_never_shows_credentials() {
    let robot = robot(Some(SECRET));
    let debug = format!("{robot:?} {:?}", crate::webhook(&robot).access_token);
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    assert_eq!(crate::webhook(&robot).access_token.expose(), TOKEN);
}
