//! Validation of the whole file: the raw config, as written, into a [`Config`], collecting
//! every error with its position (see [`Checker`]). Robots are checked in
//! [`super::robots`], strategies in [`super::strategies`], single values in
//! [`super::values`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use jiff::tz::TimeZone;

use super::BearerToken;
use super::checker::Checker;
use super::pools::POOL_PREFIX;
use super::raw::{RawAuth, RawConfig};
use super::robots::{CARDS_NEED_APPS, RobotUrls};
use super::values::{duration, http_url, time_zone};
use super::{
    Config, DEFAULT_API_URL, DEFAULT_KEYWORD, DEFAULT_MAX_PENDING_DURABLE,
    DEFAULT_MAX_PENDING_IN_MEMORY, DEFAULT_OPENAPI_URL, Path,
};
use crate::dingtalk::MsgType;
use crate::render::{Renderer, TemplatePart, TemplateSource};
use crate::route::Strategy;

impl Checker {
    pub(super) fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let top = Path::default();
        let listen = raw.listen.as_deref().unwrap_or("0.0.0.0:8060");
        let listen = self.check(
            &top.key("listen"),
            listen.parse::<SocketAddr>().map_err(|_| {
                format!("listen address {listen:?} is not host:port (e.g. 0.0.0.0:8060)")
            }),
        );
        let bearer_token = self.bearer_token(&top.key("auth"), raw.auth);
        let http = self.http(&top.key("http"), raw.http);
        let zone_name = raw.timezone.as_deref().unwrap_or("Asia/Shanghai");
        let timezone = self.check(&top.key("timezone"), time_zone(zone_name));
        let dingtalk = top.key("dingtalk");
        let api_url = raw.dingtalk.api_url.as_deref().unwrap_or(DEFAULT_API_URL);
        let api_url = self.check(&dingtalk.key("api_url"), http_url(api_url));
        let openapi_url = raw
            .dingtalk
            .openapi_url
            .as_deref()
            .unwrap_or(DEFAULT_OPENAPI_URL);
        let openapi_url = self.check(&dingtalk.key("openapi_url"), http_url(openapi_url));
        let urls = RobotUrls {
            api_url: api_url.as_ref(),
            openapi_url: openapi_url.as_ref(),
        };
        let timeout = self.check(
            &dingtalk.key("timeout"),
            duration(raw.dingtalk.timeout.as_deref().unwrap_or("5s")),
        );
        let monthly_call_quota = raw.dingtalk.monthly_call_quota;
        if monthly_call_quota == Some(0) {
            self.error(
                &dingtalk.key("monthly_call_quota"),
                "dingtalk.monthly_call_quota must be at least 1 (leave it out for no quota)",
            );
        }
        let proxy = self.proxy(
            &dingtalk,
            (
                raw.dingtalk.proxy_url.clone(),
                raw.dingtalk.proxy_url_file.clone(),
            ),
            raw.dingtalk.no_proxy.clone(),
        );
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
        let cluster = self.cluster(&top.key("cluster"), raw.cluster);
        let alertmanager = raw
            .alertmanager
            .map(|am| self.alertmanager(&top.key("alertmanager"), am));
        let actions = self.actions(&top, raw.external_url, alertmanager.clone(), raw.actions);
        let webhook_sources = timezone
            .as_ref()
            .and_then(|zone| self.sources(&top.key("sources"), raw.sources, zone));
        let keywords = raw
            .keywords
            .unwrap_or_else(|| vec![DEFAULT_KEYWORD.to_owned()]);
        self.check_keywords(&top.key("keywords"), &keywords);

        let zone = timezone.clone().unwrap_or(TimeZone::UTC);
        let oncall = self.schedules(&top.key("oncall"), raw.oncall, &zone);
        let declared: BTreeSet<String> = raw.robots.keys().cloned().collect();
        let mut robots = BTreeMap::new();
        for (name, raw_robot) in raw.robots {
            let at = top.key("robots").key(&name);
            if let Some(robot) = self.robot(&at, &name, raw_robot, &keywords, urls) {
                robots.insert(name, Arc::new(robot));
            }
        }

