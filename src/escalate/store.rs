//! Where the episodes' fields ([`super::episode`]) live: with `cluster:`, in the Redis
//! hash `{prefix}:escalations`, which every replica reads and writes; otherwise in memory
//! and, with `delivery.queue_dir`, in `escalations.redb` there, written before a call
//! returns so that a restart neither loses nor repeats a step. The file is read whole at
//! start and written on tokio's blocking pool.
//!
//! Not a card `Shelf` (`deliver::cards`), though it is kept the same three ways: a shelf
//! falls back to this replica's copy while Redis cannot be reached and only logs a write
//! that failed, where a claim here must fail then (two replicas would both take the step)
//! and a record must be written before the step counts as taken.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, TableDefinition};

use crate::cluster::Cluster;
use crate::storage::{self, Format};

/// Field to value (UTF-8; bytes, the type the other state tables have, so redb's code
/// for them is shared).
const FIELDS: storage::Table = TableDefinition::new("escalations");
/// The file's name in the queue directory.
const FILE_NAME: &str = "escalations.redb";
/// The file's format: version 1 added the format record.
const FORMAT: Format = Format {
    version: 1,
    migrations: &[storage::record_only],
};
/// The Redis hash, under the cluster's key prefix.
const HASH: &str = "escalations";

/// Why the episodes could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("escalations: {0}")]
pub struct StoreError(String);

/// The fields of every episode. See the module documentation.
#[derive(Debug)]
pub struct Store {
    local: Mutex<BTreeMap<String, String>>,
    file: Option<Arc<Database>>,
    /// Held from looking at a field to writing it, so the first write of a field wins.
    writing: tokio::sync::Mutex<()>,
}

impl Store {
    /// Fields in memory only: lost on restart.
    pub fn in_memory() -> Self {
        Store {
            local: Mutex::default(),
            file: None,
            writing: tokio::sync::Mutex::default(),
        }
    }

    /// Fields kept in `dir/escalations.redb` too, read whole now (at start).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| StoreError(format!("{}: {e}", path.display()));
        let database = storage::open(&path, &FORMAT, &[FIELDS]).map_err(|e| fail(&e))?;
        let local = storage::read_all(&database, FIELDS)
            .map_err(|e| fail(&e))?
            .into_iter()
            .map(|(field, value)| (field, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        Ok(Store {
            local: Mutex::new(local),
            file: Some(Arc::new(database)),
            writing: tokio::sync::Mutex::default(),
        })
    }

    fn local(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        // Every critical section leaves the map consistent.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every field; with `cluster`, Redis' (`Err` while it cannot be reached).
    pub async fn all(
        &self,
        cluster: Option<&Cluster>,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        match cluster {
            Some(cluster) => cluster
                .hash_all(HASH)
                .await
                .map(|all| all.into_iter().collect())
                .ok_or_else(unreachable),
            None => Ok(self.local().clone()),
        }
    }

    /// Writes `value` to `field` unless it has one; whether this write was the first.
    pub async fn set_first(
        &self,
        cluster: Option<&Cluster>,
        field: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        if let Some(cluster) = cluster {
            let theirs = cluster.hash_set_first(HASH, field, value).await;
            return theirs
                .map(|theirs| theirs.is_none())
                .ok_or_else(unreachable);
        }
        let _turn = self.writing.lock().await;
        if self.local().contains_key(field) {
            return Ok(false);
        }
        self.write(vec![(field.to_owned(), Some(value.to_owned()))])
            .await?;
        Ok(true)
    }

    /// Removes `fields`.
    pub async fn remove(
        &self,
        cluster: Option<&Cluster>,
        fields: Vec<String>,
    ) -> Result<(), StoreError> {
        if let Some(cluster) = cluster {
            for field in &fields {
                cluster
                    .hash_set(HASH, field, None)
                    .await
                    .ok_or_else(unreachable)?;
            }
            return Ok(());
        }
        let _turn = self.writing.lock().await;
        self.write(fields.into_iter().map(|f| (f, None)).collect())
            .await
    }

    /// Puts `changes` (a value, or a removal) in the file, if any, off the runtime, then
    /// in memory.
    async fn write(&self, changes: Vec<(String, Option<String>)>) -> Result<(), StoreError> {
        if let Some(database) = self.file.clone() {
            let bytes = changes
                .iter()
                .map(|(field, value)| (field.clone(), value.clone().map(String::into_bytes)))
                .collect();
            storage::write(database, FIELDS, bytes)
                .await
                .map_err(StoreError)?;
        }
        let mut local = self.local();
        for (field, value) in changes {
            match value {
                Some(value) => local.insert(field, value),
                None => local.remove(&field),
            };
        }
        Ok(())
    }
}

fn unreachable() -> StoreError {
    StoreError("Redis cannot be reached".to_owned())
}
