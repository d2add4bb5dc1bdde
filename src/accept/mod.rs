//! What the bridge does with a notification it took from a webhook: in queued mode
//! ([`queued`]) it routes, renders and durably queues the messages for the robots'
//! workers; in passthrough mode ([`passthrough`]) it sends them at once and passes
//! DingTalk's verdict back. Both plan the same way ([`plan`]), apply the duplicate policy
//! of [`crate::accept::dedup`], and count what routing did.
//!
//! Everything here runs on one configuration snapshot. It knows nothing of HTTP: the
//! server maps the outcomes to status codes.

pub mod dedup;
pub mod passthrough;
pub mod plan;
pub mod queued;

use jiff::Timestamp;

use crate::config::Config;
use crate::ingest::Notification;
use crate::metrics::{HeldLabels, Metrics, StatusLabels, StrategyLabels};
use crate::queue::QueueError;
use plan::PlannedMessage;

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// `/dingtalk/{robot}/send` named a robot the config does not have.
    #[error("unknown robot {0:?}")]
    UnknownRobot(String),
    /// Another replica of the cluster is queueing the same notification and has not
    /// finished; the retry will be a duplicate, or queued here if that replica failed.
    #[error("another replica is queueing the same notification; retry")]
    QueueingElsewhere,
    /// The queue refused the messages: full, or its store failing.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Routes and renders `notification` (or, with `direct_robot`, renders all of it for
/// that robot), counting what routing did.
fn messages(
    metrics: &Metrics,
    config: &Config,
    notification: &Notification,
    direct_robot: Option<&str>,
) -> Result<Vec<PlannedMessage>, AcceptError> {
    for alert in &notification.alerts {
        metrics
            .alerts_received
            .get_or_create(&StatusLabels {
                status: alert.status.as_str().to_owned(),
            })
            .inc();
    }
    match direct_robot {
        Some(robot) => Ok(vec![
            plan::plan_direct(config, notification, robot, Timestamp::now())
                .ok_or_else(|| AcceptError::UnknownRobot(robot.to_owned()))?,
        ]),
        None => {
            let plan = plan::plan(config, notification, Timestamp::now());
            count_routes(metrics, config, notification, &plan);
            Ok(plan.messages)
        }
    }
}

fn count_routes(
    metrics: &Metrics,
    config: &Config,
    notification: &Notification,
    plan: &plan::Plan,
) {
    let routes = &plan.routes;
    for strategies in &routes.matched {
        for strategy in strategies {
            metrics
                .alerts_routed
                .get_or_create(&StrategyLabels {
                    strategy: strategy.clone(),
                })
                .inc();
        }
    }
    for (alert, strategy, why) in &routes.held {
        let strategy = &config.strategies[*strategy].name;
        metrics
            .alerts_held
            .get_or_create(&HeldLabels {
                strategy: strategy.clone(),
                reason: why.as_str().to_owned(),
            })
            .inc();
        tracing::debug!(
            message = "Alert matched but held back.",
            alertname = notification.alerts[*alert].name(),
            %strategy,
            reason = why.as_str(),
        );
    }
    for alert in &routes.unrouted {
        metrics.alerts_unrouted.inc();
        tracing::info!(
            message = "Alert matched no strategy.",
            alertname = notification.alerts[*alert].name(),
            labels = ?notification.alerts[*alert].labels,
        );
    }
}
