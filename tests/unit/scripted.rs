//! The delivery core without a network or a wall clock: a scripted DingTalk
//! ([`Scripted`]) and the service's own delivery parts over an in-memory queue
//! ([`Harness`]), for tests that run on paused tokio time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alertmanager_dingtalk::accept::dedup::Dedup;
use alertmanager_dingtalk::config::Config;
use alertmanager_dingtalk::deliver::Delivery;
use alertmanager_dingtalk::dingtalk::card::CardCall;
use alertmanager_dingtalk::dingtalk::{Mention, Message, Robot, SendError, SendFuture, Sender};
use alertmanager_dingtalk::ingest::Status;
use alertmanager_dingtalk::metrics::Metrics;
use alertmanager_dingtalk::queue::{
    DeadLetter, Envelope, GroupSummary, Inventory, MemoryStore, Queue, QueueError, Store,
};
use alertmanager_dingtalk::snapshot::{ConfigHandle, Snapshot};
use jiff::Timestamp;
use serde_json::Value;
use tokio::time::Instant;

use crate::load_config;

/// One request the scripted DingTalk received.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When it started.
    pub at: Instant,
    /// The robot it went to.
    pub robot: String,
    /// The JSON body.
    pub body: Value,
    /// What it was answered.
    pub answer: Result<(), SendError>,
}

impl Sent {
    /// The markdown title.
    pub fn title(&self) -> &str {
        self.body["markdown"]["title"].as_str().unwrap_or_default()
    }

    /// The markdown text.
    pub fn text(&self) -> &str {
        self.body["markdown"]["text"].as_str().unwrap_or_default()
    }

    /// Bytes of title and text.
    pub fn size(&self) -> usize {
        self.title().len() + self.text().len()
    }
}

type Rule = Box<dyn Fn(&Sent) -> Result<(), SendError> + Send + Sync>;

/// A DingTalk that answers from a script: the queued answers first, then `rule`.
pub struct Scripted {
    script: Mutex<VecDeque<Result<(), SendError>>>,
    rule: Rule,
    /// How long each answer takes.
    latency: Duration,
    sent: Mutex<Vec<Sent>>,
}

impl Scripted {
    /// Accepts everything at once.
    pub fn accepting() -> Arc<Self> {
        Scripted::with_rule(|_| Ok(()))
    }

    /// Answers each request with `rule`.
    pub fn with_rule(
        rule: impl Fn(&Sent) -> Result<(), SendError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::default(),
            rule: Box::new(rule),
            latency: Duration::ZERO,
            sent: Mutex::default(),
        })
    }

    /// Accepts everything, each answer taking `latency`.
    pub fn slow(latency: Duration) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::default(),
            rule: Box::new(|_| Ok(())),
            latency,
            sent: Mutex::default(),
        })
    }

    /// Answers the next requests with `answers`, in order, before the rule applies again.
    pub fn then(self: &Arc<Self>, answers: impl IntoIterator<Item = Result<(), SendError>>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// Every request so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// The requests DingTalk accepted.
    pub fn accepted(&self) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.answer.is_ok())
            .collect()
    }
}

impl Sender for Scripted {
    fn send<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a> {
        let mut sent = Sent {
            at: Instant::now(),
            robot: robot.name.clone(),
            body: serde_json::from_str(&body).unwrap(),
            answer: Ok(()),
        };
        let scripted = self.script.lock().unwrap().pop_front();
        sent.answer = scripted.unwrap_or_else(|| (self.rule)(&sent));
        let answer = sent.answer.clone();
        self.sent.lock().unwrap().push(sent);
        let latency = self.latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            answer
        })
    }

    /// A card goes through the script like any message.
    fn card<'a>(&'a self, robot: &'a Robot, body: String, _: CardCall) -> SendFuture<'a> {
        self.send(robot, body)
    }

    /// A 1:1 message goes through the script like any message.
    fn one_to_one<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a> {
        self.send(robot, body)
    }
}

/// DingTalk's answers, for scripts.
pub fn server_error() -> Result<(), SendError> {
    Err(SendError::Http(500))
}

/// DingTalk's "send too fast" answer.
pub fn too_fast() -> Result<(), SendError> {
    Err(SendError::Rejected {
        errcode: 130101,
        errmsg: "send too fast, exceed 20 times per minute".to_owned(),
    })
}

/// DingTalk's "message too long" answer.
pub fn too_long() -> Result<(), SendError> {
    Err(SendError::Rejected {
        errcode: 460101,
        errmsg: "message too long, exceed 20000 bytes".to_owned(),
    })
}

/// The service's delivery parts with a scripted DingTalk and a queue over `store`.
pub struct Harness {
    /// Queue, gates, workers, metrics.
    pub delivery: Arc<Delivery>,
    /// Duplicate suppression, for passthrough.
    pub dedup: Arc<Dedup>,
    /// The scripted DingTalk.
    pub dingtalk: Arc<Scripted>,
}

impl Harness {
    /// `yaml` as the configuration, over an in-memory queue.
    pub fn new(yaml: &str, dingtalk: Arc<Scripted>) -> Harness {
        Harness::with_store(yaml, dingtalk, Arc::new(MemoryStore::default()))
    }

    /// `yaml` as the configuration, over a queue in `store`.
    pub fn with_store(yaml: &str, dingtalk: Arc<Scripted>, store: Arc<dyn Store>) -> Harness {
        let metrics = Arc::new(Metrics::new());
        let config = Arc::new(ConfigHandle::new(runtime(load_config(yaml), &dingtalk)));
        let queue = Arc::new(Queue::new(store).unwrap());
        Harness {
            dedup: Arc::new(Dedup::new(metrics.duplicates_suppressed.clone())),
            delivery: Arc::new(Delivery::new(config, queue, Arc::default(), metrics)),
            dingtalk,
        }
    }

