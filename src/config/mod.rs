//! Loading `config.yaml` into a validated [`Config`].
//!
//! Loading is all-or-nothing and reports every problem at once, each as
//! `file:line:column: what is wrong`: environment expansion ([`env`]), YAML parsing into
//! the raw types ([`raw`], with unknown keys collected rather than fatal), then validation
//! into the runtime types (compiled matchers and templates, parsed URLs and durations).
//! Nothing here touches the network; credential files are read.

mod env;
mod raw;
mod source_map;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use url::Url;

pub use env::{EnvError, expand as expand_env};
pub use source_map::{Path, Position, Segment, SourceMap};

use crate::auth::BearerToken;
use crate::dingtalk::{Robot, Secret};
use crate::matcher::Matcher;
use crate::rate_window::RateLimit;
use crate::render::{DEFAULT_TEMPLATE, Renderer, TemplatePart, TemplateSource};
use crate::route::{ActiveTime, Strategy};
use raw::{RawActiveTime, RawAuth, RawConfig, RawRobot, RawStrategy};

/// DingTalk's robot API, used for robots given only a token.
pub const DEFAULT_API_URL: &str = "https://oapi.dingtalk.com/robot/send";
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
    /// The token webhooks and admin endpoints must carry; `None`: no authentication.
    pub bearer_token: Option<BearerToken>,
    /// Zone times in messages are shown in.
    pub timezone: TimeZone,
    /// Timeout of one request to DingTalk.
    pub timeout: Duration,
    /// Proxy for requests to DingTalk, if configured.
    pub proxy_url: Option<Url>,
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
    /// Robots by name.
    pub robots: BTreeMap<String, Arc<Robot>>,
    /// Strategies in evaluation order.
    pub strategies: Vec<Strategy>,
    /// Compiled message templates.
    pub renderer: Renderer,
}

impl Config {
    /// A one-line summary for `check` and the start-up log.
    pub fn summary(&self) -> String {
        let signed = self.robots.values().filter(|r| r.secret.is_some()).count();
        let queue = match (&self.mode, &self.queue_dir) {
            (DeliveryMode::Passthrough, _) => "passthrough (no queue)".to_owned(),
            (DeliveryMode::Queued, Some(dir)) => format!("queue in {}", dir.display()),
            (DeliveryMode::Queued, None) => "queue in memory".to_owned(),
        };
        let auth = match self.bearer_token {
            Some(_) => ", bearer token required",
            None => "",
        };
        format!(
            "{}: {} robots ({} signed), {} strategies, {queue}, listen {}{auth}",
            self.file.display(),
            self.robots.len(),
            signed,
            self.strategies.len(),
            self.listen
        )
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

    let mut check = Checker {
        file: file.to_owned(),
        dir: file.parent().map(FsPath::to_owned).unwrap_or_default(),
        map: SourceMap::parse(&text).unwrap_or_default(),
        errors: Vec::new(),
    };
    let mut unknown = Vec::new();
    let parsed = serde_saphyr::with_deserializer_from_str(&text, |de| {
        serde_ignored::deserialize(de, |ignored| unknown.push(to_path(&ignored)))
    });
    let raw: RawConfig = match parsed {
        Ok(raw) => raw,
        Err(e) => {
            let position = e
                .location()
                .map(|l| Position {
                    line: l.line() as u32,
                    column: l.column() as u32,
                })
                .unwrap_or_default();
            // Without the snippet: it could show an expanded secret.
            let message = e.without_snippet().to_string();
            let message = message.lines().next().unwrap_or("invalid YAML");
            // The position is already in front of the message.
            let message = match message.rfind(" at line ") {
                Some(at) => &message[..at],
                None => message,
            };
            let message = message.to_owned();
            check.errors.push(ConfigError {
                file: file.to_owned(),
                position,
                message,
            });
            return Err(ConfigErrors(check.errors));
        }
    };
    for path in &unknown {
        check.unknown_key(path);
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

/// Validation state: collects errors with their positions while building the runtime types.
struct Checker {
    file: PathBuf,
    dir: PathBuf,
    map: SourceMap,
    errors: Vec<ConfigError>,
}

impl Checker {
    fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            position: self.map.position(path),
            message: message.into(),
        });
    }

