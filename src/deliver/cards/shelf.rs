//! One kind of card record kept three ways: in memory, in a table of `cards.redb` (when
//! there is a queue directory) and, with `cluster:`, in a Redis hash the replicas share.
//! Redis is asked first when it answers; the file is written on tokio's blocking pool and
//! a failure to write it is logged (memory and Redis still have the record).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;
use crate::storage;

/// Records of one kind by key: see the module documentation.
#[derive(Debug)]
pub(super) struct Shelf<T> {
    /// The table's and the Redis hash's name.
    name: &'static str,
    held: Mutex<HashMap<String, T>>,
    file: Option<Arc<Database>>,
}

impl<T: Clone + Serialize + DeserializeOwned> Shelf<T> {
    /// A shelf in memory only.
    pub(super) fn in_memory(name: &'static str) -> Self {
        Shelf {
            name,
            held: Mutex::default(),
            file: None,
        }
    }

    /// A shelf kept in table `name` of `database` too, read whole now (at start).
    pub(super) fn open(name: &'static str, database: Arc<Database>) -> Result<Self, redb::Error> {
        let held = storage::read_all(&database, TableDefinition::new(name))?
            .into_iter()
            .filter_map(|(key, value)| Some((key, serde_json::from_slice::<T>(&value).ok()?)))
            .collect();
        Ok(Shelf {
            name,
            held: Mutex::new(held),
            file: Some(database),
        })
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, T>> {
        // Every critical section leaves the map consistent.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this replica holds a record of `key`.
    pub(super) fn holds(&self, key: &str) -> bool {
        self.held().contains_key(key)
    }

    /// How many records this replica holds.
    pub(super) fn len(&self) -> usize {
        self.held().len()
    }

    /// The record of `key`: Redis's when it answers, else this replica's.
    pub(super) async fn get(&self, key: &str, cluster: Option<&Cluster>) -> Option<T> {
        if let Some(cluster) = cluster
            && let Some(shared) = cluster.hash_get(self.name, key).await
        {
            return shared.and_then(|json| serde_json::from_str(&json).ok());
        }
        self.held().get(key).cloned()
    }

    /// Every record: Redis's when it answers, else this replica's.
    pub(super) async fn all(&self, cluster: Option<&Cluster>) -> Vec<T> {
        if let Some(cluster) = cluster
            && let Some(shared) = cluster.hash_all(self.name).await
        {
            return shared
                .into_iter()
                .filter_map(|(_, json)| serde_json::from_str(&json).ok())
                .collect();
        }
        self.held().values().cloned().collect()
    }

    /// Sets the record of `key` unless there is one (here, or in Redis when it answers):
    /// `None` when it was set, else the record already there.
    pub(super) async fn put_first(
        &self,
        key: &str,
        record: &T,
        cluster: Option<&Cluster>,
    ) -> Option<T> {
        let json = serde_json::to_string(record).unwrap_or_default();
        let theirs = match cluster {
            Some(cluster) => match cluster.hash_set_first(self.name, key, &json).await {
                Some(theirs) => theirs.and_then(|json| serde_json::from_str(&json).ok()),
                None => self.held().get(key).cloned(),
            },
            None => self.held().get(key).cloned(),
        };
        if theirs.is_none() {
            // Redis has it already: the file and memory follow.
            self.put(key, Some(record), None).await;
        }
        theirs
    }

    /// Sets (`Some`) or forgets the record of `key`: in Redis, in the file, in memory.
    pub(super) async fn put(&self, key: &str, record: Option<&T>, cluster: Option<&Cluster>) {
        let json = record.map(|record| serde_json::to_string(record).unwrap_or_default());
        if let Some(cluster) = cluster {
            let _ = cluster.hash_set(self.name, key, json.as_deref()).await;
        }
        if let Some(database) = self.file.clone() {
            let change = (key.to_owned(), json.clone().map(String::into_bytes));
            let written = storage::write(database, TableDefinition::new(self.name), vec![change]);
            if let Err(error) = written.await {
                tracing::error!(message = "Cannot write to cards.redb.", table = self.name, %error);
            }
        }
        match record {
            Some(record) => self.held().insert(key.to_owned(), record.clone()),
            None => self.held().remove(key),
        };
    }
}
