//! What the fake's own tests of its OpenAPI share: an HTTP client and the calls made with
//! it, the applications, and the check that a `wait_for_…` gives up with what it holds.

use std::future::Future;

use serde_json::{Value, json};

use super::{FakeApp, FakeDingTalk, TOKEN_PATH};

/// The application's AppKey, also its robot's code.
pub(super) const KEY: &str = "dingappkey";
/// The application's AppSecret.
pub(super) const SECRET: &str = "app-secret";
/// The group its robot is in.
pub(super) const GROUP: &str = "cidGroup==";

/// The HTTP client the tests call the fake with: no proxy from the environment.
pub(super) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
}

/// Sends `body` to `path` with `method` and `token` in the OpenAPI's header; the status
/// and the answer (`Value::Null` if it is not JSON).
pub(super) async fn request(
    fake: &FakeDingTalk,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client()
        .request(method, format!("{}{path}", fake.openapi_url()))
        .header("x-acs-dingtalk-access-token", token)
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An access token of the application `KEY`.
pub(super) async fn access(fake: &FakeDingTalk) -> String {
    let body = json!({ "appKey": KEY, "appSecret": SECRET });
    let (_, answer) = request(fake, reqwest::Method::POST, TOKEN_PATH, "", &body).await;
    answer["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A fake with the application `KEY`, whose robot `KEY` is in `GROUP`, and another
/// application whose robot is in `GROUP` too.
pub(super) async fn two_apps() -> FakeDingTalk {
    let fake = FakeDingTalk::start(Vec::new()).await;
    fake.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
    fake.add_app(FakeApp::new("otherapp", "other-secret").robot("otherrobot", &[GROUP]));
    fake
}

/// The message `waiting` (a `wait_for_…` of the fake that is to time out) panicked with,
/// from a task of its own.
pub(super) async fn timeout_message<T: std::fmt::Debug + Send + 'static>(
    waiting: impl Future<Output = T> + Send + 'static,
) -> String {
    let panicked = tokio::spawn(waiting)
        .await
        .expect_err("timed out")
        .into_panic();
    panicked
        .downcast_ref::<String>()
        .expect("a panic message")
        .clone()
}
