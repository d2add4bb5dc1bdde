//! Tests of the fake itself, through its HTTP API as a client sees it.
#![allow(clippy::unwrap_used)]

use std::io;
use std::time::Instant;

use serde_json::json;
use tokio::net::TcpStream;

use super::rules::{MAX_MESSAGE_BYTES, TOO_FAST, expected_sign, now_ms};
use super::*;

const TOKEN: &str = "tok";
const SIGNED: &str = "signed";
const SECRET: &str = "SECb90923e19e58b466481e9e7b7a5b4f108a4531abde590ad3967fb29f0eae5c68";
const WAIT: Duration = Duration::from_secs(5);

/// A reqwest client that never goes through a proxy.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A markdown message body.
fn markdown(title: &str, text: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } })
}

/// A text message body.
fn text_message(content: &str) -> Value {
    json!({ "msgtype": "text", "text": { "content": content } })
}

/// The URL addressing robot `token`.
fn url_for(fake: &FakeDingTalk, token: &str) -> String {
    format!("{}?access_token={token}", fake.api_url())
}

/// A correctly encoded signed URL for `token`.
fn signed_url(fake: &FakeDingTalk, token: &str, timestamp: &str, sign: &str) -> String {
    let mut url = url::Url::parse(&fake.api_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("access_token", token)
        .append_pair("timestamp", timestamp)
        .append_pair("sign", sign);
    url.to_string()
}

/// POSTs `body` as JSON and returns the HTTP status and errcode.
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, i64, String) {
    let response = client.post(url).json(body).send().await.unwrap();
    parse(response).await
}

/// The HTTP status, errcode and errmsg of a DingTalk answer.
async fn parse(response: reqwest::Response) -> (u16, i64, String) {
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    (
        status,
        answer["errcode"].as_i64().unwrap(),
        answer["errmsg"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn sign_matches_known_vector() {
    assert_eq!(
        expected_sign("1582163555000", SECRET).as_deref(),
        Some("BQKsG+QOCl+bYJOLc6pxDHxjVquzlZPWgvRzeN2J5zY=")
    );
}

#[tokio::test]
async fn delivers_markdown_and_text() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);

    let answer = post(&client, &url, &markdown("[HertzBeat] down", "**body**")).await;
    assert_eq!(answer, (200, 0, "ok".to_owned()));

    let text = json!({ "msgtype": "text", "text": { "content": "HertzBeat text" } });
    let response = client
        .post(&url)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(parse(response).await, (200, 0, "ok".to_owned()));

    let delivered = fake.delivered(TOKEN);
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].title(), "[HertzBeat] down");
    assert_eq!(delivered[0].text(), "**body**");
    assert_eq!(delivered[1].title(), "");
    assert_eq!(delivered[1].text(), "HertzBeat text");
    assert_eq!(delivered[1].http_status, 200);
    assert_eq!(fake.requests().len(), 2);
    let counts = Counts {
        answered: 2,
        delivered: 2,
    };
    assert_eq!(fake.counts(), counts);
}

#[tokio::test]
async fn rejects_wrong_content_type() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let body = markdown("HertzBeat", "x").to_string();
    for content_type in [Some("text/plain"), Some("application/jsonx"), None] {
        let mut request = client.post(url_for(&fake, TOKEN)).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let answer = parse(request.send().await.unwrap()).await;
        let expected = (200, 43004, "invalid HTTP HEADER Content-Type".to_owned());
        assert_eq!(answer, expected, "{content_type:?}");
    }
    assert!(fake.delivered(TOKEN).is_empty());
}

#[tokio::test]
async fn rejects_unknown_or_missing_token() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let body = markdown("HertzBeat", "x");
    for url in [url_for(&fake, "other"), fake.api_url()] {
        let answer = post(&client, &url, &body).await;
        assert_eq!(
            answer,
            (200, 300001, "token is not exist".to_owned()),
            "{url}"
        );
    }
    assert_eq!(fake.requests()[0].token, "other");
    assert_eq!(fake.requests()[1].token, "");
}

