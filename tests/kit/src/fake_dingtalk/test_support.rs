//! What the fake's own tests of its OpenAPI share: an HTTP client and the applications.

use super::{FakeApp, FakeDingTalk};

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

/// A fake with the application `KEY`, whose robot `KEY` is in `GROUP`, and another
/// application whose robot is in `GROUP` too.
pub(super) async fn two_apps() -> FakeDingTalk {
    let fake = FakeDingTalk::start(Vec::new()).await;
    fake.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
    fake.add_app(FakeApp::new("otherapp", "other-secret").robot("otherrobot", &[GROUP]));
    fake
}
