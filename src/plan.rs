//! From a notification to the messages to send: route every alert, render one message
//! per (robot, strategy), encode it for DingTalk. Pure: the same plan serves the webhook
//! handler and `alertmanager-dingtalk render`.

use jiff::Timestamp;

use crate::config::Config;
use crate::dingtalk::{self, Mention};
use crate::payload::Notification;
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
    /// How many alerts of the notification it carries.
    pub alerts: usize,
    /// The JSON body to POST.
    pub body: String,
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
    let routes = route::route(&config.strategies, &notification.alerts, now);
    let messages = routes
        .messages
        .iter()
        .filter_map(|((strategy_index, robot_name), alerts)| {
            let strategy = config.strategies.get(*strategy_index)?;
            let robot = config.robots.get(robot_name)?;
            let message = config.renderer.render(
                &strategy.template,
                notification,
                alerts,
                robot,
                &strategy.mention,
            );
            Some(PlannedMessage {
                robot: robot_name.clone(),
                strategy: strategy.name.clone(),
                alerts: alerts.len(),
                body: dingtalk::encode(robot.msgtype, &message),
            })
        })
        .collect();
    Plan { routes, messages }
}

/// Renders every alert of `notification` for `robot` with the default template, with no
/// routing; `None` if the robot is not configured.
pub fn plan_direct(
    config: &Config,
    notification: &Notification,
    robot: &str,
) -> Option<PlannedMessage> {
    let robot_config = config.robots.get(robot)?;
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    let message = config.renderer.render(
        crate::render::DEFAULT_TEMPLATE,
        notification,
        &all,
        robot_config,
        &Mention::default(),
    );
    Some(PlannedMessage {
        robot: robot.to_owned(),
        strategy: DIRECT.to_owned(),
        alerts: all.len(),
        body: dingtalk::encode(robot_config.msgtype, &message),
    })
}