#[tokio::test]
async fn checks_signature() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(SIGNED).secret(SECRET)]).await;
    let client = client();
    let body = markdown("HertzBeat", "x");
    let now = now_ms().to_string();
    let good = expected_sign(&now, SECRET).unwrap();

    let answer = post(&client, &signed_url(&fake, SIGNED, &now, &good), &body).await;
    assert_eq!(answer, (200, 0, "ok".to_owned()));

    let sign_not_match = (200, 310000, "sign not match".to_owned());
    let wrong = expected_sign(&now, "SECother").unwrap();
    let answer = post(&client, &signed_url(&fake, SIGNED, &now, &wrong), &body).await;
    assert_eq!(answer, sign_not_match);
    let url = format!("{}&timestamp={now}", url_for(&fake, SIGNED));
    assert_eq!(post(&client, &url, &body).await, sign_not_match);

    let invalid_timestamp = (200, 310000, "invalid timestamp".to_owned());
    let hours_2 = 2 * 60 * 60 * 1000;
    for timestamp in [now_ms() - hours_2, now_ms() + hours_2] {
        let timestamp = timestamp.to_string();
        let sign = expected_sign(&timestamp, SECRET).unwrap();
        let url = signed_url(&fake, SIGNED, &timestamp, &sign);
        assert_eq!(post(&client, &url, &body).await, invalid_timestamp);
    }
    let sign = expected_sign("soon", SECRET).unwrap();
    let url = signed_url(&fake, SIGNED, "soon", &sign);
    assert_eq!(post(&client, &url, &body).await, invalid_timestamp);
    let url = format!("{}&sign=x", url_for(&fake, SIGNED));
    assert_eq!(post(&client, &url, &body).await, invalid_timestamp);

    assert_eq!(fake.delivered(SIGNED).len(), 1);
}

#[tokio::test]
async fn rejects_malformed_body() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);
    let missing = (200, 40035, "missing parameter json".to_owned());

    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(parse(response).await, missing);
    assert_eq!(fake.requests()[0].body, Value::Null);

    for body in [
        json!({ "markdown": { "title": "HertzBeat", "text": "x" } }),
        json!({ "msgtype": "image", "image": { "url": "HertzBeat" } }),
        json!({ "msgtype": "markdown", "markdown": { "text": "HertzBeat" } }),
        json!({ "msgtype": "markdown", "markdown": { "title": "HertzBeat", "text": 1 } }),
        json!({ "msgtype": "text", "text": {} }),
    ] {
        assert_eq!(post(&client, &url, &body).await, missing, "{body}");
    }
}

/// The limit counts the title and the text together, in UTF-8 bytes (the content alone
/// for a text message), up to each robot's own limit, and the errmsg names it.
#[tokio::test]
async fn rejects_messages_over_the_limit_counting_title_and_text() {
    let fake = FakeDingTalk::start(vec![
        FakeRobot::new(TOKEN),
        FakeRobot::new("small").max_bytes(100),
    ])
    .await;
    let client = client();
    let max = MAX_MESSAGE_BYTES;
    let title = "0123456789";
    // (what, robot, markdown title or `None` for a text message, bytes of text, the
    // limit it exceeds)
    #[rustfmt::skip]
    let cases = [
        ("title and text at the limit", TOKEN, Some(title), max - 10, None),
        ("a byte more in the title", TOKEN, Some("0123456789!"), max - 10, Some(max)),
        ("a byte more in the text", TOKEN, Some(title), max - 9, Some(max)),
        ("no title, text at the limit", TOKEN, Some(""), max, None),
        ("text message at the limit", TOKEN, None, max, None),
        ("text message a byte over", TOKEN, None, max + 1, Some(max)),
        ("own limit reached", "small", Some(title), 90, None),
        ("own limit, a byte over", "small", Some(title), 91, Some(100)),
        ("own limit, text message", "small", None, 101, Some(100)),
    ];
    for (what, token, title, text_bytes, exceeded) in cases {
        let text = format!("HertzBeat{}", "x".repeat(text_bytes - 9));
        let body = match title {
            Some(title) => markdown(title, &text),
            None => text_message(&text),
        };
        let expected = match exceeded {
            None => (200, 0, "ok".to_owned()),
            Some(max) => (200, 460101, format!("message too long, exceed {max} bytes")),
        };
        let answer = post(&client, &url_for(&fake, token), &body).await;
        assert_eq!(answer, expected, "{what}");
    }

    // Bytes, not characters: 10_005 characters are 20_001 bytes here.
    let text = format!("HertzBeat{}", "é".repeat(9_996));
    let answer = post(&client, &url_for(&fake, TOKEN), &markdown("", &text)).await;
    assert_eq!(answer.1, 460101);
}

