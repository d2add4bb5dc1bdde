//! From a notification to the messages to send: route every alert, render one message
//! per (robot, strategy), with the links that act on the group when `actions:` is set.
//! Pure: the same plan serves the webhook handler and `alertmanager-dingtalk render`.

use std::sync::Arc;

use jiff::Timestamp;

use crate::act::link;
use crate::config::Config;
use crate::dingtalk::Message;
use crate::ingest::{Notification, Status};
use crate::oncall;
use crate::queue::GroupSummary;
use crate::render::{ActionLink, Actions, Extras, Handling};
use crate::route::{self, Routes};

/// Strategy name used for messages sent through `/dingtalk/{robot}/send`.
pub const DIRECT: &str = "direct";

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMessage {
    /// Robot name.
    pub robot: String,
    /// Strategy name, or [`DIRECT`].
    pub strategy: String,
    /// The rendered message.
    pub message: Message,
    /// The group in brief, for digests.
    pub summary: GroupSummary,
}

/// Routing result and messages for one notification.
#[derive(Debug)]
pub struct Plan {
    /// How each alert was routed.
    pub routes: Routes,
    /// The messages, ordered by strategy then robot.
    pub messages: Vec<PlannedMessage>,
}

/// Routes and renders `notification` with `config` at time `now`.
pub fn plan(config: &Config, notification: &Notification, now: Timestamp) -> Plan {
    plan_handled(config, notification, Handling::default(), now)
}

/// Like [`plan`], for a group whose messages say how people `handling` it.
pub fn plan_handled(
    config: &Config,
    notification: &Notification,
    handling: Handling,
    now: Timestamp,
) -> Plan {
    let actions = actions(config, notification, handling, now);
    let routes = route::route(&config.strategies, &notification.alerts, now);
    let schedules = Arc::new(oncall::on_call_views(&config.oncall, now));
    let messages = routes
        .messages
        .iter()
        .filter_map(|((strategy_index, robot_name), alerts)| {
            let strategy = config.strategies.get(*strategy_index)?;
            let robot = config.robots.get(robot_name)?;
            let named = alerts.iter().filter_map(|&i| notification.alerts.get(i));
            let schedules_named = robot.oncall.iter().chain(&strategy.mention_oncall);
            let on_call = oncall::mention(&config.oncall, schedules_named, now);
            let extras = Extras {
                mention: strategy
                    .mention
                    .merged(&strategy.mention_from_labels.of(named)),
                on_call,
                schedules: schedules.clone(),
                msgtype: strategy.msgtype,
                actions: actions.clone(),
            };
            let message = config.renderer.render(
                &strategy.template,
                notification,
                alerts,
                robot,
                &extras,
                now,
            );
            Some(PlannedMessage {
                robot: robot_name.clone(),
                strategy: strategy.name.clone(),
                summary: summarize(notification, alerts, &message),
                message,
            })
        })
        .collect();
    Plan { routes, messages }
}

/// Renders every alert of `notification` for `robot` with the default template at `now`,
/// with no routing, and the links that act on the group as [`plan_acknowledged`] has
/// them; `None` if the robot is not configured.
pub fn plan_direct(
    config: &Config,
    notification: &Notification,
    robot: &str,
    handling: Handling,
    now: Timestamp,
) -> Option<PlannedMessage> {
    let robot_config = config.robots.get(robot)?;
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    let extras = Extras {
        actions: actions(config, notification, handling, now),
        on_call: oncall::mention(&config.oncall, &robot_config.oncall, now),
        schedules: Arc::new(oncall::on_call_views(&config.oncall, now)),
        ..Extras::default()
    };
    let message = config.renderer.render(
        crate::render::DEFAULT_TEMPLATE,
        notification,
        &all,
        robot_config,
        &extras,
        now,
    );
    Some(PlannedMessage {
        robot: robot.to_owned(),
        strategy: DIRECT.to_owned(),
        summary: summarize(notification, &all, &message),
        message,
    })
}

/// What the messages of `notification` offer people to do, with `actions:` in `config`:
/// its links (minted at `now`); and who acknowledged the group (by a link or a command).
fn actions(
    config: &Config,
    notification: &Notification,
    handling: Handling,
    now: Timestamp,
) -> Option<Arc<Actions>> {
    if config.actions.is_none() && handling == Handling::default() {
        return None;
    }
    let links = config
        .actions
        .iter()
        .flat_map(|actions| link::links(actions, notification, now))
        .map(|(action, url)| ActionLink {
            label: action.label(),
            label_zh: action.label_zh(),
            url,
        })
        .collect();
    Some(Arc::new(Actions { links, handling }))
}

fn summarize(notification: &Notification, alerts: &[usize], message: &Message) -> GroupSummary {
    let alerts: Vec<_> = alerts
        .iter()
        .filter_map(|&i| notification.alerts.get(i))
        .collect();
    let firing = alerts.iter().any(|a| a.status == Status::Firing);
    GroupSummary {
        status: if firing {
            Status::Firing
        } else {
            Status::Resolved
        },
        title: message.title.clone(),
        alerts: alerts.iter().map(|a| a.name().to_owned()).collect(),
        external_url: notification.external_url.clone(),
        group_key: notification.group_key.clone(),
    }
}
