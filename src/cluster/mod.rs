//! Cluster mode: replicas that deliver to the same robots share, through one Redis, each
//! robot's rolling rate window, its pause after a rate-limit answer, and the memory of
//! notifications already queued (`cluster:` in the config).
//!
//! Every step on shared state is one Lua script ([`scripts`]), timed by the Redis
//! server's clock. Each replica also keeps its own sends in the robot's local
//! [`Gate`](crate::limit::Gate) and uploads those of the current window every
//! [`HEARTBEAT`] (renewing its membership), so that Redis can lose its data without the
//! window forgetting them.
//!
//! When Redis does not answer within `cluster.timeout`, the replica falls back: it logs
//! it once, sets `cluster_redis_up` to 0, and sends on its own share of each robot's
//! window (`count / replicas`, at least 1), but only from one membership lifetime and one
//! window after it last reached Redis: by then the sends the others recorded before the
//! switch have left the window, and the others, missing its membership, keep its share
//! free. It asks again every heartbeat and comes back once it has uploaded its sends.
//!
//! Duplicate claims are two-phase, so that a claim never stands for a notification that
//! nobody queued: a replica claims the identity as *pending* (for [`PENDING`]), queues
//! the messages, then marks it *queued* for `dedup_window`; a failed commit releases it,
//! and a replica that dies in between leaves a pending claim that expires.

mod acks;
mod cards;
mod claims;
mod connection;
mod scripts;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::config::ClusterConfig;
use crate::dingtalk::RateLimit;
pub use claims::Claim;
use connection::Target;
use scripts::Scripts;

/// How often a replica renews its membership and uploads its sends, and asks again for
/// an unreachable Redis.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a membership lasts without renewal: a replica silent for longer is taken to
/// be sending on its own share.
pub const MEMBERSHIP: Duration = Duration::from_secs(5);
/// How long a pending claim lasts: longer than any commit to the queue.
pub const PENDING: Duration = Duration::from_secs(30);

/// What the shared window says about a send starting now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Recorded in the shared window.
    Granted,
    /// No send before `until`; `paused_until` when a rate-limit pause is the reason.
    Wait {
        /// When to ask again.
        until: Instant,
        /// The end of the robot's pause, if paused.
        paused_until: Option<Instant>,
    },
    /// Redis cannot be reached: send on this replica's share, not before `not_before`.
    Unreachable {
        /// When sends on the share may start.
        not_before: Instant,
    },
}

/// The shared state of a cluster of replicas, in one Redis. See the module documentation.
pub struct Cluster {
    config: ClusterConfig,
    target: Target,
    scripts: Scripts,
    connection: RwLock<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    up: Gauge,
}

struct State {
    reachable: bool,
    /// When Redis last answered this replica.
    last_contact: Instant,
    /// Replicas that were members at the last answer.
    members: i64,
    /// Room in each robot's shared window at its last answer.
    rooms: HashMap<String, usize>,
    /// Whether more members than `cluster.replicas` were last seen (warned once).
    crowded: bool,
}

/// Why `cluster:` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use cluster.redis_url {url}: {message}")]
pub struct ClusterError {
    url: String,
    message: String,
}