        for (name, robot) in &robots {
            let at = top.key("robots").key(name).key("mention").key("oncall");
            self.check_schedule_names(&at, &robot.oncall, &oncall);
        }
        if let Some(Some(cluster)) = &cluster {
            self.check_shares(&top, &robots, cluster.replicas);
        }
        // Every pool is a name strategies may use, even one with mistakes of its own.
        let pool_names = raw.pools.keys().map(|name| format!("{POOL_PREFIX}{name}"));
        let declared: BTreeSet<String> = declared.into_iter().chain(pool_names).collect();
        robots.extend(self.pools(&top.key("pools"), raw.pools, &robots));
        if alertmanager.is_none() {
            for (name, _) in robots.iter().filter(|(_, r)| r.commands.is_some()) {
                self.error(
                    &top.key("robots").key(name).key("commands"),
                    format!(
                        "robot `{name}` takes commands, which need `alertmanager.urls`: the Alertmanagers to list alerts and make silences in"
                    ),
                );
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
                .unwrap_or_else(|| include_str!("../render/templates/default.title.j2").to_owned());
            if let Some(text) = text {
                sources.push(TemplateSource { name, title, text });
            }
        }
        let zone = timezone.clone().unwrap_or(TimeZone::UTC);
        let schedule_names: Vec<&str> = oncall.keys().map(String::as_str).collect();
        let (renderer, errors) = match Renderer::new(&sources, zone) {
            Ok(renderer) => {
                let unknown = sources
                    .iter()
                    .flat_map(|source| renderer.unknown_variables(&source.name, &schedule_names))
                    .collect();
                (Some(renderer), unknown)
            }
            Err(errors) => (None, errors),
        };
        for e in &errors {
            let source = sources.iter().find(|s| s.name == e.name);
            let (key, source) = match e.part {
                TemplatePart::Title => ("title", source.map(|s| &s.title)),
                TemplatePart::Text => ("text", source.map(|s| &s.text)),
            };
            let at = top.key("templates").key(&e.name).key(key);
            let line = e
                .line
                .map(|l| {
                    let text = source
                        .and_then(|s| s.lines().nth(l.saturating_sub(1)))
                        .map(|t| format!(" `{}`", t.trim()))
                        .unwrap_or_default();
                    format!(" (template line {l}{text})")
                })
                .unwrap_or_default();
            self.error(&at, format!("template `{}`{line}: {}", e.name, e.message));
        }
        let renderer = renderer.filter(|_| errors.is_empty());

        let mut strategies = Vec::new();
        let mut names = BTreeSet::new();
        for (index, mut raw_strategy) in raw.strategies.into_iter().enumerate() {
            let at = top.key("strategies").index(index);
            let webhook_robot = raw_strategy
                .robots
                .iter()
                .find(|name| robots.get(*name).is_some_and(|robot| !robot.is_app()));
            if let (Some(MsgType::Card), Some(robot)) = (raw_strategy.msgtype, webhook_robot) {
                self.error(
                    &at.key("msgtype"),
                    format!(
                        "robot `{robot}` of this strategy is a webhook robot: {CARDS_NEED_APPS}"
                    ),
                );
            }
            if !raw_strategy.name.is_empty() && !names.insert(raw_strategy.name.clone()) {
                self.error(
                    &at.key("name"),
                    format!("strategy name `{}` is used twice", raw_strategy.name),
                );
            }
            let mention_oncall = std::mem::take(&mut raw_strategy.mention.oncall);
            self.check_schedule_names(&at.key("mention").key("oncall"), &mention_oncall, &oncall);
            let escalate = std::mem::take(&mut raw_strategy.escalate);
            let escalate = self.steps(
                &at.key("escalate"),
                escalate,
                &oncall,
                &robots,
                &raw_strategy.robots,
            );
            let zone = timezone.clone().unwrap_or(TimeZone::UTC);
            let strategy = self.strategy(&at, raw_strategy, &declared, renderer.as_ref(), zone);
            if let (Some(strategy), Some(escalate)) = (strategy, escalate) {
                strategies.push(Strategy {
                    mention_oncall,
                    escalate,
                    ..strategy
                });
            }
        }

        Some(Config {
            file: self.file.clone(),
            listen: listen?,
            max_body_bytes: raw
                .max_body_bytes
                .map_or(8 << 20, |b| usize::try_from(b).unwrap_or(usize::MAX)),
            http: http?,
            bearer_token: bearer_token?,
            timezone: timezone?,
            api_url: api_url?,
            monthly_call_quota,
            timeout: timeout?,
            proxy: proxy?,
            shutdown_timeout: shutdown_timeout?,
            dedup_window: dedup_window?,
            mode: raw.delivery.mode,
            queue_dir,
            max_age: max_age?,
            passthrough_max_wait: passthrough_max_wait?,
            max_pending: max_pending?,
            cluster: cluster?,
            alertmanager: alertmanager.map(|am| am.ok_or(())).transpose().ok()?,
            actions: actions?,
            robots,
            strategies,
            oncall,
            sources: webhook_sources?,
            renderer: renderer?,
        })
    }

    /// `auth:`: `Some(None)` when absent. An empty token is an error rather than "no
    /// authentication", so that an unset variable cannot turn authentication off.
    pub(super) fn bearer_token(&mut self, at: &Path, raw: RawAuth) -> Option<Option<BearerToken>> {
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
}