#[tokio::test]
async fn requires_a_keyword() {
    let fake = FakeDingTalk::start(vec![
        FakeRobot::new(TOKEN),
        FakeRobot::new("any").keywords(&[]),
    ])
    .await;
    let client = client();
    let url = url_for(&fake, TOKEN);
    let missing = (200, 310000, "keywords not in content".to_owned());

    assert_eq!(
        post(&client, &url, &markdown("alert", "body")).await,
        missing
    );
    let text = json!({ "msgtype": "text", "text": { "content": "hertzbeat" } });
    assert_eq!(post(&client, &url, &text).await, missing);

    let ok = (200, 0, "ok".to_owned());
    assert_eq!(post(&client, &url, &markdown("HertzBeat", "b")).await, ok);
    assert_eq!(
        post(&client, &url, &markdown("t", "a HertzBeat b")).await,
        ok
    );
    let any = url_for(&fake, "any");
    assert_eq!(post(&client, &any, &markdown("alert", "body")).await, ok);
}

#[tokio::test]
async fn rate_limit_uses_rolling_window_and_blocks() {
    let mut robot = FakeRobot::new(TOKEN).rate(3, Duration::from_secs(2));
    robot.block_for = Duration::from_secs(1);
    let fake = FakeDingTalk::start(vec![robot]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);
    let body = markdown("HertzBeat", "x");
    let ok = (200, 0, "ok".to_owned());
    let too_fast = (200, 130101, TOO_FAST.to_owned());

    for _ in 0..3 {
        assert_eq!(post(&client, &url, &body).await, ok);
    }
    // The three counted requests all arrived before this instant.
    let after_three = Instant::now();

    // 4th within the window: rejected, and the robot is blocked for 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(post(&client, &url, &body).await, too_fast);
    let after_fourth = Instant::now();

    // The window has moved past the first three, but the block is still on.
    tokio::time::sleep_until((after_three + Duration::from_millis(2100)).into()).await;
    assert_eq!(post(&client, &url, &body).await, too_fast);

    // Block over and neither rejected request was counted: accepted again.
    tokio::time::sleep_until((after_fourth + Duration::from_millis(1100)).into()).await;
    assert_eq!(post(&client, &url, &body).await, ok);

    assert_eq!(fake.delivered(TOKEN).len(), 4);
    assert_eq!(fake.max_in_any_window(TOKEN, Duration::from_secs(2)), 4);
    assert_eq!(fake.max_in_any_window(TOKEN, Duration::from_mins(1)), 6);
    assert_eq!(fake.max_in_any_window("other", Duration::from_mins(1)), 0);
}

#[tokio::test]
async fn mode_http500_and_errcode() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);
    let body = markdown("HertzBeat", "x");

    fake.set_mode(Mode::Http500);
    let response = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(response.text().await.unwrap(), "internal error");

    fake.set_mode(Mode::Errcode(-1, "system busy".to_owned()));
    let answer = post(&client, &url, &body).await;
    assert_eq!(answer, (200, -1, "system busy".to_owned()));

    fake.set_mode(Mode::Normal);
    assert_eq!(post(&client, &url, &body).await, (200, 0, "ok".to_owned()));

    let requests = fake.requests();
    let outcomes: Vec<_> = requests
        .iter()
        .map(|r| (r.http_status, r.errcode))
        .collect();
    assert_eq!(outcomes, [(500, None), (200, Some(-1)), (200, Some(0))]);
}

#[tokio::test]
async fn mode_hang_answers_after_mode_change() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);

    fake.set_mode(Mode::Hang);
    let pending = tokio::spawn({
        let client = client.clone();
        async move { post(&client, &url, &markdown("HertzBeat", "x")).await }
    });
    let seen = fake
        .wait_until("the hanging request arrives", WAIT, |r| r.len() == 1)
        .await;
    assert_eq!((seen[0].http_status, seen[0].errcode), (0, None));
    assert!(!pending.is_finished());

    fake.set_mode(Mode::Normal);
    assert_eq!(pending.await.unwrap(), (200, 0, "ok".to_owned()));
    let seen = fake
        .wait_until("the request is delivered", WAIT, |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn mode_refuse_then_normal_on_the_same_port() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let keep_alive = client();
    let url = url_for(&fake, TOKEN);
    let body = markdown("HertzBeat", "x");
    let ok = (200, 0, "ok".to_owned());
    assert_eq!(post(&keep_alive, &url, &body).await, ok);

    fake.set_mode(Mode::Refuse);
    let port = url::Url::parse(&fake.api_url()).unwrap().port().unwrap();
    let refused = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    let error = client().post(&url).json(&body).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    // The pooled keep-alive connection is closed as well.
    assert!(keep_alive.post(&url).json(&body).send().await.is_err());

    fake.set_mode(Mode::Normal);
    assert_eq!(fake.api_url(), format!("http://127.0.0.1:{port}{PATH}"));
    assert_eq!(post(&keep_alive, &url, &body).await, ok);
    assert_eq!(post(&client(), &url, &body).await, ok);
    assert_eq!(fake.delivered(TOKEN).len(), 3);
}

