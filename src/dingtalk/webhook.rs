//! A custom robot's webhook: where its messages go, and how the address is signed.

use url::Url;

use super::{Secret, sign};

/// A custom robot's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where messages are POSTed, without `access_token`.
    pub api_url: Url,
    /// The robot's `access_token`.
    pub access_token: Secret,
    /// The optional "加签" signing secret.
    pub secret: Option<Secret>,
}

impl Webhook {
    /// The URL messages are POSTed to, signed at `now_ms` when the robot has a secret.
    pub fn send_url(&self, now_ms: i64) -> Url {
        let mut url = self.api_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", self.access_token.expose());
        match &self.secret {
            Some(secret) => sign::signed_url(&url, secret.expose(), now_ms),
            None => url,
        }
    }
}
