//! The status page, `GET /`: the configuration in force, each robot's state (the queue
//! API's view plus its address, security and dead letters), the cluster and the
//! strategies; `POST /preview` shows on the same page what a payload would send, and
//! `POST /test-robot` the answer to a test message. Server-rendered HTML from
//! `page.html` (minijinja, HTML-escaped), an inline stylesheet, no script and no
//! external asset. Tokens and secrets never reach it: robot addresses are redacted, the
//! Redis URL has its password masked.

mod markdown;
mod samples;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use jiff::{SignedDuration, Timestamp};
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::api::{self, ErrorView};
use super::{Reply, reply};
use crate::accept::passthrough::Passed;
use crate::app::App;
use crate::dingtalk::{Button, MsgType};
use crate::metrics::{HeldLabels, StrategyLabels};
use crate::payload;
use crate::preview;
use crate::probe;
use crate::route::Held;
use crate::runtime::{Runtime, queue_dir_text};

/// What a request to the page asked for beyond the status.
#[derive(Default)]
pub(super) struct Asked {
    /// A payload to preview and the sample it came from (`POST /preview`).
    preview: Option<(String, String)>,
    /// A test message's outcome (`POST /test-robot`).
    test: Option<TestView>,
}

/// The page with nothing asked.
pub(super) fn status(app: &App, runtime: &Runtime) -> Reply {
    page(app, runtime, Asked::default())
}

/// `POST /preview` with the form `payload=…&sample=…`: the payload, or the sample when
/// the payload is empty, previewed on the page.
pub(super) fn preview(app: &App, runtime: &Runtime, form: &[u8]) -> Reply {
    let fields = form_fields(form);
    let payload = fields.get("payload").cloned().unwrap_or_default();
    let sample = fields.get("sample").cloned().unwrap_or_default();
    page(
        app,
        runtime,
        Asked {
            preview: Some((payload, sample)),
            test: None,
        },
    )
}

/// `POST /test-robot` with the form `robot=…`: the test message of `test-robot`, and
/// the page with DingTalk's answer explained.
pub(super) async fn test_robot(app: &App, runtime: &Runtime, form: &[u8]) -> Reply {
    let name = form_fields(form).remove("robot").unwrap_or_default();
    let Some(robot) = runtime.config.robots.get(&name) else {
        return reply(
            StatusCode::NOT_FOUND,
            format!("no robot {name:?} in the config"),
        );
    };
    let probe = probe::send(&app.delivery, runtime, robot, probe::DEFAULT_TEXT).await;
    let test = TestView {
        ok: matches!(probe.outcome, Passed::Delivered { .. } | Passed::Duplicate),
        robot: name,
        report: probe.report,
    };
    page(
        app,
        runtime,
        Asked {
            preview: None,
            test: Some(test),
        },
    )
}

fn form_fields(form: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(form).into_owned().collect()
}

#[derive(Serialize)]
pub(super) struct TestView {
    robot: String,
    ok: bool,
    report: String,
}

#[derive(Serialize)]
struct PageView {
    version: &'static str,
    config_file: String,
    loaded_at: String,
    reload_failure: Option<FailureView>,
    mode: String,
    queue_dir: Option<String>,
    robots: Vec<RobotView>,
    cluster: Option<ClusterView>,
    strategies: Vec<StrategyView>,
    samples: Vec<(&'static str, &'static str)>,
    chosen_sample: String,
    payload: String,
    preview: Option<PreviewView>,
    preview_error: Option<String>,
    test: Option<TestView>,
}

#[derive(Serialize)]
struct FailureView {
    at: String,
    errors: String,
}

#[derive(Serialize)]
struct RobotView {
    name: String,
    configured: bool,
    url: String,
    signed: bool,
    keywords: Vec<String>,
    msgtype: Option<MsgType>,
    rate_limit: Option<String>,
    sent_in_window: usize,
    cluster_room: Option<usize>,
    paused_until: Option<String>,
    depth: usize,
    oldest_age: Option<String>,
    last_delivery: Option<String>,
    last_error: Option<ErrorView>,
    dead_letters: usize,
}