    /// Records `result`'s error at `path`, passing its value on.
    fn check<T>(&mut self, path: &Path, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(path, message)).ok()
    }

    fn unknown_key(&mut self, path: &Path) {
        let (parent, key) = match path.0.split_last() {
            Some((Segment::Key(key), parent)) => (Path(parent.to_vec()), key.clone()),
            _ => (Path::default(), path.to_string()),
        };
        let within = if parent.0.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {parent}")
        };
        self.error(path, format!("unknown key `{key}` {within}"));
    }

    /// An empty keyword is "contained" in every text, so it would let messages out
    /// without a real one.
    fn check_keywords(&mut self, at: &Path, keywords: &[String]) {
        if keywords.iter().any(|k| k.trim().is_empty()) {
            self.error(at, "keywords must not be empty strings");
        }
    }

    fn resolve(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read_file(&mut self, at: &Path, file: &str) -> Option<String> {
        let full = self.resolve(file);
        let read = std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read {}: {e}", full.display()));
        self.check(at, read)
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let top = Path::default();
        let listen = raw.listen.as_deref().unwrap_or("0.0.0.0:8060");
        let listen = self.check(
            &top.key("listen"),
            listen.parse::<SocketAddr>().map_err(|_| {
                format!("listen address {listen:?} is not host:port (e.g. 0.0.0.0:8060)")
            }),
        );
        let bearer_token = self.bearer_token(&top.key("auth"), raw.auth);
        let zone_name = raw.timezone.as_deref().unwrap_or("Asia/Shanghai");
        let timezone = self.check(&top.key("timezone"), time_zone(zone_name));
        let dingtalk = top.key("dingtalk");
        let api_url = raw.dingtalk.api_url.as_deref().unwrap_or(DEFAULT_API_URL);
        let api_url = self.check(&dingtalk.key("api_url"), http_url(api_url));
        let timeout = self.check(
            &dingtalk.key("timeout"),
            duration(raw.dingtalk.timeout.as_deref().unwrap_or("5s")),
        );
        let proxy_url = match raw.dingtalk.proxy_url.as_deref().filter(|p| !p.is_empty()) {
            Some(proxy) => self
                .check(&dingtalk.key("proxy_url"), http_url(proxy))
                .map(Some),
            None => Some(None),
        };
        let shutdown_timeout = self.check(
            &top.key("delivery").key("shutdown_timeout"),
            duration(raw.delivery.shutdown_timeout.as_deref().unwrap_or("10s")),
        );
        let delivery = top.key("delivery");
        let dedup_window = self.check(
            &delivery.key("dedup_window"),
            duration(raw.delivery.dedup_window.as_deref().unwrap_or("60s")),
        );
        let max_age = self.check(
            &delivery.key("max_age"),
            duration(raw.delivery.max_age.as_deref().unwrap_or("24h")),
        );
        let passthrough_max_wait = self.check(
            &delivery.key("passthrough_max_wait"),
            duration(
                raw.delivery
                    .passthrough_max_wait
                    .as_deref()
                    .unwrap_or("10s"),
            ),
        );
        let queue_dir = raw
            .delivery
            .queue_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(|d| self.resolve(d));
        let max_pending = match raw.delivery.max_pending {
            Some(0) => {
                self.error(
                    &delivery.key("max_pending"),
                    "delivery.max_pending must be at least 1",
                );
                None
            }
            Some(limit) => Some(usize::try_from(limit).unwrap_or(usize::MAX)),
            None if queue_dir.is_some() => Some(DEFAULT_MAX_PENDING_DURABLE),
            None => Some(DEFAULT_MAX_PENDING_IN_MEMORY),
        };
        let keywords = raw
            .keywords
            .unwrap_or_else(|| vec![DEFAULT_KEYWORD.to_owned()]);
        self.check_keywords(&top.key("keywords"), &keywords);

        let declared: BTreeSet<String> = raw.robots.keys().cloned().collect();
        let mut robots = BTreeMap::new();
        for (name, raw_robot) in raw.robots {
            let at = top.key("robots").key(&name);
            if let Some(robot) = self.robot(&at, &name, raw_robot, &keywords, api_url.as_ref()) {
                robots.insert(name, Arc::new(robot));
            }
        }

        let mut sources = Vec::new();
        for (name, template) in raw.templates {
            let at = top.key("templates").key(&name);
            let text = match (template.text, template.text_file) {
                (Some(text), None) => Some(text),
                (None, Some(file)) => self.read_file(&at.key("text_file"), &file),
                (None, None) => {
                    self.error(
                        &at,
                        format!("template `{name}` needs `text` or `text_file`"),
                    );
                    None
                }
                (Some(_), Some(_)) => {
                    self.error(
                        &at,
                        format!("template `{name}` has both `text` and `text_file`"),
                    );
                    None
                }
            };
            let title = template
                .title
                .unwrap_or_else(|| include_str!("../templates/default.title.j2").to_owned());
            if let Some(text) = text {
                sources.push(TemplateSource { name, title, text });
            }
        }
        let zone = timezone.clone().unwrap_or(TimeZone::UTC);
        let renderer = match Renderer::new(&sources, zone) {
            Ok(renderer) => Some(renderer),
            Err(errors) => {
                for e in errors {
                    let at = top.key("templates").key(&e.name).key(match e.part {
                        TemplatePart::Title => "title",
                        TemplatePart::Text => "text",
                    });
                    let line = e
                        .line
                        .map(|l| format!(" (template line {l})"))
                        .unwrap_or_default();
                    self.error(&at, format!("template `{}`{line}: {}", e.name, e.message));
                }
                None
            }
        };

        let mut strategies = Vec::new();
        let mut names = BTreeSet::new();
        for (index, raw_strategy) in raw.strategies.into_iter().enumerate() {
            let at = top.key("strategies").index(index);
            if !raw_strategy.name.is_empty() && !names.insert(raw_strategy.name.clone()) {
                self.error(
                    &at.key("name"),
                    format!("strategy name `{}` is used twice", raw_strategy.name),
                );
            }
            let zone = timezone.clone().unwrap_or(TimeZone::UTC);
            let strategy = self.strategy(&at, raw_strategy, &declared, renderer.as_ref(), zone);
            if let Some(strategy) = strategy {
                strategies.push(strategy);
            }
        }

        Some(Config {
            file: self.file.clone(),
            listen: listen?,
            max_body_bytes: raw
                .max_body_bytes
                .map_or(8 << 20, |b| usize::try_from(b).unwrap_or(usize::MAX)),
            bearer_token: bearer_token?,
            timezone: timezone?,
            timeout: timeout?,
            proxy_url: proxy_url?,
            shutdown_timeout: shutdown_timeout?,
            dedup_window: dedup_window?,
            mode: raw.delivery.mode,
            queue_dir,
            max_age: max_age?,
            passthrough_max_wait: passthrough_max_wait?,
            max_pending: max_pending?,
            robots,
            strategies,
            renderer: renderer?,
        })
    }

    /// `auth:`: `Some(None)` when absent. An empty token is an error rather than "no
    /// authentication", so that an unset variable cannot turn authentication off.
    fn bearer_token(&mut self, at: &Path, raw: RawAuth) -> Option<Option<BearerToken>> {
        let given = (raw.bearer_token, raw.bearer_token_file);
        let Some((key, token)) = self.inline_or_file(at, "auth", "bearer_token", given) else {
            return Some(None);
        };
        if token.is_empty() {
            self.error(
                &key,
                "the bearer token is empty; remove `auth:` to accept requests without one",
            );
            return None;
        }
        Some(Some(BearerToken::new(token)))
    }

    /// A credential given inline as `key` or in the file named by `key_file` (the two
    /// values of `given`), trimmed, with where it was given. `None` when neither is given,
    /// or both (an error, reported for `owner`).
    fn inline_or_file(
        &mut self,
        at: &Path,
        owner: &str,
        key: &str,
        given: (Option<String>, Option<String>),
    ) -> Option<(Path, String)> {
        let file_key = format!("{key}_file");
        match given {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    format!("{owner} has both `{key}` and `{file_key}`; keep one"),
                );
                None
            }
            (Some(value), None) => Some((at.key(key), value.trim().to_owned())),
            (None, Some(file)) => {
                let at = at.key(&file_key);
                let value = self.read_file(&at, &file)?;
                Some((at, value.trim().to_owned()))
            }
        }
    }

    fn robot(
        &mut self,
        at: &Path,
        name: &str,
        raw: RawRobot,
        default_keywords: &[String],
        default_api_url: Option<&Url>,
    ) -> Option<Robot> {
        let given = [
            raw.webhook.is_some(),
            raw.access_token.is_some(),
            raw.access_token_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                at,
                format!(
                    "robot `{name}` needs exactly one of `webhook`, `access_token` or \
                     `access_token_file`"
                ),
            );
            return None;
        }
        let (api_url, access_token) = if let Some(webhook) = &raw.webhook {
            self.check(&at.key("webhook"), split_webhook(webhook))?
        } else if let Some(token) = &raw.access_token {
            (default_api_url?.clone(), token.trim().to_owned())
        } else {
            let file = raw.access_token_file.as_deref().unwrap_or_default();
            let token = self.read_file(&at.key("access_token_file"), file)?;
            (default_api_url?.clone(), token.trim().to_owned())
        };
        if access_token.is_empty() {
            self.error(at, format!("robot `{name}` has an empty access token"));
        }

        let owner = format!("robot `{name}`");
        let secret = self
            .inline_or_file(at, &owner, "secret", (raw.secret, raw.secret_file))
            .map(|(_, secret)| secret)
            .filter(|s| !s.is_empty());

        let rate_limit = match &raw.rate_limit {
            Some(text) => self.check(&at.key("rate_limit"), RateLimit::from_str(text))?,
            None => RateLimit::DINGTALK,
        };
        let keywords = match raw.keywords {
            Some(own) => {
                self.check_keywords(&at.key("keywords"), &own);
                own
            }
            None => default_keywords.to_vec(),
        };
        Some(Robot {
            name: name.to_owned(),
            api_url,
            access_token: Secret::new(access_token),
            secret: secret.map(Secret::new),
            keywords,
            mention: raw.mention,
            rate_limit,
            msgtype: raw.msgtype,
        })
    }

    fn strategy(
        &mut self,
        at: &Path,
        raw: RawStrategy,
        robots: &BTreeSet<String>,
        renderer: Option<&Renderer>,
        timezone: TimeZone,
    ) -> Option<Strategy> {
        let mut ok = true;
        if raw.name.trim().is_empty() {
            self.error(at, "strategy needs a `name`");
            ok = false;
        }
        let mut matchers = Vec::new();
        for (i, text) in raw.matchers.iter().enumerate() {
            let parsed = Matcher::parse(text).map_err(|e| e.to_string());
            match self.check(&at.key("matchers").index(i), parsed) {
                Some(m) => matchers.push(m),
                None => ok = false,
            }
        }
        if raw.robots.is_empty() {
            self.error(at, format!("strategy `{}` names no robots", raw.name));
            ok = false;
        }
        for (i, robot) in raw.robots.iter().enumerate() {
            if !robots.contains(robot) {
                let known: Vec<&str> = robots.iter().map(String::as_str).collect();
                self.error(
                    &at.key("robots").index(i),
                    format!(
                        "strategy `{}` names robot `{robot}`, which is not defined (robots: {})",
                        raw.name,
                        known.join(", ")
                    ),
                );
                ok = false;
            }
        }
        let template = raw.template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
        if renderer.is_some_and(|r| !r.has_template(&template)) {
            self.error(
                &at.key("template"),
                format!("template `{template}` is not defined"),
            );
            ok = false;
        }
        let active_time = match raw.active_time {
            Some(window) => {
                let parsed = self.active_time(&at.key("active_time"), window, timezone);
                ok &= parsed.is_some();
                parsed
            }
            None => None,
        };
        ok.then(|| Strategy {
            name: raw.name,
            matchers,
            robots: raw.robots,
            send_resolved: raw.send_resolved.unwrap_or(true),
            mention: raw.mention,
            active_time,
            continue_matching: raw.continue_matching,
            template,
        })
    }

    fn active_time(&mut self, at: &Path, raw: RawActiveTime, zone: TimeZone) -> Option<ActiveTime> {
        let mut days = Vec::new();
        let mut days_ok = true;
        for (i, text) in raw.days.iter().enumerate() {
            match self.check(&at.key("days").index(i), weekdays(text)) {
                Some(parsed) => days.extend(parsed),
                None => days_ok = false,
            }
        }
        if days.is_empty() {
            days = all_weekdays();
        }
        let start = self.check(
            &at.key("start"),
            time_of_day(raw.start.as_deref().unwrap_or("00:00")),
        );
        let end = self.check(
            &at.key("end"),
            time_of_day(raw.end.as_deref().unwrap_or("24:00")),
        );
        let timezone = match raw.timezone.as_deref() {
            Some(name) => self.check(&at.key("timezone"), time_zone(name)),
            None => Some(zone),
        };
        let (start, end, timezone) = (start?, end?, timezone?);
        if !days_ok {
            return None;
        }
        if start == end {
            self.error(
                at,
                "active_time start and end are equal; leave active_time out to always send",
            );
            return None;
        }
        Some(ActiveTime {
            days,
            start,
            end,
            timezone,
        })
    }
}