impl Cluster {
    /// The cluster of `config`, reporting reachability in `up`. Connects on first use.
    pub fn new(config: ClusterConfig, up: Gauge) -> Result<Self, ClusterError> {
        let target = Target::of(&config).map_err(|e| ClusterError {
            url: config.redis_url.to_string(),
            message: e.to_string(),
        })?;
        up.set(1);
        Ok(Cluster {
            config,
            target,
            scripts: Scripts::default(),
            connection: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                reachable: true,
                last_contact: Instant::now(),
                members: 0,
                rooms: HashMap::new(),
                crowded: false,
            }),
            up,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_reachable(&self) -> bool {
        self.state().reachable
    }

    /// The share of `limit` this replica sends on while Redis cannot be reached.
    pub fn share(&self, limit: RateLimit) -> RateLimit {
        RateLimit {
            count: (limit.count / self.config.replicas).max(1),
            window: limit.window,
        }
    }

    /// Records a send to `robot` starting at `at` in the shared window if it has room
    /// under `limit`; `own_sends` are this replica's sends of the window, uploaded first
    /// when Redis does not know this replica.
    pub async fn reserve(
        &self,
        robot: &str,
        limit: RateLimit,
        at: Instant,
        own_sends: impl FnOnce() -> Vec<Instant>,
    ) -> Slot {
        let Some(mut connection) = self.reachable_connection().await else {
            return self.unreachable_slot(limit);
        };
        let share = self.share(limit).count;
        let mut invocation = self.scripts.reserve.prepare_invoke();
        invocation
            .key(self.robot_keys(robot))
            .arg(&process().replica)
            .arg(millis(MEMBERSHIP))
            .arg(millis(limit.span()))
            .arg(limit.count)
            .arg(self.config.replicas)
            .arg(share)
            .arg(self.send_name(at));
        let answer: Vec<i64> = match self.run(invocation.invoke_async(&mut connection)).await {
            Some(answer) => answer,
            None => return self.unreachable_slot(limit),
        };
        match answer.as_slice() {
            [0, _, room, members, _] => {
                self.contact(*members);
                self.note_room(robot, *room);
                Slot::Granted
            }
            [1, wait, room, members, paused] => {
                self.contact(*members);
                self.note_room(robot, *room);
                let now = Instant::now();
                Slot::Wait {
                    until: now + from_millis(*wait),
                    paused_until: (*paused > 0).then(|| now + from_millis(*paused)),
                }
            }
            [2, ..] => {
                if self
                    .register(&mut connection, robot, limit, &own_sends())
                    .await
                    .is_none()
                {
                    return self.unreachable_slot(limit);
                }
                // Registered: ask again at once.
                Slot::Wait {
                    until: Instant::now(),
                    paused_until: None,
                }
            }
            other => {
                self.lost(&format!(
                    "unexpected answer {other:?} from the reserve script"
                ));
                self.unreachable_slot(limit)
            }
        }
    }

    /// Room in `robot`'s shared window when Redis last answered for it; `None` if it
    /// never did or cannot be reached now.
    pub fn room(&self, robot: &str) -> Option<usize> {
        let state = self.state();
        if !state.reachable {
            return None;
        }
        state.rooms.get(robot).copied()
    }

    fn note_room(&self, robot: &str, room: i64) {
        let room = usize::try_from(room).unwrap_or(0);
        self.state().rooms.insert(robot.to_owned(), room);
    }

    /// Pauses `robot` for `pause` for every replica.
    pub async fn pause(&self, robot: &str, pause: Duration) {
        let Some(mut connection) = self.reachable_connection().await else {
            return;
        };
        let mut invocation = self.scripts.pause.prepare_invoke();
        invocation.key(self.key(robot, "pause")).arg(millis(pause));
        let _: Option<i64> = self.run(invocation.invoke_async(&mut connection)).await;
    }

    /// Renews this replica's membership for each of `robots` (name, limit, this replica's
    /// sends in the window) and uploads the sends; asks for Redis again when it was
    /// unreachable, and says so when it is back.
    pub async fn heartbeat(&self, robots: &[(String, RateLimit, Vec<Instant>)]) {
        let was_reachable = self.is_reachable();
        let Some(mut connection) = self.connection().await else {
            return;
        };
        for (robot, limit, sends) in robots {
            if self
                .register(&mut connection, robot, *limit, sends)
                .await
                .is_none()
            {
                return;
            }
        }
        if robots.is_empty() {
            let ping = redis::cmd("PING");
            if self
                .run(ping.query_async::<String>(&mut connection))
                .await
                .is_none()
            {
                return;
            }
            self.reached();
        }
        if !was_reachable {
            self.state().reachable = true;
            self.up.set(1);
            tracing::info!(
                message = "Redis answers again; robots share their rate windows through it.",
                redis = %self.config.redis_url,
            );
        }
        let mut state = self.state();
        let members = state.members;
        let crowded = members > i64::from(self.config.replicas);
        if crowded && !state.crowded {
            tracing::warn!(
                message = "More replicas share a robot than cluster.replicas says: if Redis is lost, their shares add up to more than the robot's rate_limit.",
                members,
                replicas = self.config.replicas,
            );
        }
        state.crowded = crowded;
    }

    async fn register(
        &self,
        connection: &mut ConnectionManager,
        robot: &str,
        limit: RateLimit,
        sends: &[Instant],
    ) -> Option<()> {
        let now = Instant::now();
        let mut invocation = self.scripts.register.prepare_invoke();
        invocation
            .key(self.robot_keys(robot))
            .arg(&process().replica)
            .arg(millis(MEMBERSHIP))
            .arg(millis(limit.span()));
        for sent in sends {
            invocation
                .arg(millis(now.saturating_duration_since(*sent)))
                .arg(self.send_name(*sent));
        }
        let members: i64 = self.run(invocation.invoke_async(connection)).await?;
        self.contact(members);
        Some(())
    }

    /// Notes an answer from Redis that counted `members` replicas.
    fn contact(&self, members: i64) {
        let mut state = self.state();
        state.last_contact = Instant::now();
        state.members = members;
    }

    /// Notes an answer from Redis that counted no members.
    fn reached(&self) {
        self.state().last_contact = Instant::now();
    }

    fn unreachable_slot(&self, limit: RateLimit) -> Slot {
        Slot::Unreachable {
            not_before: self.state().last_contact + MEMBERSHIP + limit.span(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, robot: &str, what: &str) -> String {
        format!("{}:{{{robot}}}:{what}", self.config.key_prefix)
    }

    /// KEYS of the robot scripts, in the order [`scripts`] documents.
    fn robot_keys(&self, robot: &str) -> Vec<String> {
        ["sends", "members", "pause", "epoch", "resync"]
            .iter()
            .map(|what| self.key(robot, what))
            .collect()
    }

    fn send_name(&self, at: Instant) -> String {
        let process = process();
        format!(
            "{}:{}",
            process.replica,
            at.saturating_duration_since(process.started).as_nanos()
        )
    }
}

/// Fixes this process's name in Redis and the clock its sends are named by: call at
/// start, before the first send.
pub fn init() {
    process();
}

/// This process as Redis knows it, the same for every [`Cluster`] it builds (a reload
/// builds a new one), so that its sends keep their names.
struct Process {
    /// Its membership, and the first part of its sends' names.
    replica: String,
    /// Send names count nanoseconds from here.
    started: Instant,
}

fn process() -> &'static Process {
    static PROCESS: OnceLock<Process> = OnceLock::new();
    PROCESS.get_or_init(|| Process {
        replica: format!("{:016x}", fastrand::u64(..)),
        started: Instant::now(),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
