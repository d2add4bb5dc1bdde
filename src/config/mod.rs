//! Loading `config.yaml` into a validated [`Config`].
//!
//! Loading is all-or-nothing and reports every problem at once, each as
//! `file:line:column: what is wrong`: environment expansion ([`env`]), YAML parsing into
//! the raw types ([`raw`], with unknown keys found in the source map rather than fatal), then validation
//! into the validated types (compiled matchers and templates, parsed URLs and durations).
//! Nothing here touches the network; credential files are read.

mod actions;
mod check;
mod checker;
mod cluster;
mod env;
mod http;
mod oncall;
mod pools;
mod proxy;
mod raw;
mod robots;
mod source_map;
mod sources;
mod strategies;
mod tree;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use url::Url;

pub use actions::{ActionsConfig, AlertmanagerConfig, Authorization, MIN_KEY_BYTES};
pub use cluster::{ClusterConfig, DEFAULT_KEY_PREFIX, RedisUrl, SentinelConfig};
pub use env::{EnvError, expand as expand_env};
pub use http::HttpLimits;
pub use pools::POOL_PREFIX;
pub use source_map::{Path, Position, Segment, SourceMap};
pub use sources::{GRAFANA_SIGNATURE_HEADER, GrafanaHmac, Sources};
pub use tree::read_yaml;
pub use values::duration as parse_duration;

use crate::dingtalk::{MsgType, Proxy, Robot, Secret};
use crate::oncall::Schedules;
use crate::render::Renderer;
use crate::route::{LabelMentions, Strategy};
use checker::Checker;
use raw::RawConfig;

/// DingTalk's robot API, used for robots given only a token.
pub const DEFAULT_API_URL: &str = "https://oapi.dingtalk.com/robot/send";
/// Where application robots' OpenAPI calls go unless `dingtalk.openapi_url` says otherwise.
pub const DEFAULT_OPENAPI_URL: &str = "https://api.dingtalk.com";
/// The keyword HertzBeat's DingTalk guide tells users to set on the robot.
pub const DEFAULT_KEYWORD: &str = "HertzBeat";

/// The validated configuration the service runs with.
#[derive(Debug)]
pub struct Config {
    /// The file it was loaded from.
    pub file: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
    /// What the HTTP server allows its clients.
    pub http: HttpLimits,
    /// The token webhooks and admin endpoints must carry; `None`: no authentication.
    pub bearer_token: Option<BearerToken>,
    /// Zone times in messages are shown in.
    pub timezone: TimeZone,
    /// `dingtalk.api_url`: replies to commands go only to session webhooks under its
    /// scheme, host and port.
    pub api_url: Url,
    /// `dingtalk.monthly_call_quota`: the OpenAPI calls a month the organisation may make,
    /// warned of at 80 %.
    pub monthly_call_quota: Option<u64>,
    /// Timeout of one request to DingTalk.
    pub timeout: Duration,
    /// The proxy of every call to DingTalk: `dingtalk.proxy_url` with `no_proxy`, or the
    /// environment's.
    pub proxy: Proxy,
    /// How long shutdown waits for pending messages.
    pub shutdown_timeout: Duration,
    /// Identical notifications within this window are sent once (Alertmanager HA pairs).
    pub dedup_window: Duration,
    /// Queue messages, or answer Alertmanager only after DingTalk answered.
    pub mode: DeliveryMode,
    /// Where the durable queue lives; in memory when `None`.
    pub queue_dir: Option<PathBuf>,
    /// Messages older than this are given up on (dead letters).
    pub max_age: Duration,
    /// In passthrough mode, how long a request may wait for the robot's rate window.
    pub passthrough_max_wait: Duration,
    /// Most messages queued per robot; past it webhooks are answered 503.
    pub max_pending: usize,
    /// The Redis replicas share, if any.
    pub cluster: Option<ClusterConfig>,
    /// The Alertmanagers actions and commands act through, if any.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Links in messages that act on alerts, if any.
    pub actions: Option<ActionsConfig>,
    /// Robots by name, and pools by `pool:<name>`.
    pub robots: BTreeMap<String, Arc<Robot>>,
    /// Strategies in evaluation order.
    pub strategies: Vec<Strategy>,
    /// The on-call schedules by name.
    pub oncall: Schedules,
    /// How webhooks of Grafana and HertzBeat are read.
    pub sources: Sources,
    /// Compiled message templates.
    pub renderer: Renderer,
}

