//! Commands from DingTalk, the way back for robots of an application: one Stream
//! connection ([`dingtalk::stream`]) per application with a robot that takes commands,
//! kept in line with the configuration on every reload, and each robot message
//! authorised, done ([`Act::command`]) and answered through its `sessionWebhook`.
//!
//! Who may command: a message counts only when it was written in the group
//! (`openConversationId`) of a robot of that application with `commands: true`, by a
//! member of the organisation (one with a staff id; guests have none) listed in the
//! robot's `command_users` (any member when it has none). Messages
//! from other groups are logged, counted as refused, and get no reply. Replies go only to
//! a session webhook under `dingtalk.api_url`'s origin: a message names where its reply
//! goes, and the bridge posts nowhere else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use tokio::task::JoinHandle;
use url::Url;

use crate::accept::refresh;
use crate::act::Act;
use crate::act::commands::{Commander, Reply};
use crate::config::DeliveryMode;
use crate::deliver::Delivery;
use crate::dingtalk::stream::{BotMessage, StreamState};
use crate::dingtalk::{self, App, Endpoint, markdown};
use crate::ingest::Notification;
use crate::metrics::Metrics;
use crate::snapshot::{ConfigHandle, Snapshot};

/// The Stream connections running, by application.
pub struct Streams {
    running: Mutex<BTreeMap<String, Running>>,
    config: Arc<ConfigHandle>,
    act: Arc<Act>,
    /// Where cards drawn again after a command go.
    delivery: Arc<Delivery>,
    mode: DeliveryMode,
    metrics: Arc<Metrics>,
}

struct Running {
    app: App,
    task: JoinHandle<()>,
    state: Arc<Mutex<StreamState>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Streams {
    /// No connection yet: [`Streams::apply`] opens those the configuration asks for.
    /// Commands act through `act`; the cards they change go through `delivery` in `mode`.
    pub fn new(
        config: Arc<ConfigHandle>,
        act: Arc<Act>,
        (delivery, mode): (Arc<Delivery>, DeliveryMode),
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Streams {
            running: Mutex::default(),
            config,
            act,
            delivery,
            mode,
            metrics,
        })
    }

    /// Opens a connection for each application of the configuration in force whose robots
    /// take commands, and closes those of applications no longer there (or whose address
    /// or credentials changed). A connection that stays is not touched.
    pub fn apply(self: &Arc<Self>) {
        let snapshot = self.config.snapshot();
        let mut wanted: BTreeMap<String, App> = BTreeMap::new();
        for robot in snapshot.config.robots.values() {
            if let (Endpoint::App(app_robot), Some(_)) = (&robot.endpoint, &robot.commands) {
                wanted.insert(app_robot.app.app_key.clone(), app_robot.app.clone());
            }
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|key, running| {
            let stays = wanted.get(key) == Some(&running.app);
            if !stays {
                tracing::info!(message = "Closing the Stream connection.", app_key = %key);
                self.metrics.forget_stream(key);
            }
            stays
        });
        for (key, app) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let state = Arc::new(Mutex::new(StreamState::Connecting));
            let task = tokio::spawn(self.clone().connection(app.clone(), state.clone()));
            running.insert(key, Running { app, task, state });
        }
    }

    /// Each connection's application and state, by AppKey.
    pub fn states(&self) -> Vec<(String, StreamState)> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .iter()
            .map(|(key, r)| {
                let state = r.state.lock().unwrap_or_else(PoisonError::into_inner);
                (key.clone(), state.clone())
            })
            .collect()
    }

    /// The connection of `app`, for good.
    async fn connection(self: Arc<Self>, app: App, state: Arc<Mutex<StreamState>>) {
        let gauge = self.metrics.stream_connected(&app.app_key);
        let client = || self.config.snapshot().dingtalk.clone();
        let report = |new: StreamState| {
            gauge.set(i64::from(matches!(new, StreamState::Connected(_))));
            *state.lock().unwrap_or_else(PoisonError::into_inner) = new;
        };
        let on_message = |message: BotMessage| {
            let streams = self.clone();
            let app_key = app.app_key.clone();
            tokio::spawn(async move { streams.handle(&app_key, message).await });
        };
        dingtalk::stream::run(client, &app, on_message, report).await;
    }

    /// Authorises, does and answers one robot message to application `app_key`.
    async fn handle(&self, app_key: &str, message: BotMessage) {
        let snapshot = self.config.snapshot();
        let robot = snapshot.config.robots.values().find(|robot| {
            matches!(&robot.endpoint, Endpoint::App(r)
                if r.app.app_key == app_key && r.open_conversation_id == message.conversation_id)
                && robot.commands.is_some()
        });
        let (Some(robot), Some(commands), Some(alertmanager)) = (
            robot,
            robot.and_then(|r| r.commands.as_ref()),
            snapshot.alertmanager.as_deref(),
        ) else {
            self.metrics.action("unknown", "refused");
            tracing::warn!(
                message = "A robot message from a group no robot takes commands in; ignored.",
                app_key,
                conversation = %message.conversation_id,
                sender = %message.sender_staff_id,
            );
            return;
        };
        let by = Commander {
            nick: message.sender_nick.clone(),
            staff_id: message.sender_staff_id.clone(),
        };
        let reply = self
            .act
            .command(
                &message.text.content,
                &message.msg_id,
                // Guests from outside the organisation have no staff id.
                (
                    &by,
                    !by.staff_id.is_empty() && commands.allows(&by.staff_id),
                ),
                alertmanager,
                snapshot.cluster.as_deref(),
                Timestamp::now(),
            )
            .await;
        let Some(reply) = reply else {
            return;
        };
        let keyword = robot.keywords.first().map_or("", String::as_str);
        reply_to(&snapshot, &message, &by, keyword, &reply).await;
        if let Some(changed) = reply.changed {
            let matches = |n: &Notification| changed.matches(n);
            let (delivery, act) = (&self.delivery, &self.act);
            refresh::cards(
                delivery,
                act,
                &snapshot,
                self.mode,
                matches,
                changed.silenced(),
            )
            .await;
        }
    }
}

/// Posts `reply` to `message`'s session webhook, mentioning its writer; a failure is
/// logged.
async fn reply_to(
    snapshot: &Snapshot,
    message: &BotMessage,
    by: &Commander,
    keyword: &str,
    reply: &Reply,
) {
    let webhook = match Url::parse(&message.session_webhook) {
        Ok(url) if url.origin() == snapshot.config.api_url.origin() => url,
        _ => {
            tracing::warn!(
                message = "A robot message's sessionWebhook is not under dingtalk.api_url; no reply sent.",
                msg_id = %message.msg_id,
            );
            return;
        }
    };
    let mention = match by.staff_id.as_str() {
        "" => String::new(),
        staff_id => format!("@{} · ", markdown::escape(staff_id)),
    };
    let text = format!("{}\n\n{mention}{}", reply.text, markdown::escape(keyword));
    let title = format!("{keyword} alertmanager-dingtalk");
    let body = dingtalk::stream::reply_body(&title, &text, &by.staff_id);
    if let Err(error) = snapshot.dingtalk.reply(&webhook, body).await {
        tracing::error!(
            message = "Cannot reply to a command.",
            msg_id = %message.msg_id,
            %error,
        );
    }
}
