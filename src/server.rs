//! The HTTP front door: the Alertmanager webhook, the drop-in robot path, metrics, health,
//! readiness and reload, plus the serve loop with signal handling and graceful shutdown.
//!
//! Handlers answer every bad request with a 4xx and a one-line reason. Everything past
//! parsing happens in [`App::accept`]. With `auth:` configured, webhooks, reload and the
//! queue API need the bearer token; metrics and health stay open for probes and scrapers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::{AcceptError, App};
use crate::config::DeliveryMode;
use crate::payload;

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Answers one request.
pub async fn handle(app: Arc<App>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let robot = robot_name(&path);
    let is_webhook = path == "/alertmanager" || robot.is_some();
    let needs_token = is_webhook || path == "/-/reload" || path.starts_with("/api/");
    if needs_token && !admitted(&app, &request) {
        let reason =
            "missing or wrong bearer token: send Authorization: Bearer <auth.bearer_token>";
        if is_webhook {
            app.count_webhook("unauthorized");
            tracing::warn!(message = "Webhook not accepted.", status = 401, %reason);
        } else {
            tracing::warn!(message = "Request refused.", %method, %path, %reason);
        }
        let mut response = reply(StatusCode::UNAUTHORIZED, reason);
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match (&method, path.as_str()) {
        (&Method::POST, "/alertmanager") => webhook(&app, request, None).await,
        (&Method::POST, _) if robot.is_some() => webhook(&app, request, robot).await,
        (&Method::GET, "/metrics") => metrics(&app, &request),
        (&Method::GET, "/api/v1/queue") => json_reply(app.queue_report().await),
        (&Method::GET, "/api/v1/dead-letters") => json_reply(dead_letters(&app)),
        (&Method::POST, "/api/v1/dead-letters/retry") => match app.retry_dead_letters() {
            Ok(robots) => reply(
                StatusCode::OK,
                format!("ok: dead letters re-queued for {robots} robots"),
            ),
            Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        },
        (&Method::GET | &Method::HEAD, "/-/healthy") => reply(StatusCode::OK, "OK"),
        (&Method::GET | &Method::HEAD, "/-/ready") if app.is_ready() => reply(StatusCode::OK, "OK"),
        (&Method::GET | &Method::HEAD, "/-/ready") => {
            reply(StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down")
        }
        (&Method::POST | &Method::PUT, "/-/reload") => match app.reload() {
            Ok(summary) => reply(StatusCode::OK, format!("reloaded: {summary}")),
            Err(errors) => reply(
                StatusCode::BAD_REQUEST,
                format!("reload failed; the running configuration stays in force:\n{errors}"),
            ),
        },
        (
            _,
            "/alertmanager"
            | "/metrics"
            | "/-/healthy"
            | "/-/ready"
            | "/-/reload"
            | "/api/v1/queue"
            | "/api/v1/dead-letters"
            | "/api/v1/dead-letters/retry",
        ) => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => reply(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
    }
}

/// Whether `request` may proceed under the current `auth:` setting.
fn admitted(app: &App, request: &Request<Incoming>) -> bool {
    match &app.runtime().config.bearer_token {
        Some(token) => token.admits(request.headers().get(AUTHORIZATION)),
        None => true,
    }
}

/// `/dingtalk/{robot}/send` → `robot`.
fn robot_name(path: &str) -> Option<&str> {
    let robot = path.strip_prefix("/dingtalk/")?.strip_suffix("/send")?;
    (!robot.is_empty() && !robot.contains('/')).then_some(robot)
}

async fn webhook(app: &Arc<App>, request: Request<Incoming>, robot: Option<&str>) -> Reply {
    let (status, outcome, text) = match read_notification(app, request).await {
        Err(rejection) => rejection,
        Ok(notification) => match app.runtime().config.mode {
            DeliveryMode::Queued => queue_notification(app, &notification, robot).await,
            DeliveryMode::Passthrough => pass_through(app, &notification, robot).await,
        },
    };
    app.count_webhook(outcome);
    if status != StatusCode::OK {
        tracing::warn!(message = "Webhook not accepted.", status = status.as_u16(), reason = %text);
    }
    reply(status, text)
}

async fn queue_notification(
    app: &Arc<App>,
    notification: &payload::Notification,
    robot: Option<&str>,
) -> Rejection {
    match app.accept(notification, robot).await {
        Ok(queued) => (
            StatusCode::OK,
            "accepted",
            format!(
                "ok: {} alerts, {queued} messages queued",
                notification.alerts.len()
            ),
        ),
        Err(error) => accept_error(error),
    }
}

async fn pass_through(
    app: &Arc<App>,
    notification: &payload::Notification,
    robot: Option<&str>,
) -> Rejection {
    match app.send_now(notification, robot).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let outcome = if status.is_success() {
                "delivered"
            } else {
                "delivery_failed"
            };
            (status, outcome, answer.text)
        }
        Err(error) => accept_error(error),
    }
}

fn accept_error(error: AcceptError) -> Rejection {
    match error {
        AcceptError::UnknownRobot(_) => (StatusCode::NOT_FOUND, "unknown_robot", error.to_string()),
        AcceptError::Queue(_) => {
            tracing::error!(message = "Cannot queue messages.", %error);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_error",
                error.to_string(),
            )
        }
    }
}

