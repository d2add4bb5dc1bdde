//! The status page's robots: each robot's (and pool's) queue and window, with a pool's
//! members and why any is passed over.

use jiff::SignedDuration;
use serde::Serialize;

use super::shown::local;
use crate::app::App;
use crate::dingtalk::MsgType;
use crate::server::api;
use crate::snapshot::Snapshot;

#[derive(Serialize)]
pub(super) struct RobotView {
    name: String,
    configured: bool,
    url: String,
    signed: bool,
    app: Option<String>,
    keywords: Vec<String>,
    msgtype: Option<MsgType>,
    rate_limit: Option<String>,
    sent_in_window: usize,
    cluster_room: Option<usize>,
    paused_until: Option<String>,
    depth: usize,
    oldest_age: Option<String>,
    last_delivery: Option<String>,
    last_error: Option<LastError>,
    dead_letters: usize,
    /// A pool's robots, each with why it is passed over (`None` while it is up).
    members: Vec<(String, Option<String>)>,
}

/// A robot's last failure, its time as the page shows times.
#[derive(Serialize)]
struct LastError {
    error: String,
    hint: String,
    at: String,
}

/// Every robot and pool configured or with messages queued, as the page shows it.
pub(super) fn robots(app: &App, snapshot: &Snapshot) -> Vec<RobotView> {
    let dead = app.delivery.queue.dead_counts();
    api::queue_report(app, snapshot)
        .into_iter()
        .map(|queue| {
            let robot = snapshot.config.robots.get(&queue.robot);
            let room = snapshot
                .cluster
                .as_ref()
                .and_then(|cluster| cluster.room(&queue.robot));
            let now = tokio::time::Instant::now();
            let pools = &app.delivery.pools;
            let members = robot.and_then(|r| r.pool_members()).unwrap_or_default();
            RobotView {
                members: members
                    .iter()
                    .map(|m| (m.clone(), pools.why_down(&app.delivery.gates, m, now)))
                    .collect(),
                configured: queue.configured,
                url: robot.map(|r| r.redacted_url()).unwrap_or_default(),
                signed: robot.is_some_and(|r| r.is_signed()),
                app: robot.and_then(|r| r.app_note()),
                keywords: robot.map(|r| r.keywords.clone()).unwrap_or_default(),
                msgtype: robot.map(|r| r.msgtype),
                rate_limit: queue.rate_limit,
                sent_in_window: queue.sent_in_window,
                cluster_room: room,
                paused_until: queue.paused_until.map(|at| local(at, snapshot)),
                depth: queue.depth,
                oldest_age: queue.oldest_age_seconds.map(|seconds| {
                    let whole = SignedDuration::from_secs(seconds as i64);
                    format!("{whole:#}")
                }),
                last_delivery: queue.last_delivery.map(|at| local(at, snapshot)),
                last_error: queue.last_error.map(|error| LastError {
                    at: local(error.at, snapshot),
                    error: error.error,
                    hint: error.hint,
                }),
                dead_letters: dead.get(&queue.robot).copied().unwrap_or(0),
                name: queue.robot,
            }
        })
        .collect()
}