impl Config {
    /// What is valid but likely not what was meant, one line each, for `check` and the
    /// log at start and reload: an action card notifies none of the people a robot or
    /// strategy mentions (on call or not), as DingTalk's `at` covers text and markdown only
    /// (its custom robot documentation,
    /// open.dingtalk.com/document/robots/custom-robot-access), and a robot of an
    /// application mentions nobody at all ([`Robot::can_mention`]; the people on call it
    /// reaches 1:1).
    pub fn warnings(&self) -> Vec<String> {
        let unheard = "sends action cards, which notify nobody it mentions (DingTalk's `at` covers text and markdown only); use markdown to notify them";
        let unmentioned = "is a robot of an application, which cannot mention people (DingTalk's group-message call has no `at`): its messages name and notify nobody; use a webhook robot to notify them";
        let mut warnings = Vec::new();
        for (name, robot) in &self.robots {
            let on_call = !robot.oncall.is_empty();
            if !robot.can_mention() && !robot.mention.is_empty() {
                warnings.push(format!("robot `{name}` {unmentioned}"));
            } else if robot.msgtype == MsgType::ActionCard && (on_call || !robot.mention.is_empty())
            {
                warnings.push(format!("robot `{name}` {unheard}"));
            }
        }
        for strategy in &self.strategies {
            let mentions = !strategy.mention.is_empty()
                || strategy.mention_from_labels != LabelMentions::default();
            let cards = strategy.robots.iter().any(|robot| {
                let robot_type = self.robots.get(robot).map(|r| r.msgtype);
                strategy.msgtype.or(robot_type) == Some(MsgType::ActionCard)
            });
            // The people on call are reached 1:1 by a robot of an application, so only
            // action cards leave them unheard.
            if (mentions || !strategy.mention_oncall.is_empty()) && cards {
                warnings.push(format!(
                    "strategy `{}` mentions people but {unheard}",
                    strategy.name
                ));
            }
            let unable = strategy
                .robots
                .iter()
                .filter(|robot| self.robots.get(*robot).is_some_and(|r| !r.can_mention()));
            for robot in unable.filter(|_| mentions) {
                warnings.push(format!(
                    "strategy `{}` mentions people, but robot `{robot}` {unmentioned}",
                    strategy.name
                ));
            }
        }
        warnings
    }

    /// Whether groups can be acknowledged: by links (`actions:`) or by commands.
    pub fn acknowledges(&self) -> bool {
        self.actions.is_some() || self.robots.values().any(|robot| robot.commands.is_some())
    }

    /// A one-line summary for `check` and the start-up log.
    pub fn summary(&self) -> String {
        let signed = self.robots.values().filter(|r| r.is_signed()).count();
        let pool_count = self
            .robots
            .values()
            .filter(|r| r.pool_members().is_some())
            .count();
        let pools = match pool_count {
            0 => String::new(),
            count => format!(", {count} pools"),
        };
        let grafana_signed = match self.sources.grafana_hmac {
            Some(_) => ", Grafana's webhooks signed",
            None => "",
        };
        let apps = match self.robots.values().filter(|r| r.is_app()).count() {
            0 => String::new(),
            apps => format!(", {apps} of applications"),
        };
        let queue = match (&self.mode, &self.queue_dir) {
            (DeliveryMode::Passthrough, _) => "passthrough (no queue)".to_owned(),
            (DeliveryMode::Queued, Some(dir)) => format!("queue in {}", dir.display()),
            (DeliveryMode::Queued, None) => "queue in memory".to_owned(),
        };
        let auth = match self.bearer_token {
            Some(_) => ", bearer token required",
            None => "",
        };
        let cluster = match &self.cluster {
            Some(cluster) => format!(
                ", shared by {} replicas through {}",
                cluster.replicas, cluster.redis_url
            ),
            None => String::new(),
        };
        let actions = match &self.actions {
            Some(actions) => format!(
                ", action links at {} silencing through {} Alertmanagers",
                actions.external_url,
                actions.alertmanager.urls.len()
            ),
            None => String::new(),
        };
        format!(
            "{}: {} robots ({} signed{apps}){pools}, {} strategies, {queue}, listen {}{auth}{grafana_signed}{cluster}{actions}",
            self.file.display(),
            self.robots.len() - pool_count,
            signed,
            self.strategies.len(),
            self.listen
        )
    }
}

