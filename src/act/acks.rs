//! Acknowledgements: who took an alert group on, and when. The first to acknowledge a
//! group stays; acknowledging again shows them. An acknowledgement lasts until a message
//! says the group resolved (that message still names who acknowledged it).
//!
//! Read from memory. Kept, with `delivery.queue_dir`, in `state.redb` there too, written
//! before the answer says it is done, so a restart keeps them; the file is read and written
//! on tokio's blocking pool, never on an async worker thread. With `cluster:` they are
//! shared through Redis ([`crate::cluster::Cluster::record_ack`]): Redis decides who was
//! first, and [`Acks::share`] (every heartbeat) takes in what other replicas recorded or
//! forgot, and hands Redis what this replica recorded while it could not reach it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::storage::{self, Format};

/// Acknowledgements: group id to the JSON of its [`Held`] acknowledgement.
const ACKS: storage::Table = TableDefinition::new("acks");
/// The file's name in the queue directory.
const FILE_NAME: &str = "state.redb";
/// The file's format: version 1 added the format record.
const FORMAT: Format = Format {
    version: 1,
    migrations: &[storage::record_only],
};

/// Who took a group on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The group's id (`link::group_id` of its `groupKey`).
    pub group: String,
    /// The name the person gave.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// The group's alerts then, by name.
    pub alerts: Vec<String>,
}

/// An acknowledgement as this replica holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    ack: Acknowledgement,
    /// Whether Redis has it: one Redis no longer has was forgotten by another replica;
    /// one it never had is handed to it.
    #[serde(default)]
    shared: bool,
}

/// Why the acknowledgements could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acknowledgements: {0}")]
pub struct AckError(String);

/// The acknowledgements of every group. See the module documentation.
#[derive(Debug)]
pub struct Acks {
    held: Mutex<BTreeMap<String, Held>>,
    file: Option<Arc<Database>>,
    /// Held from looking at a group to recording it: of two at once, the first stays.
    writing: tokio::sync::Mutex<()>,
}

impl Acks {
    /// Acknowledgements in memory only: lost on restart.
    pub fn in_memory() -> Self {
        Acks {
            held: Mutex::default(),
            file: None,
            writing: tokio::sync::Mutex::default(),
        }
    }

