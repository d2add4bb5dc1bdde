//! The connection to Redis, and what a failed operation does: the fallback to local
//! state, logged once, until the heartbeat reaches Redis again.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cluster, HEARTBEAT};

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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(HEARTBEAT);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
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
