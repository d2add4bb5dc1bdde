//! Acknowledgements shared by the replicas: one Redis hash, `{prefix}:acks`, of group id to
//! an opaque value (what `act::acks` stores). The first value recorded for a group stays
//! (`HSETNX`), so two replicas acknowledging at once agree on who did.

use super::Cluster;

impl Cluster {
    /// Records `value` for `group` unless one is there; returns the value that stays.
    /// `None` when Redis cannot be reached.
    pub async fn record_ack(&self, group: &str, value: &str) -> Option<String> {
        let mut connection = self.reachable_connection().await?;
        let mut record = redis::cmd("HSETNX");
        record.arg(self.acks_key()).arg(group).arg(value);
        self.run(record.query_async::<i64>(&mut connection)).await?;
        let mut get = redis::cmd("HGET");
        get.arg(self.acks_key()).arg(group);
        self.run(get.query_async::<Option<String>>(&mut connection))
            .await?
    }

    /// Forgets the value of `group`; `None` when Redis cannot be reached.
    pub async fn forget_ack(&self, group: &str) -> Option<()> {
        let mut connection = self.reachable_connection().await?;
        let mut forget = redis::cmd("HDEL");
        forget.arg(self.acks_key()).arg(group);
        self.run(forget.query_async::<i64>(&mut connection))
            .await
            .map(|_| ())
    }

    /// Every group and its value; `None` when Redis cannot be reached.
    pub async fn acks(&self) -> Option<Vec<(String, String)>> {
        let mut connection = self.reachable_connection().await?;
        let mut all = redis::cmd("HGETALL");
        all.arg(self.acks_key());
        self.run(all.query_async::<Vec<(String, String)>>(&mut connection))
            .await
    }

    fn acks_key(&self) -> String {
        format!("{}:acks", self.config.key_prefix)
    }
}