    /// Acknowledgements kept in `dir/state.redb` too, read whole now (at start).
    pub fn open(dir: &Path) -> Result<Self, AckError> {
        let path = dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| AckError(format!("{}: {e}", path.display()));
        let database = storage::open(&path, &FORMAT, &[ACKS]).map_err(|e| fail(&e))?;
        let mut held = BTreeMap::new();
        for (group, value) in storage::read_all(&database, ACKS).map_err(|e| fail(&e))? {
            match serde_json::from_slice::<Held>(&value) {
                Ok(ack) => {
                    held.insert(group, ack);
                }
                Err(error) => tracing::warn!(
                    message = "Skipping an acknowledgement that cannot be read.",
                    file = %path.display(),
                    group,
                    %error,
                ),
            }
        }
        Ok(Acks {
            held: Mutex::new(held),
            file: Some(Arc::new(database)),
            writing: tokio::sync::Mutex::default(),
        })
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, Held>> {
        // Every critical section leaves the map consistent.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who acknowledged `group`, if anyone.
    pub fn get(&self, group: &str) -> Option<Acknowledgement> {
        self.held().get(group).map(|held| held.ack.clone())
    }

    /// Every open acknowledgement, oldest first.
    pub fn all(&self) -> Vec<Acknowledgement> {
        let mut all: Vec<Acknowledgement> = self.held().values().map(|h| h.ack.clone()).collect();
        all.sort_by_key(|ack| ack.at);
        all
    }

    /// Records `ack` unless its group is acknowledged already (here, or with `cluster`
    /// by any replica); returns the group's acknowledgement either way, and whether it is
    /// `ack`. Durable once this returns.
    pub async fn record(
        &self,
        ack: Acknowledgement,
        cluster: Option<&Cluster>,
    ) -> Result<(Acknowledgement, bool), AckError> {
        let _turn = self.writing.lock().await;
        if let Some(existing) = self.get(&ack.group) {
            return Ok((existing, false));
        }
        let mut held = Held {
            ack: ack.clone(),
            shared: false,
        };
        if let Some(cluster) = cluster {
            let json = serde_json::to_string(&ack).unwrap_or_default();
            if let Some(stays) = cluster.record_ack(&ack.group, &json).await {
                held.shared = true;
                held.ack = serde_json::from_str(&stays).unwrap_or(ack.clone());
            }
        }
        self.write(&held.ack.group, Some(&held)).await?;
        let new = held.ack == ack;
        let stays = held.ack.clone();
        self.held().insert(ack.group.clone(), held);
        Ok((stays, new))
    }

    /// Forgets the acknowledgement of `group`, here and with `cluster` for every replica:
    /// it resolved.
    pub async fn clear(&self, group: &str, cluster: Option<&Cluster>) -> Result<(), AckError> {
        let _turn = self.writing.lock().await;
        if let Some(cluster) = cluster {
            // Unreachable: the heartbeat hands this replica's state to Redis later, but
            // not a removal, so another replica may show it until the group's next message.
            let _ = cluster.forget_ack(group).await;
        }
        if self.get(group).is_none() {
            return Ok(());
        }
        self.write(group, None).await?;
        self.held().remove(group);
        Ok(())
    }

    /// With `cluster`, brings this replica in line with Redis: takes in what the others
    /// recorded, forgets what they forgot, hands Redis what it recorded while Redis could
    /// not be reached. Does nothing while Redis cannot be reached.
    pub async fn share(&self, cluster: &Cluster) {
        let Some(shared) = cluster.acks().await else {
            return;
        };
        let _turn = self.writing.lock().await;
        let shared: BTreeMap<String, Acknowledgement> = shared
            .into_iter()
            .filter_map(|(group, json)| Some((group, serde_json::from_str(&json).ok()?)))
            .collect();
        let mine: BTreeMap<String, Held> = self.held().clone();
        for (group, held) in &mine {
            if shared.contains_key(group) {
                continue;
            }
            if held.shared {
                // Another replica forgot it: the group resolved.
                self.change(group, None).await;
            } else if let Some(stays) = cluster
                .record_ack(group, &serde_json::to_string(&held.ack).unwrap_or_default())
                .await
            {
                let ack = serde_json::from_str(&stays).unwrap_or_else(|_| held.ack.clone());
                self.change(group, Some(Held { ack, shared: true })).await;
            }
        }
        for (group, ack) in shared {
            let held = Held { ack, shared: true };
            if mine.get(&group) != Some(&held) {
                self.change(&group, Some(held)).await;
            }
        }
    }

    /// Puts `held` (or its removal) for `group` in the file and in memory; a failure to
    /// write is logged, and memory changed all the same (Redis has it).
    async fn change(&self, group: &str, held: Option<Held>) {
        if let Err(error) = self.write(group, held.as_ref()).await {
            tracing::error!(message = "Cannot write an acknowledgement to the state file.", %group, %error);
        }
        let mut all = self.held();
        match held {
            Some(held) => all.insert(group.to_owned(), held),
            None => all.remove(group),
        };
    }

    /// Writes `held` of `group` (or its removal) to the state file, if any, off the
    /// runtime.
    async fn write(&self, group: &str, held: Option<&Held>) -> Result<(), AckError> {
        let Some(database) = self.file.clone() else {
            return Ok(());
        };
        let json = held.map(|held| serde_json::to_vec(held).unwrap_or_default());
        storage::write(database, ACKS, vec![(group.to_owned(), json)])
            .await
            .map_err(AckError)
    }
}
