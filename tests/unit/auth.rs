//! The inbound bearer token: which `Authorization` headers it admits.

use alertmanager_dingtalk::config::BearerToken;
use alertmanager_dingtalk::server::auth::admits;
use hyper::header::HeaderValue;

const TOKEN: &str = "s3cr3t-webhook-token";

fn check(authorization: Option<&str>, admitted: bool) {
    let header = authorization.map(|v| HeaderValue::from_str(v).unwrap());
    assert_eq!(
        admits(&BearerToken::new(TOKEN), header.as_ref()),
        admitted,
        "{authorization:?}"
    );
}

#[test]
fn admits_only_the_configured_token_with_the_bearer_scheme() {
    check(Some("Bearer s3cr3t-webhook-token"), true);
    check(Some("bearer s3cr3t-webhook-token"), true);
    check(Some("BEARER s3cr3t-webhook-token "), true);
    check(None, false);
    check(Some(""), false);
    check(Some("Bearer"), false);
    check(Some("Bearer "), false);
    check(Some("Bearer s3cr3t-webhook-toke"), false);
    check(Some("Bearer s3cr3t-webhook-token2"), false);
    check(Some("Bearer S3CR3T-WEBHOOK-TOKEN"), false);
    check(Some("s3cr3t-webhook-token"), false);
    check(Some("Basic s3cr3t-webhook-token"), false);
    check(Some("Token s3cr3t-webhook-token"), false);
}

#[test]
fn debug_output_hides_the_token() {
    let shown = format!("{:?}", BearerToken::new(TOKEN));
    assert!(!shown.contains(TOKEN), "{shown}");
}
