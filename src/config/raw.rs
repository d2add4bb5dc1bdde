//! `config.yaml` exactly as written, before validation.
//!
//! Every field is optional here so that one missing or wrong value does not hide the
//! others: validation in the parent module reports them all. Unknown keys are not
//! rejected by serde: [`is_unknown`] finds each key of the file no type takes, so that
//! every one is reported with its location. The keys a type takes are those serde's
//! derive gives it (asked of it by [`fields`]); which type takes the mapping at a path is
//! [`known_keys`], which must follow the nesting of the types below. (Over 400 lines: every
//! raw type is here, so that `known_keys` names them all in one place.)

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{Path, Segment};

use crate::config::DeliveryMode;
use crate::dingtalk::MsgType;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawConfig {
    pub listen: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub http: RawHttp,
    pub keywords: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub auth: RawAuth,
    pub dingtalk: RawDingTalk,
    pub delivery: RawDelivery,
    pub cluster: Option<RawCluster>,
    pub external_url: Option<String>,
    pub alertmanager: Option<RawAlertmanager>,
    pub actions: Option<RawActions>,
    pub templates: BTreeMap<String, RawTemplate>,
    pub oncall: BTreeMap<String, RawSchedule>,
    pub sources: RawSources,
    pub robots: BTreeMap<String, RawRobot>,
    pub pools: BTreeMap<String, Vec<String>>,
    pub strategies: Vec<RawStrategy>,
}

/// `http:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawHttp {
    pub max_connections: Option<u64>,
    pub read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_header_bytes: Option<u64>,
}

/// `auth:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawAuth {
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
}

/// `dingtalk:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDingTalk {
    pub api_url: Option<String>,
    pub openapi_url: Option<String>,
    pub timeout: Option<String>,
    pub proxy_url: Option<String>,
    pub proxy_url_file: Option<String>,
    pub no_proxy: Option<Vec<String>>,
    pub monthly_call_quota: Option<u64>,
}

/// `delivery:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDelivery {
    pub shutdown_timeout: Option<String>,
    pub dedup_window: Option<String>,
    pub mode: DeliveryMode,
    pub queue_dir: Option<String>,
    pub max_age: Option<String>,
    pub passthrough_max_wait: Option<String>,
    pub max_pending: Option<u64>,
}

/// `sources:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSources {
    pub grafana: RawGrafana,
    pub hertzbeat: RawHertzBeat,
}

/// `sources.grafana:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawGrafana {
    pub hmac_secret: Option<String>,
    pub hmac_secret_file: Option<String>,
    pub signature_header: Option<String>,
    pub timestamp_header: Option<String>,
}

/// `sources.hertzbeat:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawHertzBeat {
    pub timezone: Option<String>,
}

/// `cluster:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawCluster {
    pub redis_url: Option<String>,
    pub redis_url_file: Option<String>,
    pub key_prefix: Option<String>,
    pub replicas: Option<u64>,
    pub timeout: Option<String>,
    pub sentinel: Option<RawSentinel>,
}

/// `cluster.sentinel:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSentinel {
    pub master_name: Option<String>,
    pub addresses: Vec<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

/// `alertmanager:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawAlertmanager {
    pub urls: Vec<String>,
    pub basic_auth: Option<RawBasicAuth>,
    pub authorization: Option<RawAuthorization>,
    pub tls_config: Option<RawTlsConfig>,
    pub timeout: Option<String>,
}

/// `basic_auth:` of `alertmanager:`, as in Alertmanager's `http_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawBasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

/// `authorization:` of `alertmanager:`, as in Alertmanager's `http_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawAuthorization {
    pub r#type: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

/// `tls_config:` of `alertmanager:`, as in Alertmanager's `http_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// `actions:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawActions {
    pub key: Option<String>,
    pub key_file: Option<String>,
    pub link_ttl: Option<String>,
    pub silence_durations: Option<Vec<String>>,
}

/// `templates.<name>:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTemplate {
    pub title: Option<String>,
    pub text: Option<String>,
    pub text_file: Option<String>,
}

/// `robots.<name>:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawRobot {
    pub webhook: Option<String>,
    pub access_token: Option<String>,
    pub access_token_file: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub app_key: Option<String>,
    pub app_secret: Option<String>,
    pub app_secret_file: Option<String>,
    pub robot_code: Option<String>,
    pub open_conversation_id: Option<String>,
    pub keywords: Option<Vec<String>>,
    pub mention: RawRobotMention,
    pub rate_limit: Option<String>,
    pub msgtype: MsgType,
    pub commands: bool,
    pub command_users: Option<Vec<String>>,
}

/// One entry of `strategies:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawStrategy {
    pub name: String,
    pub matchers: Vec<String>,
    pub robots: Vec<String>,
    pub send_resolved: Option<bool>,
    pub mention: RawStrategyMention,
    pub active_time: Option<RawActiveTime>,
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    pub template: Option<String>,
    pub msgtype: Option<MsgType>,
    pub escalate: Vec<RawStep>,
}

