//! The open episodes as the status page and `GET /api/v1/oncall` show them.

use jiff::Timestamp;
use serde::Serialize;

use super::{Escalations, StoreError, episode};
use crate::snapshot::Snapshot;

/// An open episode, as the status page and `/api/v1/escalations` show it.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeView {
    /// The group's first title.
    pub title: String,
    /// The strategy.
    pub strategy: String,
    /// When its first firing notification was accepted.
    pub started: Timestamp,
    /// Who acknowledged it, if the bridge saw it.
    pub acknowledged_by: Option<String>,
    /// The steps taken.
    pub steps: Vec<StepView>,
}

/// A step taken, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Its number in the strategy's `escalate:`, from 1.
    pub step: usize,
    /// How.
    pub via: String,
    /// Who was reached.
    pub member: String,
    /// `sent`, `refused`, `failed` or `skipped`.
    pub outcome: String,
    /// When.
    pub at: Timestamp,
}

impl Escalations {
    /// Every open episode, oldest first.
    pub async fn episodes(&self, snapshot: &Snapshot) -> Result<Vec<EpisodeView>, StoreError> {
        let fields = self.store.all(snapshot.cluster.as_deref()).await?;
        let mut views: Vec<EpisodeView> = episode::read(&fields)
            .into_iter()
            .map(|stored| EpisodeView {
                title: stored.episode.title,
                strategy: stored.episode.strategy,
                started: stored.episode.started,
                acknowledged_by: stored.acked.map(|a| a.by),
                steps: stored
                    .done
                    .into_iter()
                    .map(|(index, done)| StepView {
                        step: index + 1,
                        via: done.via,
                        member: done.member,
                        outcome: done.outcome,
                        at: done.at,
                    })
                    .collect(),
            })
            .collect();
        views.sort_by_key(|v| v.started);
        Ok(views)
    }
}