#[derive(Serialize)]
struct ClusterView {
    redis: String,
    reachable: bool,
    key_prefix: String,
    replicas: u32,
}

#[derive(Serialize)]
struct StrategyView {
    name: String,
    matchers: Vec<String>,
    robots: Vec<String>,
    active_time: Option<String>,
    open_now: bool,
    template: String,
    msgtype: Option<MsgType>,
    continue_matching: bool,
    routed: u64,
    held: u64,
}

#[derive(Serialize)]
struct PreviewView {
    alerts: Vec<preview::RoutedAlert>,
    messages: Vec<MessageView>,
}

#[derive(Serialize)]
struct MessageView {
    robot: String,
    strategy: String,
    url: String,
    signed: bool,
    alerts: usize,
    bytes: usize,
    title: String,
    /// A markdown text as HTML; `None` for a text message, which the page shows as is.
    html: Option<String>,
    text: String,
    buttons: Vec<Button>,
    body: String,
}

/// `at` to the second in the config's `timezone`, as templates show times.
fn local(at: Timestamp, runtime: &Runtime) -> String {
    at.to_zoned_datetime(runtime.config.timezone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A time the queue API wrote, as [`local`] shows it.
fn local_text(at: String, runtime: &Runtime) -> String {
    at.parse().map_or(at, |at| local(at, runtime))
}

fn page(app: &App, runtime: &Runtime, asked: Asked) -> Reply {
    let now = Timestamp::now();
    let config = &runtime.config;
    let pinned = app.pinned();
    let loads = app.loads();
    let mut view = PageView {
        version: env!("CARGO_PKG_VERSION"),
        config_file: app.config_file().display().to_string(),
        loaded_at: local(loads.loaded_at, runtime),
        reload_failure: loads.failure.map(|(at, errors)| FailureView {
            at: local(at, runtime),
            errors,
        }),
        mode: pinned.mode.to_string(),
        queue_dir: pinned
            .queue_dir
            .as_deref()
            .map(|dir| queue_dir_text(Some(dir))),
        robots: robots(app, runtime),
        cluster: runtime.cluster.as_ref().map(|cluster| ClusterView {
            redis: cluster.config().redis_url.to_string(),
            reachable: cluster.is_reachable(),
            key_prefix: cluster.config().key_prefix.clone(),
            replicas: cluster.config().replicas,
        }),
        strategies: strategies(app, runtime, now),
        samples: samples::SAMPLES.to_vec(),
        chosen_sample: String::new(),
        payload: String::new(),
        preview: None,
        preview_error: None,
        test: asked.test,
    };
    let mut status = StatusCode::OK;
    if let Some((payload, sample)) = asked.preview {
        let payload = match (payload.trim().is_empty(), samples::sample(&sample, now)) {
            (true, Some(json)) => json,
            _ => payload,
        };
        match payload::parse(payload.as_bytes()) {
            Ok(notification) => {
                view.preview = Some(preview_view(preview::preview(config, &notification, now)));
            }
            Err(error) => {
                status = StatusCode::BAD_REQUEST;
                view.preview_error = Some(format!("not an Alertmanager payload: {error}"));
            }
        }
        view.chosen_sample = sample;
        view.payload = payload;
    }
    match render(&view) {
        Ok(html) => {
            let mut response = reply(status, html);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(error) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the status page did not render: {error}"),
        ),
    }
}

/// `page.html` filled in with `view`; the template is compiled once.
fn render(view: &PageView) -> Result<String, String> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let mut env = Environment::new();
        // The name ends in `.html`, so every value is HTML-escaped unless marked `safe`.
        env.add_template("page.html", include_str!("page.html"))
            .map_err(|e| e.to_string())?;
        Ok(env)
    });
    let env = env.as_ref().map_err(Clone::clone)?;
    env.get_template("page.html")
        .and_then(|page| page.render(Value::from(Serde(view))))
        .map_err(|e| e.to_string())
}

