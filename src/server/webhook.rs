//! The webhook endpoints, `POST /alertmanager`, `/grafana`, `/hertzbeat` and the drop-in
//! `/dingtalk/{robot}/send`: read the body, check Grafana's signature when one is
//! configured, parse it as its source's, hand the notification to
//! [`accept::notification`] with the mode pinned at start, and turn the outcome into a
//! status and a one-line answer. Every request is counted by source and outcome;
//! everything but a 200 is logged.

use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};

use jiff::Timestamp;

use super::conn::BodyDeadline;
use super::{Call, Reply, reply};
use crate::accept::passthrough::Passed;
use crate::accept::{self, AcceptError, Accepted};
use crate::dingtalk::Retry;
use crate::ingest::{self, Notification, Source, grafana};
use crate::queue::QueueError;
use crate::snapshot::Snapshot;

/// A status, the outcome label it is counted under, and the one-line answer.
pub(super) type Answer = (StatusCode, &'static str, String);

/// Answers one webhook of `source` under the configuration of the call; the drop-in
/// endpoint's `{robot}` segment names the one robot it goes to.
pub(super) async fn webhook(call: Call, source: Source) -> Reply {
    let Call {
        app,
        snapshot,
        request,
        segment,
    } = call;
    let robot = (!segment.is_empty()).then_some(segment.as_str());
    let (status, outcome, text) = match read_notification(&snapshot, request, source).await {
        Err(rejection) => rejection,
        Ok(notification) => {
            let mode = app.pinned().mode;
            let (delivery, dedup, act) = (&app.delivery, &app.dedup, &app.act);
            let escalations = &app.escalations;
            let accepted = accept::notification(
                delivery,
                dedup,
                act,
                escalations,
                &snapshot,
                mode,
                &notification,
                robot,
            );
            match accepted.await {
                Ok(Accepted::Queued(queued)) => (
                    StatusCode::OK,
                    "accepted",
                    format!(
                        "ok: {} alerts, {queued} messages queued",
                        notification.alerts.len()
                    ),
                ),
                Ok(Accepted::Passed(passed)) => passed_answer(passed),
                Err(error) => accept_error(error),
            }
        }
    };
    app.metrics.webhook(source.as_str(), outcome);
    if status != StatusCode::OK {
        tracing::warn!(message = "Webhook not accepted.", %source, status = status.as_u16(), reason = %text);
    }
    reply(status, text)
}

/// The answer to a webhook in passthrough mode: 200 once DingTalk accepted every message,
/// 503 when a retry can help soon, 502 when DingTalk failed, 400 when it refused for good.
fn passed_answer(passed: Passed) -> Answer {
    let retryable = StatusCode::SERVICE_UNAVAILABLE;
    match passed {
        Passed::Delivered { messages } => (
            StatusCode::OK,
            "delivered",
            format!("ok: {messages} messages delivered"),
        ),
        Passed::Duplicate => (
            StatusCode::OK,
            "delivered",
            "ok: duplicate of a notification already delivered".to_owned(),
        ),
        Passed::RateLimited { robot, wait } => (
            retryable,
            "delivery_failed",
            format!(
                "robot {robot}: rate limit reached; the next slot is in {}s (more than delivery.passthrough_max_wait)",
                wait.as_secs()
            ),
        ),
        Passed::Busy { robot } => (
            retryable,
            "delivery_failed",
            format!(
                "robot {robot}: another send to it is still waiting for DingTalk (longer than delivery.passthrough_max_wait)"
            ),
        ),
        Passed::Failed { robot, failure } => {
            let status = match failure.retry {
                Retry::Never | Retry::Shorter => StatusCode::BAD_REQUEST,
                Retry::Later => StatusCode::BAD_GATEWAY,
                Retry::AfterPause => retryable,
            };
            let (error, hint) = (failure.error, failure.hint);
            (
                status,
                "delivery_failed",
                format!("robot {robot}: {error}; hint: {hint}"),
            )
        }
    }
}

fn accept_error(error: AcceptError) -> Answer {
    let outcome = match &error {
        AcceptError::UnknownRobot(_) => {
            return (StatusCode::NOT_FOUND, "unknown_robot", error.to_string());
        }
        AcceptError::QueueingElsewhere => "queueing_elsewhere",
        AcceptError::Queue(QueueError::Full { .. }) => "queue_full",
        AcceptError::Queue(QueueError::Store(_)) => {
            tracing::error!(message = "Cannot queue messages.", %error);
            "queue_error"
        }
    };
    (StatusCode::SERVICE_UNAVAILABLE, outcome, error.to_string())
}

async fn read_notification(
    snapshot: &Snapshot,
    request: Request<Incoming>,
    source: Source,
) -> Result<Notification, Answer> {
    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let is_json = content_type
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json".to_owned(),
            ));
        }
    }
    let sources = &snapshot.config.sources;
    let hmac = sources
        .grafana_hmac
        .as_ref()
        .filter(|_| source == Source::Grafana);
    let header = |name: &str| {
        let value = request.headers().get(name)?;
        value.to_str().ok().map(str::to_owned)
    };
    let signed = hmac.map(|hmac| {
        let timestamp = hmac
            .timestamp_header
            .as_deref()
            .map(|name| (name, header(name)));
        (hmac, header(&hmac.header), timestamp)
    });
    let body = read_body(request, snapshot.config.max_body_bytes).await?;
    let now = Timestamp::now();
    if let Some((hmac, signature, timestamp)) = &signed {
        let signed = grafana::Signed {
            signature: (&hmac.header, signature.as_deref()),
            timestamp: timestamp
                .as_ref()
                .map(|(name, value)| (*name, value.as_deref())),
        };
        let secret = hmac.secret.expose().as_bytes();
        grafana::verify(secret, &body, signed, now)
            .map_err(|e| (StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
    }
    ingest::parse_from(source, &body, &sources.hertzbeat_timezone, now)
        .map_err(|e| (StatusCode::BAD_REQUEST, "invalid", e.to_string()))
}

/// The whole body of `request`, refused past `limit` bytes (`max_body_bytes`) and, when
/// the serve loop set a [`BodyDeadline`], after it (`http.read_timeout`).
pub(super) async fn read_body(
    request: Request<Incoming>,
    limit: usize,
) -> Result<hyper::body::Bytes, Answer> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body is larger than max_body_bytes ({limit} bytes)"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let deadline = request
        .extensions()
        .get::<BodyDeadline>()
        .map(|deadline| deadline.0);
    let collect = Limited::new(request.into_body(), limit).collect();
    let collected = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, collect)
            .await
            .map_err(|_| {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "the request did not arrive whole within http.read_timeout".to_owned(),
                )
            })?,
        None => collect.await,
    };
    Ok(collected
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "unreadable",
                    format!("cannot read the request body: {error}"),
                )
            }
        })?
        .to_bytes())
}
