//! Inbound authentication: the bearer token (`auth:`) that webhooks and the admin
//! endpoints must carry, checked in constant time. A browser, which cannot send a bearer
//! token, opens the status page with basic auth: any user name, the token as the
//! password. A POST from another site's page is refused, so a logged-in browser cannot be
//! made to send. Which rule a path follows is its row in the route table.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use subtle::ConstantTimeEq;

use super::{BasicAuthPassed, Guard, Reply, reply};
use crate::app::App;
use crate::config::BearerToken;
use crate::snapshot::Snapshot;

/// The answer refusing `request` under `guard` and `snapshot`'s `auth:` (logged; a
/// refused webhook is counted), or `None` to let it through. A POST whose `Origin` names
/// another host is refused whatever the guard.
pub(super) fn refusal(
    app: &App,
    snapshot: &Snapshot,
    request: &Request<Incoming>,
    guard: Guard,
) -> Option<Reply> {
    let method = request.method();
    let path = super::shown_path(request.uri().path());
    if method == hyper::Method::POST && is_cross_origin(request) {
        tracing::warn!(message = "Request refused.", %method, %path, reason = "cross-origin");
        return Some(reply(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: Origin does not match Host",
        ));
    }
    match guard {
        Guard::Open => None,
        Guard::Browser if admitted_browser(snapshot, request) => None,
        Guard::Browser => {
            tracing::warn!(message = "Request refused.", %method, %path, reason = "no token");
            Some(basic_auth_challenge(
                "missing or wrong token: log in with any user name and auth.bearer_token as the password",
            ))
        }
        Guard::Token | Guard::Webhook(_) if admitted(snapshot, request) => None,
        Guard::Token | Guard::Webhook(_) => {
            let reason =
                "missing or wrong bearer token: send Authorization: Bearer <auth.bearer_token>";
            if let Guard::Webhook(source) = guard {
                app.metrics.webhook(source.as_str(), "unauthorized");
                tracing::warn!(message = "Webhook not accepted.", status = 401, %reason);
            } else {
                tracing::warn!(message = "Request refused.", %method, %path, %reason);
            }
            let mut response = reply(StatusCode::UNAUTHORIZED, reason);
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(response)
        }
    }
}

/// 401 asking a browser (or any client) for basic auth, with `reason`.
pub(super) fn basic_auth_challenge(reason: &str) -> Reply {
    let mut response = reply(StatusCode::UNAUTHORIZED, reason);
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"alertmanager-dingtalk\", charset=\"UTF-8\""),
    );
    response
}

/// Whether `request` may proceed under the `auth:` setting of `snapshot`.
fn admitted(snapshot: &Snapshot, request: &Request<Incoming>) -> bool {
    if request.extensions().get::<BasicAuthPassed>().is_some() {
        return true;
    }
    match &snapshot.config.bearer_token {
        Some(token) => admits(token, request.headers().get(AUTHORIZATION)),
        None => true,
    }
}

/// Whether `request` may open the status page: as [`admitted`], or with basic auth whose
/// password is the token.
fn admitted_browser(snapshot: &Snapshot, request: &Request<Incoming>) -> bool {
    let authorization = request.headers().get(AUTHORIZATION);
    admitted(snapshot, request)
        || snapshot
            .config
            .bearer_token
            .as_ref()
            .is_some_and(|token| admits_as_password(token, authorization))
}

/// Whether a browser sent `request` from another site's page: its `Origin` names
/// another host than `Host`. The page's forms post to the same origin; a form on another
/// site must not send test messages with the operator's saved login. Clients that send
/// no `Origin` (Alertmanager, curl) are not affected.
fn is_cross_origin(request: &Request<Incoming>) -> bool {
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    let Some(origin) = header(hyper::header::ORIGIN) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    header(hyper::header::HOST) != Some(origin_host)
}

/// Whether an `Authorization` header value carries `token`. The scheme is matched
/// case-insensitively, as RFC 9110 asks.
pub fn admits(token: &BearerToken, authorization: Option<&HeaderValue>) -> bool {
    let Some(value) = authorization.map(HeaderValue::as_bytes) else {
        return false;
    };
    let Some((scheme, presented)) = value.split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ")
        && bool::from(presented.trim_ascii().ct_eq(token.expose().as_bytes()))
}

/// Whether an `Authorization` header value is basic auth with `token` as its password
/// (`Basic base64(user:token)`, any user): how a browser sends it.
pub fn admits_as_password(token: &BearerToken, authorization: Option<&HeaderValue>) -> bool {
    authorization
        .and_then(basic_credentials)
        .is_some_and(|(_, password)| bool::from(password.ct_eq(token.expose().as_bytes())))
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
