//! What a notification would do, without sending anything: how each alert was routed and
//! every message with the exact body that would be POSTed to which robot (token
//! redacted). One code path for `alertmanager-dingtalk render` and the status page's
//! preview, so both show what the webhook would send.

use jiff::Timestamp;
use serde::Serialize;

use crate::accept::plan;
use crate::config::Config;
use crate::dingtalk::{Message, MsgType};
use crate::ingest::Notification;

/// The routing and messages of one notification.
#[derive(Debug)]
pub struct Preview {
    /// Each alert, in payload order.
    pub alerts: Vec<RoutedAlert>,
    /// Each message, ordered by strategy then robot.
    pub messages: Vec<PreviewMessage>,
}

/// How one alert was routed.
#[derive(Debug, Serialize)]
pub struct RoutedAlert {
    /// `alertname`.
    pub name: String,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// The strategies that took it.
    pub strategies: Vec<String>,
    /// The strategies that matched it but held it back, each with why.
    pub held: Vec<(String, &'static str)>,
}

/// One message that would be sent.
#[derive(Debug)]
pub struct PreviewMessage {
    /// Robot name.
    pub robot: String,
    /// Strategy name.
    pub strategy: String,
    /// The robot's address with its token replaced by `***`.
    pub url: String,
    /// Whether `timestamp` and `sign` are added at send time.
    pub signed: bool,
    /// Which application, robot and group, for a robot of an application.
    pub app: Option<String>,
    /// The type it is sent as: the strategy's, else the robot's.
    pub msgtype: MsgType,
    /// How many alerts it names.
    pub alerts: usize,
    /// The message as rendered.
    pub message: Message,
    /// The JSON body, pretty-printed.
    pub body: String,
    /// Bytes of the body as sent (compact).
    pub bytes: usize,
}

/// Routes and renders `notification` with `config` at `now`.
pub fn preview(config: &Config, notification: &Notification, now: Timestamp) -> Preview {
    let plan = plan::plan(config, notification, now);
    let mut alerts: Vec<RoutedAlert> = notification
        .alerts
        .iter()
        .zip(&plan.routes.matched)
        .map(|(alert, strategies)| RoutedAlert {
            name: alert.name().to_owned(),
            status: alert.status.as_str(),
            strategies: strategies.clone(),
            held: Vec::new(),
        })
        .collect();
    for &(alert, strategy, why) in &plan.routes.held {
        let strategy = config.strategies.get(strategy);
        if let (Some(routed), Some(strategy)) = (alerts.get_mut(alert), strategy) {
            routed.held.push((strategy.name.clone(), why.as_str()));
        }
    }
    let messages = plan
        .messages
        .into_iter()
        .filter_map(|planned| {
            let robot = config.robots.get(&planned.robot)?;
            let body = robot
                .body(&planned.message)
                .unwrap_or_else(|e| e.to_string());
            let pretty = serde_json::from_str::<serde_json::Value>(&body)
                .and_then(|json| serde_json::to_string_pretty(&json))
                .unwrap_or_else(|_| body.clone());
            Some(PreviewMessage {
                url: robot.redacted_url(),
                signed: robot.is_signed(),
                app: robot.app_note(),
                msgtype: planned.message.msgtype.unwrap_or(robot.msgtype),
                alerts: planned.summary.alerts.len(),
                bytes: body.len(),
                body: pretty,
                message: planned.message,
                strategy: planned.strategy,
                robot: planned.robot,
            })
        })
        .collect();
    Preview { alerts, messages }
}
