//! The label sets of the service's metrics.

use prometheus_client::encoding::EncodeLabelSet;

/// Label set with only an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The endpoint's source: `alertmanager`, `grafana`, `hertzbeat`.
    pub source: String,
    /// What happened.
    pub outcome: String,
}

/// Label set with only an alert status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `firing` or `resolved`.
    pub status: String,
}

/// Label set with only a strategy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    /// Strategy name.
    pub strategy: String,
}

/// Label set for alerts a strategy matched but held back.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    /// Strategy name.
    pub strategy: String,
    /// `inactive` or `resolved`.
    pub reason: String,
}

/// Label set with only a robot.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RobotLabels {
    /// Robot name.
    pub robot: String,
}

/// Label set for message outcomes per robot.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// Robot name.
    pub robot: String,
    /// `sent`, `retried` or `failed`.
    pub outcome: String,
}

/// Label set for DingTalk errors per robot.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Robot name.
    pub robot: String,
    /// DingTalk's errcode, or `http_NNN`, `network`, `proxy`, `bad_answer`.
    pub errcode: String,
}

/// Label set for dead letters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// Robot name.
    pub robot: String,
    /// DingTalk's errcode (or `http_NNN`), `expired` or `robot_removed`.
    pub reason: String,
}

/// Label set for the build info.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// Crate version.
    pub version: String,
}

/// The Redis of `cluster:`, without its password.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisLabels {
    /// `cluster.redis_url`, password masked.
    pub redis: String,
}

/// Label set of an OpenAPI call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// Which API: `access-token`, `group-message`, `card-send`, `card-update`,
    /// `stream-open`.
    pub api: String,
}

/// Label set of an application.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabels {
    /// Its AppKey.
    pub app: String,
}

/// Label set of an action taken from a message's link.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `acknowledge`, `silence`, `unsilence`, or `unknown` for a link that was refused.
    pub action: String,
    /// `done`, `repeated`, `refused`, `failed`, `invalid` or `expired`.
    pub outcome: String,
}
