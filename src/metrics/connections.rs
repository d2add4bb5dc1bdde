//! The series of the bridge's connections: to Redis (`cluster:`) and to DingTalk's Stream
//! gateway (commands), created and removed as the configuration changes.

use prometheus_client::metrics::gauge::Gauge;

use super::{AppLabels, Metrics, RedisLabels};

impl Metrics {
    /// The `cluster_redis_up` gauge of `redis`, from now on the only series.
    pub fn cluster_redis_up(&self, redis: &str) -> Gauge {
        self.cluster_redis_up.clear();
        self.cluster_redis_up
            .get_or_create(&RedisLabels {
                redis: redis.to_owned(),
            })
            .clone()
    }

    /// The `stream_connected` gauge of application `app_key`.
    pub fn stream_connected(&self, app_key: &str) -> Gauge {
        self.stream_connected
            .get_or_create(&AppLabels {
                app: app_key.to_owned(),
            })
            .clone()
    }

    /// Removes the `stream_connected` series of `app_key`: no robot of it takes commands.
    pub fn forget_stream(&self, app_key: &str) {
        self.stream_connected.remove(&AppLabels {
            app: app_key.to_owned(),
        });
    }

    /// Removes the `cluster_redis_up` series: no `cluster:` any more.
    pub fn forget_cluster(&self) {
        self.cluster_redis_up.clear();
    }
}
