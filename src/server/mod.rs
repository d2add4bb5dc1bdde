//! The HTTP front door. [`ROUTES`] is every endpoint in one table: its path, its methods,
//! who may call it, and the handler that answers. The serve loop, signals and graceful
//! shutdown are in [`listen`], inbound authentication in [`auth`], the webhooks in
//! [`webhook`], the admin API's JSON views in [`api`], the status page in [`page`],
//! `--web.config.file` in [`web`].
//!
//! Each request takes one snapshot of the configuration and uses it throughout. Handlers
//! answer every bad request with a 4xx and a one-line reason; they parse, and leave
//! routing, rendering and delivery to [`crate::accept`]. With `auth:` configured,
//! webhooks, reload and the admin API need the bearer token; metrics and health stay open
//! for probes and scrapers.

mod act;
pub mod api;
pub mod auth;
mod conn;
mod html;
mod listen;
mod page;
mod web;
mod webhook;

pub use listen::{serve, signals};
pub use web::{WebConfigError, WebConfigFile};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::accept::passthrough::Passed;
use crate::app::{App, Reloaded};
use crate::ingest::Source;
use crate::queue::QueueError;
use crate::snapshot::Snapshot;
use crate::tools::probe;

type Reply = Response<Full<Bytes>>;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Anyone: probes and scrapers.
    Open,
    /// With `auth:`, the bearer token (or the web config's basic auth).
    Token,
    /// As [`Guard::Token`], and a refusal is counted as a webhook of the source.
    Webhook(Source),
    /// As [`Guard::Token`], or basic auth with the token as password: a browser.
    Browser,
}

/// One endpoint. A `{…}` segment of `path` (`{robot}`, `{link}`) matches one path
/// segment, which the handler gets.
struct Route {
    path: &'static str,
    methods: &'static [&'static str],
    guard: Guard,
    handler: fn(Call) -> Answer,
}

/// What a handler gets: the service, the configuration snapshot of the request, the
/// request, and the `{…}` segment of its path if the route has one.
struct Call {
    app: Arc<App>,
    snapshot: Arc<Snapshot>,
    request: Request<Incoming>,
    segment: String,
}

type Answer = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Every endpoint of the bridge.
const ROUTES: &[Route] = &[
    Route {
        path: "/",
        methods: &["GET", "HEAD"],
        guard: Guard::Browser,
        handler: |c| Box::pin(async move { page::status(&c.app, &c.snapshot).await }),
    },
    Route {
        path: "/preview",
        methods: &["POST"],
        guard: Guard::Browser,
        handler: |c| {
            Box::pin(async move {
                match read_form(&c.snapshot, c.request).await {
                    Ok(form) => page::preview(&c.app, &c.snapshot, &form).await,
                    Err(refused) => refused,
                }
            })
        },
    },
    Route {
        path: "/test-robot",
        methods: &["POST"],
        guard: Guard::Browser,
        handler: |c| {
            Box::pin(async move {
                match read_form(&c.snapshot, c.request).await {
                    Ok(form) => page::test_robot(&c.app, &c.snapshot, &form).await,
                    Err(refused) => refused,
                }
            })
        },
    },
    Route {
        path: "/alertmanager",
        methods: &["POST"],
        guard: Guard::Webhook(Source::Alertmanager),
        handler: |c| Box::pin(webhook::webhook(c, Source::Alertmanager)),
    },
    Route {
        path: "/grafana",
        methods: &["POST"],
        guard: Guard::Webhook(Source::Grafana),
        handler: |c| Box::pin(webhook::webhook(c, Source::Grafana)),
    },
    Route {
        path: "/hertzbeat",
        methods: &["POST"],
        guard: Guard::Webhook(Source::HertzBeat),
        handler: |c| Box::pin(webhook::webhook(c, Source::HertzBeat)),
    },
    Route {
        path: "/dingtalk/{robot}/send",
        methods: &["POST"],
        guard: Guard::Webhook(Source::Alertmanager),
        handler: |c| Box::pin(webhook::webhook(c, Source::Alertmanager)),
    },
    Route {
        path: "/metrics",
        methods: &["GET"],
        guard: Guard::Open,
        handler: |c| Box::pin(async move { metrics(&c.app, &c.snapshot, &c.request) }),
    },
    Route {
        path: "/api/v1/queue",
        methods: &["GET"],
        guard: Guard::Token,
        handler: |c| {
            Box::pin(async move {
                json_reply(Ok::<_, QueueError>(api::queue_report(&c.app, &c.snapshot)))
            })
        },
    },
    Route {
        path: "/api/v1/dead-letters",
        methods: &["GET"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { json_reply(api::dead_letters(&c.app).await) }),
    },
    Route {
        path: "/api/v1/dead-letters/retry",
        methods: &["POST"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { retry_dead_letters(&c.app).await }),
    },
    Route {
        path: "/api/v1/robots/{robot}/test",
        methods: &["POST"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { test_robot(&c.app, &c.snapshot, &c.segment).await }),
    },
    Route {
        path: "/act/{link}",
        methods: &["GET", "HEAD", "POST"],
        // A capability link, opened by browsers that carry no token: the link is the
        // authorisation (the web config's TLS and basic auth still apply).
        guard: Guard::Open,
        handler: |c| Box::pin(async move { act_on(c).await }),
    },
    Route {
        path: "/api/v1/acks",
        methods: &["GET"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { json_reply(Ok::<_, QueueError>(api::acks(&c.app))) }),
    },
    Route {
        path: "/api/v1/oncall",
        methods: &["GET"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { json_reply(api::oncall(&c.app, &c.snapshot).await) }),
    },
    Route {
        path: "/-/healthy",
        methods: &["GET", "HEAD"],
        guard: Guard::Open,
        handler: |_| Box::pin(async { reply(StatusCode::OK, "OK") }),
    },
    Route {
        path: "/-/ready",
        methods: &["GET", "HEAD"],
        guard: Guard::Open,
        handler: |c| Box::pin(async move { ready(&c.app) }),
    },
    Route {
        path: "/-/reload",
        methods: &["POST", "PUT"],
        guard: Guard::Token,
        handler: |c| Box::pin(async move { reload(&c.app).await }),
    },
];

