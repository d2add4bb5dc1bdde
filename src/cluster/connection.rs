//! The connection to Redis, and what a failed operation does: the fallback to local
//! state, logged once, until the heartbeat reaches Redis again.
//!
//! With `cluster.sentinel`, each new connection goes to the master the Sentinels name
//! then, and a failed operation drops the connection, so that the next (the heartbeat's,
//! within a second) asks them again: after a failover, the promoted replica; a master
//! that came back as a replica answers writes with an error, which does the same. The
//! replica falls back to its share meanwhile, as when Redis is lost.

use std::sync::Mutex;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisResult, TlsMode};

use super::{Cluster, HEARTBEAT};
use crate::config::ClusterConfig;

/// Where connections go.
pub(super) enum Target {
    /// The one Redis of `redis_url`.
    Direct(redis::Client),
    /// The master the Sentinels name.
    Sentinel {
        sentinels: tokio::sync::Mutex<SentinelClient>,
        /// The master of the last connection, `host:port`.
        master: Mutex<Option<String>>,
    },
}

impl Target {
    /// The target of `config`.
    pub(super) fn of(config: &ClusterConfig) -> RedisResult<Target> {
        let Some(sentinel) = &config.sentinel else {
            return redis::Client::open(config.redis_url.expose()).map(Target::Direct);
        };
        // The master's credentials, database and TLS come from redis_url; its address
        // from the Sentinels, reached in the same scheme, with their own password.
        let info = config.redis_url.expose().into_connection_info()?;
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(info.redis_settings().clone());
        if tls {
            node = node.set_tls_mode(TlsMode::Secure);
        }
        let scheme = if tls { "rediss" } else { "redis" };
        let mut addresses = Vec::with_capacity(sentinel.addresses.len());
        for address in &sentinel.addresses {
            let mut url = url::Url::parse(&format!("{scheme}://{address}")).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "invalid Sentinel address",
                    e.to_string(),
                ))
            })?;
            if let Some(password) = &sentinel.password {
                // Cannot fail: the URL has a host.
                let _ = url.set_password(Some(password.expose()));
            }
            addresses.push(url);
        }
        let client = SentinelClient::build(
            addresses,
            &sentinel.master_name,
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(Target::Sentinel {
            sentinels: tokio::sync::Mutex::new(client),
            master: Mutex::default(),
        })
    }
}

impl Cluster {
    /// Runs one Redis operation within `cluster.timeout`; `None`, and the fallback, when
    /// it fails.
    pub(super) async fn run<T>(
        &self,
        operation: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.config.timeout, operation).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.lost(&error.to_string());
                None
            }
            Err(_) => {
                self.lost(&format!("no answer within {:?}", self.config.timeout));
                None
            }
        }
    }

    /// The connection, unless Redis is known to be unreachable (then only the heartbeat
    /// asks again).
    pub(super) async fn reachable_connection(&self) -> Option<ConnectionManager> {
        if !self.is_reachable() {
            return None;
        }
        self.connection().await
    }

    pub(super) async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(connection) = self.current_connection() {
            return Some(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.current_connection() {
            return Some(connection);
        }
        let client = match &self.target {
            Target::Direct(client) => client.clone(),
            Target::Sentinel { sentinels, master } => {
                let mut sentinels = sentinels.lock().await;
                let client = self.run(sentinels.async_get_client()).await?;
                let named = client.get_connection_info().addr().to_string();
                let previous = master
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .replace(named.clone());
                if previous.as_ref().is_some_and(|previous| *previous != named) {
                    tracing::warn!(
                        message = "Redis Sentinel names another master: following it.",
                        master = %named,
                        previous = previous.as_deref().unwrap_or_default(),
                    );
                }
                client
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(HEARTBEAT);
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = self.run(connect).await?;
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(connection.clone());
        Some(connection)
    }

    fn current_connection(&self) -> Option<ConnectionManager> {
        self.connection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn lost(&self, error: &str) {
        if matches!(self.target, Target::Sentinel { .. }) {
            // The next connection asks the Sentinels where the master is.
            *self.connection.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let mut state = self.state();
        if state.reachable {
            state.reachable = false;
            self.up.set(0);
            tracing::error!(
                message = "Redis cannot be reached; each robot falls back to this replica's share of its rate window, and duplicate suppression to this replica's memory.",
                redis = %self.config.redis_url,
                replicas = self.config.replicas,
                %error,
            );
        }
    }
}
