//! The HTTP front door: routing of paths, the bearer-token check, metrics, health,
//! readiness and reload. The serve loop, signals and graceful shutdown are in
//! [`listen`], the webhooks in [`webhook`], the admin API's JSON views in [`api`], the
//! status page in [`page`], `--web.config.file` in [`web`].
//!
//! Each request takes one snapshot of the configuration and uses it throughout. Handlers
//! answer every bad request with a 4xx and a one-line reason; they parse, and leave
//! routing, rendering and delivery to [`crate::accept`]. With `auth:` configured,
//! webhooks, reload and the queue API need the bearer token; metrics and health stay open
//! for probes and scrapers.

pub mod api;
mod conn;
mod listen;
mod page;
mod web;
mod webhook;

pub use listen::{serve, signals};
pub use web::{WebConfigError, WebConfigFile};

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use crate::accept::passthrough::Passed;
use crate::app::{App, Reloaded};
use crate::queue::QueueError;
use crate::snapshot::Snapshot;
use crate::tools::probe;

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
    let snapshot = app.config.snapshot();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let robot = robot_name(&path);
    let tested = test_robot_name(&path);
    let is_webhook = path == "/alertmanager" || robot.is_some();
    let is_page = matches!(path.as_str(), "/" | "/preview" | "/test-robot");
    let needs_token = is_webhook || path == "/-/reload" || path.starts_with("/api/");
    if method == Method::POST && is_cross_origin(&request) {
        tracing::warn!(message = "Request refused.", %method, %path, reason = "cross-origin");
        return reply(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: Origin does not match Host",
        );
    }
    if is_page && !admitted_browser(&snapshot, &request) {
        tracing::warn!(message = "Request refused.", %method, %path, reason = "no token");
        return basic_auth_challenge(
            "missing or wrong token: log in with any user name and auth.bearer_token as the password",
        );
    }
    if needs_token && !admitted(&snapshot, &request) {
        let reason =
            "missing or wrong bearer token: send Authorization: Bearer <auth.bearer_token>";
        if is_webhook {
            app.metrics.webhook("unauthorized");
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
        (&Method::GET | &Method::HEAD, "/") => page::status(&app, &snapshot),
        (&Method::POST, "/preview" | "/test-robot") => {
            let limit = snapshot.config.max_body_bytes;
            let form = match webhook::read_body(request, limit).await {
                Ok(form) => form,
                Err((status, _, reason)) => return reply(status, reason),
            };
            if path == "/preview" {
                page::preview(&app, &snapshot, &form)
            } else {
                page::test_robot(&app, &snapshot, &form).await
            }
        }
        (&Method::POST, "/alertmanager") => webhook::webhook(&app, &snapshot, request, None).await,
        (&Method::POST, _) if robot.is_some() => {
            webhook::webhook(&app, &snapshot, request, robot).await
        }
        (&Method::GET, "/metrics") => metrics(&app, &snapshot, &request),
        (&Method::GET, "/api/v1/queue") => json_reply(Ok(api::queue_report(&app, &snapshot))),
        (&Method::GET, "/api/v1/dead-letters") => json_reply(api::dead_letters(&app)),
        (&Method::POST, "/api/v1/dead-letters/retry") => match app.retry_dead_letters() {
            Ok(robots) => reply(
                StatusCode::OK,
                format!("ok: dead letters re-queued for {robots} robots"),
            ),
            Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        },
        (&Method::POST, _) if tested.is_some() => {
            test_robot(&app, &snapshot, tested.unwrap_or_default()).await
        }
        (&Method::GET | &Method::HEAD, "/-/healthy") => reply(StatusCode::OK, "OK"),
        (&Method::GET | &Method::HEAD, "/-/ready") if app.is_ready() => reply(StatusCode::OK, "OK"),
        (&Method::GET | &Method::HEAD, "/-/ready") => {
            reply(StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down")
        }
        (&Method::POST | &Method::PUT, "/-/reload") => match app.reload() {
            Ok(reloaded) => reply(StatusCode::OK, reload_answer(&reloaded)),
            Err(errors) => reply(
                StatusCode::BAD_REQUEST,
                format!("reload failed; the running configuration stays in force:\n{errors}"),
            ),
        },
        (
            _,
            "/"
            | "/preview"
            | "/test-robot"
            | "/alertmanager"
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

/// 401 asking a browser (or any client) for basic auth, with `reason`.
fn basic_auth_challenge(reason: &str) -> Reply {
    let mut response = reply(StatusCode::UNAUTHORIZED, reason);
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"alertmanager-dingtalk\", charset=\"UTF-8\""),
    );
    response
}

/// `reloaded: <summary>`, then a line per restart-only setting the reload left alone.
fn reload_answer(reloaded: &Reloaded) -> String {
    let mut answer = format!("reloaded: {}", reloaded.summary);
    for kept in &reloaded.kept {
        answer.push_str("\nnot applied until a restart: ");
        answer.push_str(kept);
    }
    answer
}

/// Whether `request` may proceed under the `auth:` setting of `snapshot`.
fn admitted(snapshot: &Snapshot, request: &Request<Incoming>) -> bool {
    if request.extensions().get::<BasicAuthPassed>().is_some() {
        return true;
    }
    match &snapshot.config.bearer_token {
        Some(token) => token.admits(request.headers().get(AUTHORIZATION)),
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
            .is_some_and(|token| token.admits_as_password(authorization))
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

/// `POST /api/v1/robots/{robot}/test`: the test message of `test-robot`, through this
/// process's gate (and cluster) for the robot. 200 when DingTalk accepted it, 502 when it
/// refused or failed, 503 when the rate window has no slot in time; the body explains.
async fn test_robot(app: &App, snapshot: &Snapshot, name: &str) -> Reply {
    let Some(robot) = snapshot.config.robots.get(name) else {
        return reply(
            StatusCode::NOT_FOUND,
            format!("no robot {name:?} in the config"),
        );
    };
    let probe = probe::send(&app.delivery, snapshot, robot, probe::DEFAULT_TEXT).await;
    let status = match probe.outcome {
        Passed::Delivered { .. } | Passed::Duplicate => StatusCode::OK,
        Passed::Failed { .. } => StatusCode::BAD_GATEWAY,
        Passed::RateLimited { .. } | Passed::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    reply(status, probe.report)
}

/// `/api/v1/robots/{robot}/test` → `robot`.
fn test_robot_name(path: &str) -> Option<&str> {
    let robot = path
        .strip_prefix("/api/v1/robots/")?
        .strip_suffix("/test")?;
    (!robot.is_empty() && !robot.contains('/')).then_some(robot)
}

/// `/dingtalk/{robot}/send` → `robot`.
fn robot_name(path: &str) -> Option<&str> {
    let robot = path.strip_prefix("/dingtalk/")?.strip_suffix("/send")?;
    (!robot.is_empty() && !robot.contains('/')).then_some(robot)
}

fn json_reply<T: serde::Serialize>(result: Result<T, QueueError>) -> Reply {
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

fn metrics(app: &App, snapshot: &Snapshot, request: &Request<Incoming>) -> Reply {
    app.delivery.refresh_gauges(snapshot);
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

/// A request extension: the request passed the web configuration's basic auth, which
/// then stands for the bearer token (a request has one `Authorization` header).
#[derive(Debug, Clone, Copy)]
pub(super) struct BasicAuthPassed;