#[tokio::test]
async fn keep_alive_connection_is_reused() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let client = client();
    let url = url_for(&fake, TOKEN);
    for _ in 0..5 {
        let answer = post(&client, &url, &markdown("HertzBeat", "x")).await;
        assert_eq!(answer, (200, 0, "ok".to_owned()));
    }
    assert_eq!(fake.delivered(TOKEN).len(), 5);
    assert_eq!(fake.connections(), 1);
}

#[tokio::test]
async fn dropping_the_fake_releases_hanging_requests() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let url = url_for(&fake, TOKEN);
    fake.set_mode(Mode::Hang);
    let pending = tokio::spawn(async move {
        client()
            .post(&url)
            .json(&markdown("HertzBeat", "x"))
            .send()
            .await
    });
    fake.wait_until("the hanging request arrives", WAIT, |r| r.len() == 1)
        .await;
    drop(fake);
    assert!(pending.await.unwrap().is_err());
}

/// Quiet is counted from the latest request, or from the call when none came after it;
/// what arrived in between is returned.
#[tokio::test]
async fn wait_until_quiet_waits_out_the_last_request() {
    let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let quiet = Duration::from_millis(300);

    let called = Instant::now();
    assert!(fake.wait_until_quiet(quiet, WAIT).await.is_empty());
    assert!(called.elapsed() >= quiet);

    let url = url_for(&fake, TOKEN);
    let sender = tokio::spawn(async move {
        let client = client();
        for i in 0..3 {
            post(&client, &url, &markdown("HertzBeat", &i.to_string())).await;
            // Shorter than `quiet`: the wait goes on past each of these gaps.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let requests = fake.wait_until_quiet(quiet, WAIT).await;
    let texts: Vec<&str> = requests.iter().map(Request::text).collect();
    assert_eq!(texts, ["0", "1", "2"]);
    assert!(requests[2].at.elapsed() >= quiet);
    assert!(requests.iter().all(|r| r.errcode == Some(0)));
    sender.await.unwrap();
}

#[tokio::test]
async fn wait_until_quiet_gives_up_while_requests_keep_coming() {
    let fake = Arc::new(FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await);
    let url = url_for(&fake, TOKEN);
    let sender = tokio::spawn(async move {
        let client = client();
        for _ in 0..30 {
            post(&client, &url, &markdown("HertzBeat", "busy")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let waiting = tokio::spawn({
        let fake = Arc::clone(&fake);
        async move {
            fake.wait_until_quiet(Duration::from_millis(200), Duration::from_millis(600))
                .await
        }
    });
    let error = waiting.await.expect_err("never quiet");
    let message = error.into_panic();
    let message = message.downcast_ref::<String>().expect("a panic message");
    assert!(
        message.starts_with("not quiet for 200ms within 600ms"),
        "{message}"
    );
    sender.await.unwrap();
}

/// Under load the fake keeps nothing per request: it counts, and hands each delivered
/// message to the callback.
#[tokio::test]
async fn a_counting_fake_keeps_no_request_and_hands_over_each_delivered_one() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let on_delivered = {
        let seen = Arc::clone(&seen);
        move |request: &Request| {
            let mut seen = seen.lock().unwrap();
            seen.push((request.token.clone(), request.text().to_owned()));
        }
    };
    let fake = FakeDingTalk::start_counting(vec![FakeRobot::new(TOKEN)], on_delivered).await;
    let client = client();
    let url = url_for(&fake, TOKEN);

    let ok = (200, 0, "ok".to_owned());
    assert_eq!(post(&client, &url, &markdown("HertzBeat", "one")).await, ok);
    assert_eq!(
        post(&client, &url, &text_message("HertzBeat two")).await,
        ok
    );
    let answer = post(&client, &url, &markdown("alert", "no keyword")).await;
    assert_eq!(answer.1, 310000);
    let answer = post(
        &client,
        &url_for(&fake, "other"),
        &markdown("HertzBeat", "x"),
    )
    .await;
    assert_eq!(answer.1, 300001);

    let delivered = [
        (TOKEN.to_owned(), "one".to_owned()),
        (TOKEN.to_owned(), "HertzBeat two".to_owned()),
    ];
    assert_eq!(*seen.lock().unwrap(), delivered);
    let counts = Counts {
        answered: 4,
        delivered: 2,
    };
    assert_eq!(fake.counts(), counts);
    assert_eq!(fake.connections(), 1);
    assert!(fake.shared.lock().requests.is_empty());
}
