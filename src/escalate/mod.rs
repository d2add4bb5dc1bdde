//! Escalation: reaching the person on call while nobody takes a firing group on. An
//! episode opens when the bridge accepts the first firing notification of an alert group
//! under a strategy with `escalate:` steps ([`Escalations::accepted`]); each step is taken
//! once, `after` that moment, unless the group was acknowledged (by a link or a command),
//! resolved, or, with `alertmanager:`, silenced; a resolved notification ends the episode.
//! The time to acknowledge and to resolve are measured per strategy.
//!
//! Durable and shared as [`store`] says; exactly one replica takes each step, by claiming
//! it first ([`episode`]). One loop per replica ([`Escalations::run`]) looks every second,
//! or at once when an episode opens.

pub mod episode;
mod step;
pub mod store;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;

use crate::act::{Act, link};
use crate::cluster::Cluster;
use crate::deliver::Delivery;
use crate::ingest::{Notification, Status};
use crate::metrics::{Metrics, StrategyLabels};
use crate::route;
use crate::snapshot::{ConfigHandle, Snapshot};
use episode::{Acked, Due, Episode, Stored};
use step::Taken;
pub use store::{Store, StoreError};
pub use view::{EpisodeView, StepView};

/// How often the loop looks without being woken: for acknowledgements, other replicas'
/// episodes and reloads.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a group Alertmanager said is silenced waits before it is asked again.
const SILENCED_RECHECK: Duration = Duration::from_secs(30);

/// The episodes, and the loop that takes their steps. See the module documentation.
pub struct Escalations {
    store: Store,
    metrics: Arc<Metrics>,
    wake: Notify,
    /// Episodes Alertmanager said are silenced, and when to ask again.
    silenced: Mutex<HashMap<String, Timestamp>>,
}

