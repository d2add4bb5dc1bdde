//! The service's own metrics, all prefixed `alertmanager_dingtalk_`; [`quota`] counts
//! OpenAPI calls against DingTalk's monthly quota, [`response`] how fast people respond,
//! [`pools`] the members of robot pools.
//!
//! Served in the Prometheus text format (0.0.4), which every Prometheus and `promtool`
//! read, or in OpenMetrics when the scraper asks for it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod connections;
mod labels;
pub mod pools;
pub mod quota;
pub mod response;

pub use labels::{
    ActionLabels, ApiLabels, AppLabels, BuildLabels, DeadLetterLabels, ErrorLabels, HeldLabels,
    MessageLabels, RedisLabels, RobotLabels, StatusLabels, StrategyLabels, WebhookLabels,
};

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    /// Robots that have per-robot gauges.
    robots: Mutex<BTreeSet<String>>,
    /// Webhook requests by outcome (`accepted`, `invalid`, `too_large`, ...).
    pub webhooks: Family<WebhookLabels, Counter>,
    /// Alerts received by status.
    pub alerts_received: Family<StatusLabels, Counter>,
    /// Alerts matched per strategy.
    pub alerts_routed: Family<StrategyLabels, Counter>,
    /// Alerts a strategy matched but did not send.
    pub alerts_held: Family<HeldLabels, Counter>,
    /// Alerts no strategy matched.
    pub alerts_unrouted: Counter,
    /// Notifications dropped as duplicates of one seen within `dedup_window`.
    pub duplicates_suppressed: Counter,
    /// Send attempts per robot and outcome.
    pub messages: Family<MessageLabels, Counter>,
    /// DingTalk failures per robot and errcode.
    pub dingtalk_errors: Family<ErrorLabels, Counter>,
    /// Time per send attempt.
    pub send_duration: Family<RobotLabels, Histogram>,
    /// Pending messages per robot.
    pub queue_depth: Family<RobotLabels, Gauge>,
    /// Age of each robot's oldest pending message.
    pub queue_oldest_age: Family<RobotLabels, Gauge<f64, AtomicU64>>,
    /// Messages given up on per robot and reason.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Pending messages merged into digests per robot.
    pub coalesced_messages: Family<RobotLabels, Counter>,
    /// Pending messages a newer state of their alert group replaced, per robot.
    pub messages_superseded: Family<RobotLabels, Counter>,
    /// Actions taken from messages' links, by action and outcome.
    pub actions: Family<ActionLabels, Counter>,
    /// 1 while DingTalk's rate-limit answer has the robot paused.
    pub robot_paused: Family<RobotLabels, Gauge>,
    /// With `cluster:`, 1 while Redis answers, 0 while each replica sends on its share.
    pub cluster_redis_up: Family<RedisLabels, Gauge>,
    /// 1 while the Stream connection of an application that takes commands is open.
    pub stream_connected: Family<AppLabels, Gauge>,
    /// OpenAPI calls made, by API.
    pub openapi_calls: Family<ApiLabels, Counter>,
    /// With `dingtalk.monthly_call_quota`, the OpenAPI calls of this month (UTC).
    pub openapi_month_calls: Gauge,
    /// 1 once this month's calls reached 80 % of `dingtalk.monthly_call_quota`.
    pub openapi_quota_warning: Gauge,
    /// Time to acknowledge and to resolve, escalations.
    pub response: response::Response,
    /// Robot pools' members.
    pub pools: pools::Pools,
    /// 1 if the last config load succeeded.
    pub config_last_reload_successful: Gauge,
    /// Unix time of the last successful config load.
    pub config_last_reload_success_timestamp: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("alertmanager_dingtalk"),
            robots: Mutex::default(),
            webhooks: Family::default(),
            alerts_received: Family::default(),
            alerts_routed: Family::default(),
            alerts_held: Family::default(),
            alerts_unrouted: Counter::default(),
            duplicates_suppressed: Counter::default(),
            messages: Family::default(),
            dingtalk_errors: Family::default(),
            send_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 12))
            }),
            queue_depth: Family::default(),
            queue_oldest_age: Family::default(),
            dead_letters: Family::default(),
            coalesced_messages: Family::default(),
            messages_superseded: Family::default(),
            actions: Family::default(),
            robot_paused: Family::default(),
            cluster_redis_up: Family::default(),
            stream_connected: Family::default(),
            openapi_calls: Family::default(),
            openapi_month_calls: Gauge::default(),
            openapi_quota_warning: Gauge::default(),
            response: response::Response::new(),
            pools: pools::Pools::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
        };
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        let m = &mut metrics;
        let r = &mut m.registry;
        r.register(
            "webhooks",
            "Webhook requests by source and outcome",
            m.webhooks.clone(),
        );
        r.register(
            "alerts_received",
            "Alerts received by status",
            m.alerts_received.clone(),
        );
        r.register(
            "alerts_routed",
            "Alerts matched per strategy",
            m.alerts_routed.clone(),
        );
        r.register(
            "alerts_held",
            "Alerts a strategy matched but did not send (outside active_time, or resolved with send_resolved false)",
            m.alerts_held.clone(),
        );
        r.register(
            "alerts_unrouted",
            "Alerts no strategy matched",
            m.alerts_unrouted.clone(),
        );
        r.register(
            "duplicates_suppressed",
            "Notifications identical to one received within delivery.dedup_window, not sent again",
            m.duplicates_suppressed.clone(),
        );
        r.register(
            "messages",
            "DingTalk send attempts per robot: sent, retried (will be tried again) or failed (given up)",
            m.messages.clone(),
        );
        r.register(
            "dingtalk_errors",
            "Failed sends per robot and DingTalk errcode",
            m.dingtalk_errors.clone(),
        );
        r.register(
            "send_duration_seconds",
            "Duration of DingTalk send requests",
            m.send_duration.clone(),
        );
        r.register(
            "queue_depth",
            "Messages waiting per robot",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_oldest_age_seconds",
            "Age of the oldest message waiting per robot",
            m.queue_oldest_age.clone(),
        );
        r.register(
            "dead_letters",
            "Messages given up on per robot and reason (errcode, expired, robot_removed)",
            m.dead_letters.clone(),
        );
        r.register(
            "coalesced_messages",
            "Pending messages merged into digests per robot",
            m.coalesced_messages.clone(),
        );
        r.register(
            "actions",
            "Actions taken from messages' links (acknowledge, silence, unsilence) by outcome",
            m.actions.clone(),
        );
        r.register(
            "messages_superseded",
            "Pending messages a newer state of their alert group replaced, per robot",
            m.messages_superseded.clone(),
        );
        r.register(
            "robot_paused",
            "1 while a robot is paused after DingTalk's rate-limit answer",
            m.robot_paused.clone(),
        );
        r.register(
            "cluster_redis_up",
            "With cluster:, 1 while the shared Redis answers; 0 while each replica sends on its own share of every robot's rate_limit",
            m.cluster_redis_up.clone(),
        );
        r.register(
            "stream_connected",
            "1 while the Stream connection of an application whose robots take commands is open, 0 while it is being opened again",
            m.stream_connected.clone(),
        );
        r.register(
            "openapi_calls",
            "OpenAPI calls to DingTalk, by API (access-token, group-message, card-send, card-update, stream-open)",
            m.openapi_calls.clone(),
        );
        r.register(
            "openapi_month_calls",
            "With dingtalk.monthly_call_quota: the OpenAPI calls of this month (UTC), of every replica with cluster:, access tokens not counted",
            m.openapi_month_calls.clone(),
        );
        r.register(
            "openapi_quota_warning",
            "1 once this month's OpenAPI calls reached 80% of dingtalk.monthly_call_quota",
            m.openapi_quota_warning.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "Whether the last configuration load succeeded",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load",
            m.config_last_reload_success_timestamp.clone(),
        );
        m.response.register(r);
        m.pools.register(r);
        r.register(
            "build_info",
            "Version of the running binary (always 1)",
            build_info,
        );
        metrics
    }

    /// The metrics in the Prometheus text format, or OpenMetrics when `openmetrics`.
    pub fn encode(&self, openmetrics: bool) -> (&'static str, String) {
        let mut text = String::new();
        if openmetrics {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            )
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
            (
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                text,
            )
        }
    }

    /// Creates `robot`'s delivery series at zero, so that `rate()` and the alert rules
    /// see its first failure rather than only the second.
    pub fn declare_robot(&self, robot: &str) {
        self.robots_with_gauges().insert(robot.to_owned());
        for outcome in ["sent", "retried", "failed"] {
            let _ = self.messages.get_or_create(&MessageLabels {
                robot: robot.to_owned(),
                outcome: outcome.to_owned(),
            });
        }
        let labels = RobotLabels {
            robot: robot.to_owned(),
        };
        let _ = self.robot_paused.get_or_create(&labels);
        let _ = self.messages_superseded.get_or_create(&labels);
    }

    /// Removes the gauges of `robot`, which is no longer configured and has nothing
    /// queued: a gauge frozen at its last value would keep alerts such as
    /// `AlertmanagerDingtalkMessagesDelayed` firing. Its counters stay: they no longer
    /// move, so they fire nothing, and `increase()` over them stays right.
    pub fn retire_robot(&self, robot: &str) {
        self.robots_with_gauges().remove(robot);
        let labels = RobotLabels {
            robot: robot.to_owned(),
        };
        self.queue_depth.remove(&labels);
        self.queue_oldest_age.remove(&labels);
        self.robot_paused.remove(&labels);
    }

    /// Robots that have per-robot gauges now.
    pub fn robots(&self) -> Vec<String> {
        self.robots_with_gauges().iter().cloned().collect()
    }

    fn robots_with_gauges(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.robots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an action taken from a link, and its outcome.
    pub fn action(&self, action: &str, outcome: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a webhook request's outcome, by the source its endpoint takes.
    pub fn webhook(&self, source: &str, outcome: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the `robot_paused` gauge.
    pub fn set_paused(&self, robot: &str, paused: bool) {
        self.robot_paused
            .get_or_create(&RobotLabels {
                robot: robot.to_owned(),
            })
            .set(i64::from(paused));
    }

    /// Counts a send attempt's outcome for `robot`.
    pub fn message(&self, robot: &str, outcome: &str) {
        self.messages
            .get_or_create(&MessageLabels {
                robot: robot.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the queue gauges of `robot`; an unknown age leaves the last one.
    pub fn set_queue(&self, robot: &str, depth: usize, oldest_age_seconds: Option<f64>) {
        self.robots_with_gauges().insert(robot.to_owned());
        let labels = RobotLabels {
            robot: robot.to_owned(),
        };
        self.queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        if let Some(age) = oldest_age_seconds {
            self.queue_oldest_age.get_or_create(&labels).set(age);
        }
    }

    /// Counts `count` messages of `robot` given up on for `reason`.
    pub fn dead_letter(&self, robot: &str, reason: &str, count: usize) {
        self.dead_letters
            .get_or_create(&DeadLetterLabels {
                robot: robot.to_owned(),
                reason: reason.to_owned(),
            })
            .inc_by(count as u64);
    }
}
