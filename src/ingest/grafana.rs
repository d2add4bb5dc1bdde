//! Grafana's webhook contact point: its body, and the HMAC signature it can carry.
//!
//! The body is Alertmanager's with more: `version` "1", `orgId`, `title`, `state` and
//! `message` at the top, and per alert `silenceURL`, `dashboardURL`, `panelURL`,
//! `values`, `valueString` and `imageURL` (grafana/alerting, `receivers/webhook/v1/
//! webhook.go` `webhookMessage` and `templates/template_data.go` `ExtendedAlert`). The
//! group key is kept with `grafana/` before it, so that a group of Grafana's never shares
//! duplicate suppression, cards or escalation with one of Alertmanager's.
//!
//! With a signing secret, Grafana sends the hex HMAC-SHA256 of the body, or of
//! `timestamp:body` when a timestamp header is configured (grafana/alerting,
//! `http/hmac.go`; default header `X-Grafana-Alert-Signature`).

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Notification, PayloadError, Source, fingerprint, hex};

/// What is put before Grafana's group keys.
pub const GROUP_KEY_PREFIX: &str = "grafana/";

/// How far a signed timestamp may be from the bridge's clock: a replayed request older
/// than this is refused. (Grafana sets none; this is the bridge's choice.)
pub const MAX_SKEW_SECONDS: i64 = 300;

/// Parses a Grafana webhook body, answering with a one-line reason when it is not one.
pub fn parse(body: &[u8]) -> Result<Notification, PayloadError> {
    let mut notification = super::alertmanager::read(body, Source::Grafana)?;
    notification.group_key = format!("{GROUP_KEY_PREFIX}{}", notification.group_key);
    for alert in &mut notification.alerts {
        if alert.fingerprint.is_empty() {
            alert.fingerprint = fingerprint(&alert.labels);
        }
    }
    Ok(notification)
}

/// Why a signed request is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header is absent.
    #[error("no {0} header: configure the contact point's HMAC signature with the same secret")]
    Missing(String),
    /// The timestamp header is absent or not a number of seconds.
    #[error("no valid {0} header (Unix seconds)")]
    NoTimestamp(String),
    /// The timestamp is too far from now.
    #[error(
        "the signed timestamp is {0} s from now (more than {MAX_SKEW_SECONDS} s): a replay, or a clock off"
    )]
    Stale(i64),
    /// The signature does not match.
    #[error("the signature does not match the body: wrong secret, or the body was changed")]
    Mismatch,
}

/// The signature Grafana sends, as the headers carry it.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The signature header's name and value, if present.
    pub signature: (&'a str, Option<&'a str>),
    /// With a timestamp header configured: its name and value, if present.
    pub timestamp: Option<(&'a str, Option<&'a str>)>,
}

/// Checks `body` against what `signed` carries with `secret`, at `now`.
pub fn verify(
    secret: &[u8],
    body: &[u8],
    signed: Signed<'_>,
    now: Timestamp,
) -> Result<(), SignatureError> {
    let (header, value) = signed.signature;
    let value = value.ok_or_else(|| SignatureError::Missing(header.to_owned()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    if let Some((header, timestamp)) = signed.timestamp {
        let seconds = timestamp
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or_else(|| SignatureError::NoTimestamp(header.to_owned()))?;
        let skew = now.as_second().saturating_sub(seconds);
        if skew.abs() > MAX_SKEW_SECONDS {
            return Err(SignatureError::Stale(skew));
        }
        mac.update(timestamp.unwrap_or_default().trim().as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    let expected = hex(&mac.finalize().into_bytes());
    let given = value.trim().to_ascii_lowercase();
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