/// The path `serde_ignored` reports, in source-map terms.
fn to_path(ignored: &serde_ignored::Path<'_>) -> Path {
    match ignored {
        serde_ignored::Path::Root => Path::default(),
        serde_ignored::Path::Seq { parent, index } => to_path(parent).index(*index),
        serde_ignored::Path::Map { parent, key } => to_path(parent).key(key),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => to_path(parent),
    }
}

/// Splits a webhook address as copied from DingTalk into the API URL and the token.
fn split_webhook(webhook: &str) -> Result<(Url, String), String> {
    let url = http_url(webhook)?;
    let mut token = None;
    let mut rest = Vec::new();
    for (key, value) in url.query_pairs() {
        if key == "access_token" {
            token = Some(value.into_owned());
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or("webhook has no access_token=... parameter; copy the whole address from the robot's settings")?;
    let mut api_url = url;
    api_url.set_query(None);
    if !rest.is_empty() {
        api_url.query_pairs_mut().extend_pairs(rest);
    }
    Ok((api_url, token))
}

fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("URL scheme must be http or https, not {other}")),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    jiff::SignedDuration::from_str(text)
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .ok_or_else(|| format!("{text:?} is not a duration like 5s, 1m30s or 24h"))
}

fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Asia/Shanghai)"))
}