/// `mention:` of a robot.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawRobotMention {
    pub all: bool,
    pub mobiles: Vec<String>,
    pub user_ids: Vec<String>,
    pub oncall: Vec<String>,
}

/// One entry of a strategy's `escalate:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawStep {
    pub after: Option<String>,
    pub notify: Option<String>,
    pub via: Option<String>,
    pub robot: Option<String>,
}

/// `oncall.<name>:`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSchedule {
    pub timezone: Option<String>,
    pub rotation: Option<RawRotation>,
    pub members: Vec<RawMember>,
    pub overrides: Vec<RawOverride>,
}

/// `rotation:` of a schedule.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawRotation {
    pub every: Option<String>,
    pub handoff: Option<String>,
    pub start: Option<String>,
}

/// One of a schedule's `members:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawMember {
    pub name: String,
    pub mobile: Option<String>,
    pub user_id: Option<String>,
}

/// One of a schedule's `overrides:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawOverride {
    pub from: Option<String>,
    pub to: Option<String>,
    pub member: Option<String>,
}

/// `mention:` of a strategy: people as for a robot, plus labels to take people from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawStrategyMention {
    pub all: bool,
    pub mobiles: Vec<String>,
    pub user_ids: Vec<String>,
    pub mobiles_from_label: Option<String>,
    pub user_ids_from_label: Option<String>,
    pub oncall: Vec<String>,
}

/// `active_time:` of a strategy.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawActiveTime {
    pub days: Vec<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
}

/// Whether the key at `path` is one no type takes: the mapping it is in has a type
/// ([`known_keys`]) without it. Keys in mappings of names (robots, templates, schedules)
/// and under values that are not mappings of keys are not judged here.
pub(super) fn is_unknown(path: &Path) -> bool {
    let Some((Segment::Key(key), parent)) = path.0.split_last() else {
        return false;
    };
    known_keys(parent).is_some_and(|fields| !fields.contains(&key.as_str()))
}

/// The keys the mapping at `path` takes, as the types above nest; `None` for a mapping of
/// names, or a path no type describes.
fn known_keys(path: &[Segment]) -> Option<&'static [&'static str]> {
    // The path with names of robots, templates and schedules as `*`, and list indexes as
    // `[]`: `robots.*.mention`, `strategies[].escalate[]`.
    let mut pattern = String::new();
    for (i, segment) in path.iter().enumerate() {
        let named = i == 1
            && matches!(&path[0], Segment::Key(k) if ["robots", "templates", "oncall", "pools"].contains(&k.as_str()));
        match segment {
            Segment::Key(_) if named => pattern.push_str(".*"),
            Segment::Key(key) if i == 0 => pattern.push_str(key),
            Segment::Key(key) => {
                pattern.push('.');
                pattern.push_str(key);
            }
            Segment::Index(_) => pattern.push_str("[]"),
        }
    }
    Some(match pattern.as_str() {
        "" => fields::<RawConfig>(),
        "http" => fields::<RawHttp>(),
        "auth" => fields::<RawAuth>(),
        "dingtalk" => fields::<RawDingTalk>(),
        "delivery" => fields::<RawDelivery>(),
        "cluster" => fields::<RawCluster>(),
        "cluster.sentinel" => fields::<RawSentinel>(),
        "sources" => fields::<RawSources>(),
        "sources.grafana" => fields::<RawGrafana>(),
        "sources.hertzbeat" => fields::<RawHertzBeat>(),
        "alertmanager" => fields::<RawAlertmanager>(),
        "alertmanager.basic_auth" => fields::<RawBasicAuth>(),
        "alertmanager.authorization" => fields::<RawAuthorization>(),
        "alertmanager.tls_config" => fields::<RawTlsConfig>(),
        "actions" => fields::<RawActions>(),
        "templates.*" => fields::<RawTemplate>(),
        "robots.*" => fields::<RawRobot>(),
        "robots.*.mention" => fields::<RawRobotMention>(),
        "strategies[]" => fields::<RawStrategy>(),
        "strategies[].mention" => fields::<RawStrategyMention>(),
        "strategies[].active_time" => fields::<RawActiveTime>(),
        "strategies[].escalate[]" => fields::<RawStep>(),
        "oncall.*" => fields::<RawSchedule>(),
        "oncall.*.rotation" => fields::<RawRotation>(),
        "oncall.*.members[]" => fields::<RawMember>(),
        "oncall.*.overrides[]" => fields::<RawOverride>(),
        _ => return None,
    })
}

/// The keys serde's derive makes `T` take: what it hands `deserialize_struct`. Asked of a
/// deserializer that answers nothing else, so none of `T`'s parsing is built for it.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let asked = std::cell::Cell::new(&[][..]);
    let _ = T::deserialize(FieldsOf(&asked));
    asked.get()
}

/// The deserializer [`fields`] asks.
struct FieldsOf<'a>(&'a std::cell::Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldsOf<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's fields are asked"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(de::Error::custom("only a struct's fields are asked"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