    /// Puts `yaml` in force, as a reload does.
    pub fn reload(&self, yaml: &str) {
        self.delivery
            .config
            .replace(runtime(load_config(yaml), &self.dingtalk));
    }

    /// Queues one message per name for `robot`, each an alert group of one alert of that
    /// name, and wakes the robot's worker.
    pub async fn queue(&self, robot: &str, names: &[String]) {
        let envelopes = names
            .iter()
            .map(|name| envelope(self.delivery.queue.next_id(), robot, name))
            .collect();
        self.delivery
            .queue
            .push(envelopes, usize::MAX)
            .await
            .unwrap();
        self.delivery.wake(robot);
    }

    /// Waits (in paused time) until `done` holds, checking every 10 ms for at most
    /// `within`; panics otherwise.
    pub async fn until(&self, what: &str, within: Duration, done: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "not within {within:?}: {what}; sent: {:#?}",
                self.dingtalk
                    .sent()
                    .iter()
                    .map(|s| (s.at, s.title().to_owned(), s.answer.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until nothing is pending for `robot`.
    pub async fn drained(&self, robot: &str, within: Duration) {
        self.until(&format!("{robot}'s queue is empty"), within, |h| {
            h.delivery.queue.depth(robot) == 0
        })
        .await;
    }
}

fn runtime(config: Config, dingtalk: &Arc<Scripted>) -> Snapshot {
    Snapshot {
        config,
        sender: dingtalk.clone(),
        // Never called: every send goes through `sender`.
        dingtalk: alertmanager_dingtalk::dingtalk::Client::new(
            Duration::from_secs(1),
            &alertmanager_dingtalk::dingtalk::Proxy::from_env(),
        )
        .expect("a client"),
        cluster: None,
        alertmanager: None,
        calls: alertmanager_dingtalk::metrics::quota::Calls::new(
            &alertmanager_dingtalk::metrics::Metrics::new(),
            Arc::default(),
            None,
            None,
        ),
    }
}

/// A message of one alert named `name`, as rendering would make it, queued for `robot`.
pub fn envelope(id: u64, robot: &str, name: &str) -> Envelope {
    let title = format!("[FIRING:1] {name} · HertzBeat");
    Envelope {
        id,
        robot: robot.to_owned(),
        strategy: "default".to_owned(),
        message: Message {
            title: title.clone(),
            text: format!("### {title}\n\n- {name}\n\nHertzBeat"),
            mention: Mention::default(),
            buttons: Vec::new(),
            msgtype: None,
        },
        summary: GroupSummary {
            status: Status::Firing,
            title,
            alerts: vec![name.to_owned()],
            external_url: "http://alertmanager.example:9093".to_owned(),
            group_key: String::new(),
        },
        accepted_at: Timestamp::now(),
    }
}

/// `count` alert names, `Alert000`, `Alert001`, …
pub fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("Alert{i:03}")).collect()
}

/// A config of robot `ops` (and any `more` YAML under `robots:`), with `delivery` keys.
pub fn config(ops: &str, more: &str, delivery: &str) -> String {
    format!(
        "dingtalk: {{ api_url: \"http://127.0.0.1:9/robot/send\" }}\n\
         delivery:\n  dedup_window: 60s\n{delivery}\n\
         robots:\n  ops: {{ access_token: ops-token{ops} }}\n{more}\n\
         strategies:\n  - name: default\n    robots: [ops]\n"
    )
}

/// A memory store with faults: its removals and burials fail while `failing` is set, as
/// on a full disk, and a hook given to [`during_next_read`](Self::during_next_read) runs
/// inside the next read of the oldest messages, which then finds nothing readable.
#[derive(Default)]
pub struct FaultyStore {
    /// Where the messages are.
    pub inner: MemoryStore,
    /// Whether removals and burials fail now.
    pub failing: AtomicBool,
    /// What `Store::generation` says: raise it to act as a store opened again.
    pub generation: std::sync::atomic::AtomicU64,
    next_read: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FaultyStore {
    /// Runs `meanwhile` during the next read of the oldest messages, and makes that read
    /// find nothing it can decode.
    pub fn during_next_read(&self, meanwhile: impl FnOnce() + Send + 'static) {
        *self.next_read.lock().unwrap() = Some(Box::new(meanwhile));
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(QueueError::Store("No space left on device".to_owned()));
        }
        Ok(())
    }
}

impl Store for FaultyStore {
    fn append(&self, messages: &[Envelope]) -> Result<(), QueueError> {
        self.inner.append(messages)
    }
    fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        let meanwhile = self.next_read.lock().unwrap().take();
        match meanwhile {
            Some(meanwhile) => {
                meanwhile();
                Ok(Vec::new())
            }
            None => self.inner.oldest(robot, limit),
        }
    }
    fn remove(&self, robot: &str, ids: &[u64]) -> Result<usize, QueueError> {
        self.check()?;
        self.inner.remove(robot, ids)
    }
    fn bury(
        &self,
        messages: &[Envelope],
        reason: &str,
        at: Timestamp,
    ) -> Result<usize, QueueError> {
        self.check()?;
        self.inner.bury(messages, reason, at)
    }
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.inner.dead_letters()
    }
    fn revive_all(&self) -> Result<Vec<Envelope>, QueueError> {
        self.inner.revive_all()
    }
    fn scan(&self) -> Result<Inventory, QueueError> {
        self.inner.scan()
    }
    fn sync(&self) -> Result<(), QueueError> {
        Ok(())
    }
    fn syncs_to_disk(&self) -> bool {
        false
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}
