//! What the status page shows, gathered for `page.html`: the views and the functions
//! that build them from the running service.

use jiff::Timestamp;
use serde::Serialize;

use super::robots::{RobotView, robots};
use super::shown::local;
use super::{markdown, samples};
use crate::app::App;
use crate::dingtalk::stream::StreamState;
use crate::dingtalk::{Button, MsgType};
use crate::escalate::{EpisodeView, StoreError};
use crate::metrics::{HeldLabels, StrategyLabels};
use crate::oncall;
use crate::route::Held;
use crate::server::api;
use crate::snapshot::{Snapshot, queue_dir_text};
use crate::tools::preview;

/// A test message's outcome.
#[derive(Serialize)]
pub(super) struct TestView {
    pub(super) robot: String,
    pub(super) delivered: bool,
    pub(super) report: String,
}

/// Everything `page.html` shows.
#[derive(Serialize)]
pub(super) struct PageView {
    version: &'static str,
    config_file: String,
    loaded_at: String,
    reload_failure: Option<FailureView>,
    mode: String,
    queue_dir: Option<String>,
    robots: Vec<RobotView>,
    cluster: Option<ClusterView>,
    /// The Stream connections commands arrive on.
    streams: Vec<StreamView>,
    /// With `actions:` or commands, the open acknowledgements.
    acknowledgements: Option<Vec<AckView>>,
    /// With `oncall:`, who is on call, and the open escalation episodes.
    oncall: Option<OnCallView>,
    strategies: Vec<StrategyView>,
    samples: Vec<(&'static str, &'static str)>,
    pub(super) chosen_sample: String,
    /// The source the payload was read as (`alertmanager`, `grafana`, `hertzbeat`).
    pub(super) chosen_source: &'static str,
    pub(super) payload: String,
    pub(super) preview: Option<PreviewView>,
    pub(super) preview_error: Option<String>,
    test: Option<TestView>,
}

#[derive(Serialize)]
struct StreamView {
    app_key: String,
    connected: bool,
    state: String,
}

#[derive(Serialize)]
struct AckView {
    by: String,
    at: String,
    alerts: String,
    group: String,
}

#[derive(Serialize)]
struct OnCallView {
    schedules: Vec<oncall::Shift>,
    episodes: Vec<EpisodeRow>,
    /// Why the episodes could not be read.
    error: Option<String>,
}

#[derive(Serialize)]
struct EpisodeRow {
    title: String,
    strategy: String,
    started: String,
    acknowledged_by: Option<String>,
    /// `1. ding_app to 张三: sent at …`, one per step taken.
    steps: Vec<String>,
}

#[derive(Serialize)]
struct FailureView {
    at: String,
    errors: String,
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
pub(super) struct PreviewView {
    alerts: Vec<preview::RoutedAlert>,
    messages: Vec<MessageView>,
}

#[derive(Serialize)]
struct MessageView {
    robot: String,
    strategy: String,
    url: String,
    signed: bool,
    app: Option<String>,
    alerts: usize,
    bytes: usize,
    title: String,
    /// A markdown text as HTML; `None` for a text message, which the page shows as is.
    html: Option<String>,
    text: String,
    buttons: Vec<Button>,
    body: String,
}

/// The page's status part at `now`, with the outcome of a test message if one was sent.
pub(super) fn status(
    app: &App,
    snapshot: &Snapshot,
    now: Timestamp,
    test: Option<TestView>,
    episodes: Result<Vec<EpisodeView>, StoreError>,
) -> PageView {
    let pinned = app.pinned();
    let loads = app.loads();
    PageView {
        version: env!("CARGO_PKG_VERSION"),
        config_file: app.config_file().display().to_string(),
        loaded_at: local(loads.loaded_at, snapshot),
        reload_failure: loads.failure.map(|(at, errors)| FailureView {
            at: local(at, snapshot),
            errors,
        }),
        mode: pinned.mode.to_string(),
        queue_dir: pinned
            .queue_dir
            .as_deref()
            .map(|dir| queue_dir_text(Some(dir))),
        robots: robots(app, snapshot),
        cluster: snapshot.cluster.as_ref().map(|cluster| ClusterView {
            redis: cluster.config().redis_url.to_string(),
            reachable: cluster.is_reachable(),
            key_prefix: cluster.config().key_prefix.clone(),
            replicas: cluster.config().replicas,
        }),
        streams: app
            .streams
            .states()
            .into_iter()
            .map(|(app_key, state)| StreamView {
                app_key,
                connected: matches!(state, StreamState::Connected(_)),
                state: match state {
                    StreamState::Connecting => "connecting".to_owned(),
                    StreamState::Connected(since) => {
                        format!("connected since {}", local(since, snapshot))
                    }
                    StreamState::Down { error, retry_at } => format!(
                        "down: {error}; trying again at {}",
                        local(retry_at, snapshot)
                    ),
                },
            })
            .collect(),
        acknowledgements: snapshot.config.acknowledges().then(|| {
            app.act
                .acks
                .all()
                .into_iter()
                .map(|ack| AckView {
                    by: ack.by,
                    at: local(ack.at, snapshot),
                    alerts: ack.alerts.join(", "),
                    group: ack.group,
                })
                .collect()
        }),
        oncall: on_call(snapshot, now, episodes),
        strategies: strategies(app, snapshot, now),
        samples: samples::SAMPLES.to_vec(),
        chosen_sample: String::new(),
        chosen_source: "alertmanager",
        payload: String::new(),
        preview: None,
        preview_error: None,
        test,
    }
}

/// With `oncall:`, who is on call at `now`, the next handoffs, and the open `episodes`.
fn on_call(
    snapshot: &Snapshot,
    now: Timestamp,
    episodes: Result<Vec<EpisodeView>, StoreError>,
) -> Option<OnCallView> {
    if snapshot.config.oncall.is_empty() {
        return None;
    }
    let (episodes, error) = match episodes {
        Ok(episodes) => (episodes, None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let episodes = episodes
        .into_iter()
        .map(|episode| EpisodeRow {
            title: episode.title,
            strategy: episode.strategy,
            started: local(episode.started, snapshot),
            acknowledged_by: episode.acknowledged_by,
            steps: episode
                .steps
                .into_iter()
                .map(|s| {
                    format!(
                        "{}. {} to {}: {} at {}",
                        s.step,
                        s.via,
                        s.member,
                        s.outcome,
                        local(s.at, snapshot)
                    )
                })
                .collect(),
        })
        .collect();
    Some(OnCallView {
        schedules: oncall::shifts(&snapshot.config.oncall, now, api::HANDOFFS_SHOWN),
        episodes,
        error,
    })
}

fn strategies(app: &App, snapshot: &Snapshot, now: Timestamp) -> Vec<StrategyView> {
    let metrics = &app.metrics;
    snapshot
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

/// What `preview` found, as the page shows it.
pub(super) fn preview(preview: preview::Preview) -> PreviewView {
    PreviewView {
        alerts: preview.alerts,
        messages: preview
            .messages
            .into_iter()
            .map(|message| MessageView {
                html: match message.msgtype {
                    MsgType::Text => None,
                    MsgType::Markdown | MsgType::ActionCard | MsgType::Card => {
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
                app: message.app,
                alerts: message.alerts,
                bytes: message.bytes,
                body: message.body,
            })
            .collect(),
    }
}
