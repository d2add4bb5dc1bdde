//! Validation of `cluster:`, the Redis that replicas share: the URL (inline or from a
//! file), the Sentinels that name its master if it has them, the key prefix, how many
//! replicas share a robot, and the timeout of one Redis operation. Nothing here connects.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::Path;
use super::checker::Checker;
use super::raw::{RawCluster, RawSentinel};
use crate::dingtalk::{Robot, Secret};

/// The key prefix when `cluster.key_prefix` is not given.
pub const DEFAULT_KEY_PREFIX: &str = "alertmanager-dingtalk";

/// `cluster:`: several replicas share each robot's rate window, pause and duplicate
/// memory through one Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis to share; may carry a password.
    pub redis_url: RedisUrl,
    /// Prefix of every key.
    pub key_prefix: String,
    /// How many replicas share a robot: each takes `rate_limit.count / replicas` (at
    /// least 1) of a robot's window while it cannot reach Redis.
    pub replicas: u32,
    /// Longest wait for one Redis operation before falling back to local state.
    pub timeout: Duration,
    /// With Redis Sentinel: where the master is asked for. `redis_url` then gives the
    /// master's credentials, database and TLS, not its address.
    pub sentinel: Option<SentinelConfig>,
}

/// `cluster.sentinel:`: the Sentinels that name the current master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// The master's name in the Sentinels' configuration (`sentinel monitor <name> …`).
    pub master_name: String,
    /// The Sentinels, as `host:port`.
    pub addresses: Vec<String>,
    /// The password the Sentinels require (their `requirepass`), if any.
    pub password: Option<Secret>,
}

/// A `redis://` or `rediss://` URL, shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(Url);

impl RedisUrl {
    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Cannot fail: the URL has a host, since it has a password.
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn redis_url(text: &str) -> Result<RedisUrl, String> {
    // Not in the message: the text may hold a password.
    let url = Url::parse(text).map_err(|e| format!("invalid Redis URL: {e}"))?;
    match url.scheme() {
        "redis" | "rediss" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(RedisUrl(url)),
        "redis" | "rediss" => Err("the Redis URL has no host".to_owned()),
        other => Err(format!(
            "Redis URL scheme must be redis or rediss (TLS), not {other}"
        )),
    }
}

impl Checker {
    /// `cluster:`; `Some(None)` when absent.
    pub(super) fn cluster(
        &mut self,
        at: &Path,
        raw: Option<RawCluster>,
    ) -> Option<Option<ClusterConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let given = (raw.redis_url, raw.redis_url_file);
        let redis_url = match self.inline_or_file(at, "cluster", "redis_url", given) {
            Some((key, text)) => self.check(&key, redis_url(&text)),
            None => {
                self.error(at, "cluster needs `redis_url` or `redis_url_file`");
                None
            }
        };
        let key_prefix = raw
            .key_prefix
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
        if key_prefix.contains(['{', '}']) {
            self.error(
                &at.key("key_prefix"),
                "cluster.key_prefix must not contain { or }: keys get the robot's name as their Redis Cluster hash tag",
            );
        }
        let replicas = match raw.replicas {
            Some(0) => {
                self.error(&at.key("replicas"), "cluster.replicas must be at least 1");
                None
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => Some(1),
        };
        let timeout = self.positive_duration(
            &at.key("timeout"),
            raw.timeout.as_deref().unwrap_or("500ms"),
        );
        let sentinel = match raw.sentinel {
            Some(sentinel) => Some(self.sentinel(&at.key("sentinel"), sentinel)?),
            None => None,
        };
        Some(Some(ClusterConfig {
            redis_url: redis_url?,
            key_prefix,
            replicas: replicas?,
            timeout: timeout?,
            sentinel,
        }))
    }

    /// `cluster.sentinel:`: a master name and at least one `host:port`.
    fn sentinel(&mut self, at: &Path, raw: RawSentinel) -> Option<SentinelConfig> {
        let master_name = raw.master_name.filter(|name| !name.trim().is_empty());
        if master_name.is_none() {
            self.error(at, "cluster.sentinel needs `master_name`, the name the Sentinels monitor the master by");
        }
        if raw.addresses.is_empty() {
            self.error(
                at,
                "cluster.sentinel needs `addresses`: at least one Sentinel as host:port",
            );
        }
        let mut addresses_ok = true;
        for (index, address) in raw.addresses.iter().enumerate() {
            let port = address.rsplit_once(':').and_then(|(host, port)| {
                (!host.is_empty())
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
            });
            if port.is_none() {
                self.error(
                    &at.key("addresses").index(index),
                    format!(
                        "Sentinel address {address:?} is not host:port (e.g. redis-sentinel:26379)"
                    ),
                );
                addresses_ok = false;
            }
        }
        let given = (raw.password, raw.password_file);
        let password = self
            .inline_or_file(at, "cluster.sentinel", "password", given)
            .map(|(_, password)| Secret::new(password));
        let master_name = master_name?;
        let addresses = raw.addresses;
        (addresses_ok && !addresses.is_empty()).then_some(SentinelConfig {
            master_name,
            addresses,
            password,
        })
    }

    /// Each of `replicas` must keep at least one send of every robot's window while Redis
    /// is lost, or together they could exceed it.
    pub(super) fn check_shares(
        &mut self,
        top: &Path,
        robots: &BTreeMap<String, Arc<Robot>>,
        replicas: u32,
    ) {
        for (name, robot) in robots {
            if robot.rate_limit.count < replicas {
                self.error(
                    &top.key("robots").key(name).key("rate_limit"),
                    format!(
                        "robot `{name}`: rate_limit {} is less than one send per window for each of cluster.replicas ({replicas})",
                        robot.rate_limit
                    ),
                );
            }
        }
    }
}
