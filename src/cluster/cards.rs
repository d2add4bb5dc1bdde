//! Hashes replicas share for cards: `{prefix}:{name}`, field to an opaque value (what
//! `deliver::cards` stores: which card is a group's, and the group's latest notification),
//! so that whichever replica delivers or acts next finds what another one wrote. And the
//! month's OpenAPI calls, counted by all replicas.

use super::Cluster;

impl Cluster {
    /// The value of `field` in hash `name`: `Some(None)` when there is none, `None` when
    /// Redis cannot be reached.
    pub async fn hash_get(&self, name: &str, field: &str) -> Option<Option<String>> {
        let mut connection = self.reachable_connection().await?;
        let mut get = redis::cmd("HGET");
        get.arg(self.hash_key(name)).arg(field);
        self.run(get.query_async::<Option<String>>(&mut connection))
            .await
    }

    /// Every field of hash `name` with its value; `None` when Redis cannot be reached.
    pub async fn hash_all(&self, name: &str) -> Option<Vec<(String, String)>> {
        let mut connection = self.reachable_connection().await?;
        let mut all = redis::cmd("HGETALL");
        all.arg(self.hash_key(name));
        self.run(all.query_async::<Vec<(String, String)>>(&mut connection))
            .await
    }

    /// Sets (`Some`) or removes (`None`) `field` of hash `name`; `None` when Redis cannot
    /// be reached.
    pub async fn hash_set(&self, name: &str, field: &str, value: Option<&str>) -> Option<()> {
        let mut connection = self.reachable_connection().await?;
        let command = match value {
            Some(value) => {
                let mut set = redis::cmd("HSET");
                set.arg(self.hash_key(name)).arg(field).arg(value);
                set
            }
            None => {
                let mut forget = redis::cmd("HDEL");
                forget.arg(self.hash_key(name)).arg(field);
                forget
            }
        };
        self.run(command.query_async::<i64>(&mut connection))
            .await
            .map(|_| ())
    }

    /// Sets `field` of hash `name` to `value` unless it has one: `Some(None)` when it was
    /// set, `Some(Some(theirs))` with the value already there, `None` when Redis cannot be
    /// reached.
    pub async fn hash_set_first(
        &self,
        name: &str,
        field: &str,
        value: &str,
    ) -> Option<Option<String>> {
        let mut connection = self.reachable_connection().await?;
        let mut set = redis::cmd("HSETNX");
        set.arg(self.hash_key(name)).arg(field).arg(value);
        if self.run(set.query_async::<i64>(&mut connection)).await? == 1 {
            return Some(None);
        }
        let mut get = redis::cmd("HGET");
        get.arg(self.hash_key(name)).arg(field);
        self.run(get.query_async::<Option<String>>(&mut connection))
            .await
    }

    /// Counts one OpenAPI call in `month` (`2026-12`) for every replica; the month's calls
    /// so far, `None` when Redis cannot be reached.
    pub async fn count_call(&self, month: &str) -> Option<u64> {
        let mut connection = self.reachable_connection().await?;
        let key = format!("{}:openapi-calls:{month}", self.config.key_prefix);
        let mut count = redis::cmd("INCR");
        count.arg(&key);
        let calls = self.run(count.query_async::<u64>(&mut connection)).await?;
        // Kept past the month's end, then gone.
        let mut expire = redis::cmd("EXPIRE");
        expire.arg(&key).arg(40 * 86_400);
        let _: Option<i64> = self.run(expire.query_async(&mut connection)).await;
        Some(calls)
    }

    fn hash_key(&self, name: &str) -> String {
        format!("{}:{name}", self.config.key_prefix)
    }
}