/// The route `path` names, and its `{…}` segment ("" without one).
fn route(path: &str) -> Option<(&'static Route, String)> {
    ROUTES.iter().find_map(|route| {
        let Some((before, rest)) = route.path.split_once('{') else {
            return (route.path == path).then(|| (route, String::new()));
        };
        let after = rest.split_once('}').map_or("", |(_, after)| after);
        let segment = path.strip_prefix(before)?.strip_suffix(after)?;
        (!segment.is_empty() && !segment.contains('/')).then(|| (route, segment.to_owned()))
    })
}

/// `path` as logs and answers may show it: an action link's token is a capability, never
/// shown.
fn shown_path(path: &str) -> &str {
    if path.starts_with(crate::act::link::PATH) {
        "/act/…"
    } else {
        path
    }
}

/// `/act/{link}`: `GET` shows the page, `POST` acts on its form.
async fn act_on(call: Call) -> Reply {
    let Call {
        app,
        snapshot,
        request,
        segment,
    } = call;
    if request.method() != Method::POST {
        return act::show(&app.act, &snapshot, &segment, request.headers()).await;
    }
    match read_form(&snapshot, request).await {
        Ok(form) => act::perform(&app, &snapshot, &segment, &form).await,
        Err(refused) => refused,
    }
}

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

/// Answers one request: its route's guard, then its method, then its handler.
pub async fn handle(app: Arc<App>, request: Request<Incoming>) -> Reply {
    let snapshot = app.config.snapshot();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let found = route(&path);
    // Unknown paths under /api/ need the token too, so that the API's paths are not
    // told to strangers.
    let guard = match &found {
        Some((route, _)) => route.guard,
        None if path.starts_with("/api/") => Guard::Token,
        None => Guard::Open,
    };
    if let Some(refused) = auth::refusal(&app, &snapshot, &request, guard) {
        return refused;
    }
    let Some((route, segment)) = found else {
        return reply(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {}", shown_path(&path)),
        );
    };
    if !route.methods.contains(&method.as_str()) {
        let mut refused = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {}", shown_path(&path)),
        );
        if let Ok(allow) = HeaderValue::from_str(&route.methods.join(", ")) {
            refused.headers_mut().insert(ALLOW, allow);
        }
        return refused;
    }
    (route.handler)(Call {
        app,
        snapshot,
        request,
        segment,
    })
    .await
}

/// The body of a status page form, or the answer refusing it.
async fn read_form(snapshot: &Snapshot, request: Request<Incoming>) -> Result<Bytes, Reply> {
    webhook::read_body(request, snapshot.config.max_body_bytes)
        .await
        .map_err(|(status, _, reason)| reply(status, reason))
}

fn ready(app: &App) -> Reply {
    if app.is_ready() {
        reply(StatusCode::OK, "OK")
    } else {
        reply(StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down")
    }
}

async fn reload(app: &Arc<App>) -> Reply {
    match app.reload().await {
        Ok(reloaded) => reply(StatusCode::OK, reload_answer(&reloaded)),
        Err(errors) => reply(
            StatusCode::BAD_REQUEST,
            format!("reload failed; the running configuration stays in force:\n{errors}"),
        ),
    }
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

async fn retry_dead_letters(app: &App) -> Reply {
    match app.retry_dead_letters().await {
        Ok(robots) => reply(
            StatusCode::OK,
            format!("ok: dead letters re-queued for {robots} robots"),
        ),
        Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
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

fn json_reply<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Reply {
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