fn robots(app: &App, runtime: &Runtime) -> Vec<RobotView> {
    let mut dead: BTreeMap<String, usize> = BTreeMap::new();
    match app.delivery.queue.dead_letters() {
        Ok(letters) => {
            for letter in letters {
                *dead.entry(letter.envelope.robot).or_default() += 1;
            }
        }
        Err(error) => tracing::warn!(message = "Cannot read the dead letters.", %error),
    }
    api::queue_report(app, runtime)
        .into_iter()
        .map(|queue| {
            let robot = runtime.config.robots.get(&queue.robot);
            let room = runtime
                .cluster
                .as_ref()
                .and_then(|cluster| cluster.room(&queue.robot));
            RobotView {
                configured: queue.configured,
                url: robot.map(|r| r.redacted_url()).unwrap_or_default(),
                signed: robot.is_some_and(|r| r.secret.is_some()),
                keywords: robot.map(|r| r.keywords.clone()).unwrap_or_default(),
                msgtype: robot.map(|r| r.msgtype),
                rate_limit: queue.rate_limit,
                sent_in_window: queue.sent_in_window,
                cluster_room: room,
                paused_until: queue.paused_until.map(|at| local_text(at, runtime)),
                depth: queue.depth,
                oldest_age: queue.oldest_age_seconds.map(|seconds| {
                    let whole = SignedDuration::from_secs(seconds as i64);
                    format!("{whole:#}")
                }),
                last_delivery: queue.last_delivery.map(|at| local_text(at, runtime)),
                last_error: queue.last_error.map(|error| ErrorView {
                    at: local_text(error.at, runtime),
                    ..error
                }),
                dead_letters: dead.get(&queue.robot).copied().unwrap_or(0),
                name: queue.robot,
            }
        })
        .collect()
}

fn strategies(app: &App, runtime: &Runtime, now: Timestamp) -> Vec<StrategyView> {
    let metrics = &app.metrics;
    runtime
        .config
        .strategies
        .iter()
        .map(|strategy| {
            let name = || strategy.name.clone();
            let held = [Held::Inactive, Held::Resolved]
                .iter()
                .map(|why| {
                    let labels = HeldLabels {
                        strategy: name(),
                        reason: why.as_str().to_owned(),
                    };
                    metrics.alerts_held.get_or_create(&labels).get()
                })
                .sum();
            StrategyView {
                matchers: strategy.matchers.iter().map(ToString::to_string).collect(),
                robots: strategy.robots.clone(),
                active_time: strategy.active_time.as_ref().map(ToString::to_string),
                open_now: strategy
                    .active_time
                    .as_ref()
                    .is_none_or(|window| window.contains(now)),
                template: strategy.template.clone(),
                msgtype: strategy.msgtype,
                continue_matching: strategy.continue_matching,
                routed: metrics
                    .alerts_routed
                    .get_or_create(&StrategyLabels { strategy: name() })
                    .get(),
                held,
                name: name(),
            }
        })
        .collect()
}

fn preview_view(preview: preview::Preview) -> PreviewView {
    PreviewView {
        alerts: preview.alerts,
        messages: preview
            .messages
            .into_iter()
            .map(|message| MessageView {
                html: match message.msgtype {
                    MsgType::Text => None,
                    MsgType::Markdown | MsgType::ActionCard => {
                        Some(markdown::to_html(&message.message.text))
                    }
                },
                text: message.message.text,
                title: message.message.title,
                buttons: message.message.buttons,
                robot: message.robot,
                strategy: message.strategy,
                url: message.url,
                signed: message.signed,
                alerts: message.alerts,
                bytes: message.bytes,
                body: message.body,
            })
            .collect(),
    }
}