type Rejection = (StatusCode, &'static str, String);

async fn read_notification(
    app: &App,
    request: Request<Incoming>,
) -> Result<payload::Notification, Rejection> {
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
    let limit = app.runtime().config.max_body_bytes;
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
    let body = Limited::new(request.into_body(), limit)
        .collect()
        .await
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
        .to_bytes();
    payload::parse(&body).map_err(|e| (StatusCode::BAD_REQUEST, "invalid", e.to_string()))
}

/// A dead letter as `GET /api/v1/dead-letters` shows it: no message body, no secrets.
#[derive(serde::Serialize)]
struct DeadLetterView {
    id: u64,
    robot: String,
    strategy: String,
    title: String,
    alerts: Vec<String>,
    accepted_at: String,
    dead_at: String,
    reason: String,
}

fn dead_letters(app: &App) -> Result<Vec<DeadLetterView>, crate::queue::QueueError> {
    Ok(app
        .queue
        .dead_letters()?
        .into_iter()
        .map(|dead| DeadLetterView {
            id: dead.envelope.id,
            robot: dead.envelope.robot,
            strategy: dead.envelope.strategy,
            title: dead.envelope.summary.title,
            alerts: dead.envelope.summary.alerts,
            accepted_at: dead.envelope.accepted_at.to_string(),
            dead_at: dead.at.to_string(),
            reason: dead.reason,
        })
        .collect())
}

fn json_reply<T: serde::Serialize>(result: Result<T, crate::queue::QueueError>) -> Reply {
    let (status, body) = match result.map(|value| serde_json::to_string_pretty(&value)) {
        Ok(Ok(json)) => (StatusCode::OK, json),
        Ok(Err(error)) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let mut response = reply(status, body);
    if status == StatusCode::OK {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn metrics(app: &App, request: &Request<Incoming>) -> Reply {
    app.update_queue_gauges();
    let openmetrics = request
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (content_type, text) = app.metrics.encode(openmetrics);
    let mut response = reply(StatusCode::OK, text);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serves HTTP on `listener` until `shutdown` completes, then stops taking requests, lets
/// open requests finish (up to 5 s) and delivers what is pending up to the configured
/// `shutdown_timeout`.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    app.set_ready(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and similar: wait a little instead of spinning.
                    tracing::warn!(message = "Accepting a connection failed.", %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(message = "Connection ended with an error.", %peer, %error);
            }
        });
    }
    app.set_ready(false);
    drop(listener);
    tracing::info!(message = "Shutting down: no longer accepting webhooks.");
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(message = "Open connections did not finish in time; closing them.");
    }
    let timeout = app.runtime().config.shutdown_timeout;
    let left = app.drain(timeout).await;
    if left > 0 {
        tracing::error!(
            message = "Shutdown timeout reached; pending messages were not delivered.",
            undelivered = left,
        );
    } else {
        tracing::info!(message = "All pending messages delivered.");
    }
}

/// Completes on SIGTERM or SIGINT; reloads the config on every SIGHUP meanwhile.
pub async fn signals(app: Arc<App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(message = "Cannot install signal handlers; stop with SIGKILL.");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => { let _ = app.reload(); }
        }
    }
}