/// The token inbound requests must present (`auth.bearer_token`): a [`Secret`] like
/// DingTalk's credentials, so it never appears in `Debug` output or logs; `server::auth`
/// compares it in constant time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken(Secret);

impl BearerToken {
    /// Wraps a configured token.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(Secret::new(token))
    }

    /// The token itself, for the one place that compares it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// How webhooks are answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// Answer 200 once the messages are queued; the bridge owns retries.
    #[default]
    Queued,
    /// Answer after DingTalk answered: 200, 5xx (retryable) or 4xx (permanent), so
    /// Alertmanager owns retries.
    Passthrough,
}

impl fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeliveryMode::Queued => "queued",
            DeliveryMode::Passthrough => "passthrough",
        })
    }
}

/// `delivery.max_pending` without a `queue_dir`: about 1 KiB of memory per message of a
/// few alerts, at most 20 KB for the largest.
pub const DEFAULT_MAX_PENDING_IN_MEMORY: usize = 10_000;
/// `delivery.max_pending` with a `queue_dir`: the disk holds the backlog.
pub const DEFAULT_MAX_PENDING_DURABLE: usize = 100_000;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the problem is in (the config, or a template file it names).
    pub file: PathBuf,
    /// Where in that file; 0:0 when it concerns the whole file.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.message
        )
    }
}

/// Every problem found in one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads `file`, expanding `${VAR}` from the process environment.
pub fn load(file: &FsPath) -> Result<Config, ConfigErrors> {
    load_with_env(file, |name| std::env::var(name).ok())
}

/// Loads `file`, expanding `${VAR}` with `lookup`.
pub fn load_with_env(
    file: &FsPath,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let whole_file = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            position: Position::default(),
            message,
        }])
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| whole_file(format!("cannot read the config file: {e}")))?;
    let text = env::expand(&text, lookup).map_err(|errors| {
        ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    file: file.to_owned(),
                    position: Position {
                        line: e.line,
                        column: e.column,
                    },
                    message: e.message,
                })
                .collect(),
        )
    })?;

    let fail = |position: Position, message: String| {
        Err(ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            position,
            message,
        }]))
    };
    let map = match SourceMap::parse(&text) {
        Ok(map) => map,
        Err(e) => {
            let (position, message) = tree::yaml_error(&e);
            return fail(position, message);
        }
    };
    let raw: RawConfig = match tree::read(&map, &text) {
        Ok(raw) => raw,
        Err(e) => return fail(e.position.unwrap_or_default(), e.message),
    };
    let mut check = Checker {
        file: file.to_owned(),
        dir: file.parent().map(FsPath::to_owned).unwrap_or_default(),
        map,
        errors: Vec::new(),
    };
    for path in check.map.keys() {
        if raw::is_unknown(&path) {
            check.unknown_key(&path);
        }
    }
    let config = check.config(raw);
    check
        .errors
        .sort_by_key(|e| (e.file.clone(), e.position.line, e.position.column));
    match config {
        Some(config) if check.errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(check.errors)),
    }
}
