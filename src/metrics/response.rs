//! How fast people respond to alerts: the time from an escalating group's first firing
//! notification to its acknowledgement and to its resolution, per strategy, and each
//! escalation step taken ([`crate::escalate`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::StrategyLabels;

/// Seconds from 30 s to a day: how long people take to respond.
const BUCKETS: [f64; 12] = [
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];

/// Label set of an escalation step taken.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EscalationLabels {
    /// The step's number in its strategy's `escalate:`, from 1.
    pub step: String,
    /// `ding_app`, `ding_sms`, `ding_call` or `mention`.
    pub via: String,
    /// `sent`, `failed` (tried again), `refused` (not tried again).
    pub outcome: String,
}

/// The response metrics.
pub struct Response {
    /// Seconds from an episode's first firing notification to its acknowledgement.
    pub time_to_acknowledge: Family<StrategyLabels, Histogram>,
    /// Seconds from an episode's first firing notification to its resolution.
    pub time_to_resolve: Family<StrategyLabels, Histogram>,
    /// Escalation steps taken, by step, way and outcome.
    pub escalations: Family<EscalationLabels, Counter>,
}

impl Response {
    pub(super) fn new() -> Self {
        let histogram = || Histogram::new(BUCKETS);
        Response {
            time_to_acknowledge: Family::new_with_constructor(histogram),
            time_to_resolve: Family::new_with_constructor(histogram),
            escalations: Family::default(),
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "time_to_acknowledge_seconds",
            "Seconds from an escalating alert group's first firing notification to its acknowledgement, per strategy",
            self.time_to_acknowledge.clone(),
        );
        r.register(
            "time_to_resolve_seconds",
            "Seconds from an escalating alert group's first firing notification to its resolution, per strategy",
            self.time_to_resolve.clone(),
        );
        r.register(
            "escalations",
            "Escalation steps taken, by step, way (via) and outcome",
            self.escalations.clone(),
        );
    }

    /// Counts step `index` (from 0) of `via` with `outcome`.
    pub fn escalated(&self, index: usize, via: &str, outcome: &str) {
        self.escalations
            .get_or_create(&EscalationLabels {
                step: (index + 1).to_string(),
                via: via.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
