//! DingTalk's "加签" request signing.
//!
//! A signed robot URL carries `timestamp` (milliseconds) and `sign`: base64 of
//! HMAC-SHA256 over `"{timestamp}\n{secret}"` keyed by the secret. DingTalk rejects a
//! timestamp more than an hour away from its clock, so the signature is computed for every
//! request from the unchanging base URL, never cached in it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

/// The `sign` value for `timestamp_ms`, before URL encoding.
pub fn signature(secret: &str, timestamp_ms: i64) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `base` with `timestamp` and `sign` appended; the query encoder URL-encodes the
/// signature exactly once.
pub fn signed_url(base: &Url, secret: &str, timestamp_ms: i64) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &signature(secret, timestamp_ms));
    url
}