fn time_of_day(text: &str) -> Result<Time, String> {
    let error = || format!("{text:?} is not a time of day like 09:00 or 18:30");
    if text == "24:00" {
        return Ok(Time::MAX);
    }
    let (hour, minute) = text.split_once(':').ok_or_else(error)?;
    let hour: i8 = hour.parse().map_err(|_| error())?;
    let minute: i8 = minute.parse().map_err(|_| error())?;
    Time::new(hour, minute, 0, 0).map_err(|_| error())
}

fn all_weekdays() -> Vec<Weekday> {
    (0..7).map(|i| Weekday::Monday.wrapping_add(i)).collect()
}

/// `mon`, `monday`, or a range such as `mon-fri` or `monday:friday`.
fn weekdays(text: &str) -> Result<Vec<Weekday>, String> {
    let one = |name: &str| -> Result<Weekday, String> {
        let lower = name.trim().to_ascii_lowercase();
        all_weekdays()
            .into_iter()
            .find(|day| {
                let full = format!("{day:?}").to_ascii_lowercase();
                lower == full || (lower.len() >= 3 && full.starts_with(&lower))
            })
            .ok_or_else(|| format!("{name:?} is not a weekday (mon, tue, ... or monday, ...)"))
    };
    match text.split_once(['-', ':']) {
        Some((from, to)) => {
            let (from, to) = (one(from)?, one(to)?);
            let mut days = vec![from];
            let mut day = from;
            while day != to {
                day = day.wrapping_add(1);
                days.push(day);
            }
            Ok(days)
        }
        None => Ok(vec![one(text)?]),
    }
}
