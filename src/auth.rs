//! Inbound authentication: the bearer token that webhooks and the admin endpoints must
//! carry when `auth:` is configured. A browser, which cannot send a bearer token, opens
//! the status page with basic auth: any user name, the token as the password.
//!
//! The token is compared in constant time, and like DingTalk's credentials it never
//! appears in `Debug` output or logs.

use std::fmt;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;

/// The token a request must present as `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a configured token.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }

    /// Whether an `Authorization` header value carries this token. The scheme is matched
    /// case-insensitively, as RFC 9110 asks.
    pub fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some((scheme, presented)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ")
            && bool::from(presented.trim_ascii().ct_eq(self.0.as_bytes()))
    }

    /// Whether an `Authorization` header value is basic auth with this token as its
    /// password (`Basic base64(user:token)`, any user): how a browser sends it.
    pub fn admits_as_password(&self, authorization: Option<&HeaderValue>) -> bool {
        authorization
            .and_then(basic_credentials)
            .is_some_and(|(_, password)| bool::from(password.ct_eq(self.0.as_bytes())))
    }
}

/// User and password of a `Basic` authorization value (RFC 7617), as bytes.
pub fn basic_credentials(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, encoded) = value.as_bytes().split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let mut decoded = BASE64_STANDARD.decode(encoded.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(***)")
    }
}