impl Escalations {
    /// Escalations whose episodes live in `store`, counted in `metrics`.
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        Escalations {
            store,
            metrics,
            wake: Notify::new(),
            silenced: Mutex::default(),
        }
    }

    /// After `notification` was accepted (its messages queued or delivered) at `now`: opens
    /// an episode for every strategy with steps that sends its firing group; ends every
    /// episode of a resolved group, measuring its time to resolve.
    pub async fn accepted(&self, snapshot: &Snapshot, notification: &Notification, now: Timestamp) {
        let config = &snapshot.config;
        if notification.group_key.is_empty()
            || config.strategies.iter().all(|s| s.escalate.is_empty())
        {
            return;
        }
        let cluster = snapshot.cluster.as_deref();
        if notification.status == Status::Resolved {
            return self.resolved(snapshot, &notification.group_key, now).await;
        }
        let routes = route::route(&config.strategies, &notification.alerts, now);
        let mut strategies: Vec<&str> = routes
            .messages
            .keys()
            .filter_map(|(index, _)| config.strategies.get(*index))
            .filter(|s| !s.escalate.is_empty())
            .map(|s| s.name.as_str())
            .collect();
        strategies.dedup();
        for strategy in strategies {
            let id = episode::id(&notification.group_key, strategy);
            let opened = Episode {
                group_key: notification.group_key.clone(),
                strategy: strategy.to_owned(),
                receiver: notification.receiver.clone(),
                group_labels: notification.group_labels.clone(),
                title: title(notification),
                started: now,
            };
            let json = serde_json::to_string(&opened).unwrap_or_default();
            match self
                .store
                .set_first(cluster, &episode::episode_field(&id), &json)
                .await
            {
                Ok(true) => {
                    tracing::info!(message = "Escalation episode opened.", %strategy, group = %opened.title);
                    self.wake.notify_one();
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(message = "Cannot open an escalation episode; its steps will not be taken.", %strategy, %error)
                }
            }
        }
    }

    /// Ends every episode of the group `group_key`.
    async fn resolved(&self, snapshot: &Snapshot, group_key: &str, now: Timestamp) {
        let cluster = snapshot.cluster.as_deref();
        let fields = match self.store.all(cluster).await {
            Ok(fields) => fields,
            Err(error) => {
                tracing::error!(message = "Cannot end the escalation episodes of a resolved group.", %error);
                return;
            }
        };
        for stored in episode::read(&fields)
            .into_iter()
            .filter(|s| s.episode.group_key == group_key)
        {
            let seconds = now
                .duration_since(stored.episode.started)
                .as_secs_f64()
                .max(0.0);
            self.metrics
                .response
                .time_to_resolve
                .get_or_create(&StrategyLabels {
                    strategy: stored.episode.strategy.clone(),
                })
                .observe(seconds);
            self.end(cluster, &fields, &stored.id).await;
        }
    }

    /// Removes episode `id` (every one of its `fields`).
    async fn end(&self, cluster: Option<&Cluster>, fields: &BTreeMap<String, String>, id: &str) {
        let all = episode::fields_of(fields, id)
            .into_iter()
            .cloned()
            .collect();
        if let Err(error) = self.store.remove(cluster, all).await {
            tracing::error!(message = "Cannot remove an ended escalation episode.", episode = %id, %error);
        }
        self.silenced_map().remove(id);
    }

    fn silenced_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        self.silenced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the steps that are due, as the configuration in force says, until aborted.
    pub async fn run(
        self: Arc<Self>,
        config: Arc<ConfigHandle>,
        act: Arc<Act>,
        delivery: Arc<Delivery>,
    ) {
        loop {
            let snapshot = config.snapshot();
            let escalates = snapshot
                .config
                .strategies
                .iter()
                .any(|s| !s.escalate.is_empty());
            let wait = if escalates {
                let now = Timestamp::now();
                let next = self.look(&snapshot, &act, &delivery, now).await;
                let until =
                    |at: Timestamp| Duration::try_from(at.duration_since(now)).unwrap_or_default();
                next.map_or(LOOK_EVERY, |at| until(at).min(LOOK_EVERY))
            } else {
                LOOK_EVERY
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Takes what is due at `now`; returns when the next step waiting is due, if any.
    async fn look(
        &self,
        snapshot: &Snapshot,
        act: &Act,
        delivery: &Arc<Delivery>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let cluster = snapshot.cluster.as_deref();
        let fields = match self.store.all(cluster).await {
            Ok(fields) => fields,
            Err(error) => {
                tracing::warn!(message = "Cannot read the escalation episodes; trying again.", %error);
                return None;
            }
        };
        let mut next: Option<Timestamp> = None;
        for stored in episode::read(&fields) {
            let strategy = snapshot
                .config
                .strategies
                .iter()
                .find(|s| s.name == stored.episode.strategy);
            let Some(steps) = strategy
                .map(|s| &s.escalate)
                .filter(|steps| !steps.is_empty())
            else {
                // The strategy is gone, or takes no steps any more.
                self.end(cluster, &fields, &stored.id).await;
                continue;
            };
            if stored.acked.is_some() || self.acknowledged(snapshot, act, &stored).await {
                continue;
            }
            let (index, attempt) = match stored.due(steps, now) {
                Due::Finished => continue,
                Due::Wait { at } => {
                    next = Some(next.map_or(at, |next| next.min(at)));
                    continue;
                }
                Due::Claim { index, attempt } => (index, attempt),
            };
            if self.is_silenced(snapshot, &stored, now).await {
                continue;
            }
            let claim = episode::claim_field(&stored.id, index, attempt);
            match self
                .store
                .set_first(cluster, &claim, &now.to_string())
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(message = "Cannot claim an escalation step; trying again.", %error);
                    continue;
                }
            }
            let step = &steps[index];
            let via = step.via.as_str();
            match step::take(delivery, snapshot, (&stored, index, step), now).await {
                Taken::Done(done) => {
                    tracing::info!(
                        message = "Escalated.",
                        group = %stored.episode.title,
                        strategy = %stored.episode.strategy,
                        step = index + 1,
                        %via,
                        member = %done.member,
                        outcome = %done.outcome,
                    );
                    self.metrics.response.escalated(index, via, &done.outcome);
                    let json = serde_json::to_string(&done).unwrap_or_default();
                    let field = episode::done_field(&stored.id, index);
                    if let Err(error) = self.store.set_first(cluster, &field, &json).await {
                        tracing::error!(message = "Cannot record an escalation step taken; it may be taken once more.", %error);
                    }
                    next = Some(now);
                }
                Taken::Failed(error) => {
                    tracing::warn!(
                        message = "An escalation step failed; it is tried again when its claim's lease ends.",
                        group = %stored.episode.title,
                        step = index + 1,
                        %via,
                        attempt,
                        %error,
                    );
                    self.metrics.response.escalated(index, via, "failed");
                }
            }
        }
        next
    }

    /// Whether the group of `stored` was acknowledged (by a link or a command): then its
    /// acknowledgement is recorded in the episode, once, and its time to acknowledge
    /// measured.
    async fn acknowledged(&self, snapshot: &Snapshot, act: &Act, stored: &Stored) -> bool {
        let episode = &stored.episode;
        let ids = link::ack_ids(&episode.group_key, &episode.receiver, &episode.group_labels);
        let Some(ack) = ids.iter().find_map(|id| act.acks.get(id)) else {
            return false;
        };
        let acked = Acked {
            by: ack.by,
            at: ack.at,
        };
        let json = serde_json::to_string(&acked).unwrap_or_default();
        let cluster = snapshot.cluster.as_deref();
        if let Ok(true) = self
            .store
            .set_first(cluster, &episode::ack_field(&stored.id), &json)
            .await
        {
            let seconds = acked
                .at
                .duration_since(episode.started)
                .as_secs_f64()
                .max(0.0);
            self.metrics
                .response
                .time_to_acknowledge
                .get_or_create(&StrategyLabels {
                    strategy: episode.strategy.clone(),
                })
                .observe(seconds);
            tracing::info!(message = "Escalation stopped: acknowledged.", group = %episode.title, by = %acked.by);
        }
        true
    }

    /// With `alertmanager:`, whether Alertmanager says every alert of the group is
    /// silenced; asked again [`SILENCED_RECHECK`] after it said so. When Alertmanager
    /// cannot be asked, the step is taken.
    async fn is_silenced(&self, snapshot: &Snapshot, stored: &Stored, now: Timestamp) -> bool {
        let Some(alertmanager) = &snapshot.alertmanager else {
            return false;
        };
        if self
            .silenced_map()
            .get(&stored.id)
            .is_some_and(|until| now < *until)
        {
            return true;
        }
        let matchers: Vec<(String, String)> = stored
            .episode
            .group_labels
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let silenced = match alertmanager.alerts(&matchers).await {
            Ok(alerts) => {
                !alerts.is_empty() && alerts.iter().all(|a| !a.status.silenced_by.is_empty())
            }
            Err(error) => {
                tracing::warn!(message = "Cannot ask Alertmanager whether a group is silenced; escalating.", %error);
                false
            }
        };
        if silenced {
            tracing::info!(message = "Escalation held: Alertmanager has the group silenced.", group = %stored.episode.title);
            self.silenced_map()
                .insert(stored.id.clone(), now + SILENCED_RECHECK);
        }
        silenced
    }
}

/// A group's title for its episode: `[FIRING:2] HighCPU · critical`.
fn title(notification: &Notification) -> String {
    let firing = notification
        .alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .count();
    let name = notification.alerts.first().map_or("", |a| a.name());
    match notification.common_labels.get("severity") {
        Some(severity) => format!("[FIRING:{firing}] {name} · {severity}"),
        None => format!("[FIRING:{firing}] {name}"),
    }
}
