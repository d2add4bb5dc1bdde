//! Validation of one entry of `robots:`: which kind of robot its keys make it (a webhook
//! robot, or a robot of an internal application), that kind's credentials, and the
//! keywords and rate limit both kinds have.

use std::str::FromStr;

use url::Url;

use super::Path;
use super::checker::Checker;
use super::raw::RawRobot;
use super::values::split_webhook;
use crate::dingtalk::RateLimit;
use crate::dingtalk::{
    App, AppRobot, Commands, Endpoint, Mention, MsgType, Robot, Secret, Webhook,
};

/// Why `msgtype: card` is refused for a webhook robot.
pub(super) const CARDS_NEED_APPS: &str = "`msgtype: card` needs a robot of an application (DingTalk's interactive cards are sent through the OpenAPI); use `actionCard` for a webhook robot";

/// The `dingtalk:` addresses robots are sent to, where they are valid.
#[derive(Clone, Copy)]
pub(super) struct RobotUrls<'a> {
    /// `dingtalk.api_url`, for webhook robots given by token.
    pub api_url: Option<&'a Url>,
    /// `dingtalk.openapi_url`, for application robots.
    pub openapi_url: Option<&'a Url>,
}

impl Checker {
    pub(super) fn robot(
        &mut self,
        at: &Path,
        name: &str,
        raw: RawRobot,
        default_keywords: &[String],
        urls: RobotUrls<'_>,
    ) -> Option<Robot> {
        let webhook_keys = [
            ("webhook", raw.webhook.is_some()),
            ("access_token", raw.access_token.is_some()),
            ("access_token_file", raw.access_token_file.is_some()),
            ("secret", raw.secret.is_some()),
            ("secret_file", raw.secret_file.is_some()),
        ];
        let app_keys = [
            ("app_key", raw.app_key.is_some()),
            ("app_secret", raw.app_secret.is_some()),
            ("app_secret_file", raw.app_secret_file.is_some()),
            ("robot_code", raw.robot_code.is_some()),
            ("open_conversation_id", raw.open_conversation_id.is_some()),
        ];
        let first = |keys: &[(&'static str, bool)]| {
            keys.iter().find(|(_, given)| *given).map(|(key, _)| *key)
        };
        let endpoint = match (first(&webhook_keys), first(&app_keys)) {
            (Some(webhook_key), Some(app_key)) => {
                self.error(
                    at,
                    format!(
                        "robot `{name}` has `{webhook_key}`, a webhook robot's key, and \
                         `{app_key}`, an application robot's: a robot is one or the other"
                    ),
                );
                return None;
            }
            (_, Some(_)) => Endpoint::App(self.app_robot(at, name, &raw, urls.openapi_url)?),
            _ => Endpoint::Webhook(self.webhook(at, name, &raw, urls.api_url)?),
        };

        let commands = self.commands(at, name, &raw, &endpoint);
        if raw.msgtype == MsgType::Card && matches!(endpoint, Endpoint::Webhook(_)) {
            self.error(
                &at.key("msgtype"),
                format!("robot `{name}` is a webhook robot: {CARDS_NEED_APPS}"),
            );
        }
        let rate_limit = match &raw.rate_limit {
            Some(text) => self.check(&at.key("rate_limit"), RateLimit::from_str(text))?,
            None => RateLimit::DINGTALK,
        };
        let keywords = match raw.keywords {
            Some(own) => {
                self.check_keywords(&at.key("keywords"), &own);
                own
            }
            None => default_keywords.to_vec(),
        };
        Some(Robot {
            name: name.to_owned(),
            endpoint,
            keywords,
            mention: Mention {
                all: raw.mention.all,
                mobiles: raw.mention.mobiles,
                user_ids: raw.mention.user_ids,
            },
            oncall: raw.mention.oncall,
            rate_limit,
            msgtype: raw.msgtype,
            commands,
        })
    }

    /// `commands` and `command_users`: only for a robot of an application, which receives
    /// messages through Stream mode.
    fn commands(
        &mut self,
        at: &Path,
        name: &str,
        raw: &RawRobot,
        endpoint: &Endpoint,
    ) -> Option<Commands> {
        if raw.command_users.is_some() && !raw.commands {
            self.error(
                &at.key("command_users"),
                format!("robot `{name}` has `command_users` but not `commands: true`"),
            );
        }
        if !raw.commands {
            return None;
        }
        if matches!(endpoint, Endpoint::Webhook(_)) {
            self.error(
                &at.key("commands"),
                format!(
                    "robot `{name}` is a webhook robot, which receives nothing: commands need a \
                     robot of an application (`app_key`, `app_secret`, `open_conversation_id`) \
                     in Stream mode"
                ),
            );
            return None;
        }
        let users: Vec<String> = raw
            .command_users
            .iter()
            .flatten()
            .map(|user| user.trim().to_owned())
            .collect();
        if let Some(index) = users.iter().position(String::is_empty) {
            self.error(
                &at.key("command_users").index(index),
                "an empty staff id in `command_users`",
            );
        }
        if raw.command_users.as_ref().is_some_and(Vec::is_empty) {
            self.error(
                &at.key("command_users"),
                "`command_users` is empty, which would let nobody command; leave it out to let every member of the group",
            );
        }
        Some(Commands { users })
    }

    /// A webhook robot: exactly one way of giving the token, and the optional secret.
    fn webhook(
        &mut self,
        at: &Path,
        name: &str,
        raw: &RawRobot,
        default_api_url: Option<&Url>,
    ) -> Option<Webhook> {
        let given = [
            raw.webhook.is_some(),
            raw.access_token.is_some(),
            raw.access_token_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                at,
                format!(
                    "robot `{name}` needs exactly one of `webhook`, `access_token` or \
                     `access_token_file` (or, for a robot of an application, `app_key`, \
                     `app_secret` and `open_conversation_id`)"
                ),
            );
            return None;
        }
        let (api_url, access_token) = if let Some(webhook) = &raw.webhook {
            self.check(&at.key("webhook"), split_webhook(webhook))?
        } else if let Some(token) = &raw.access_token {
            (default_api_url?.clone(), token.trim().to_owned())
        } else {
            let file = raw.access_token_file.as_deref().unwrap_or_default();
            let token = self.read_file(&at.key("access_token_file"), file)?;
            (default_api_url?.clone(), token.trim().to_owned())
        };
        if access_token.is_empty() {
            self.error(at, format!("robot `{name}` has an empty access token"));
        }
        let owner = format!("robot `{name}`");
        let secret = self
            .inline_or_file(
                at,
                &owner,
                "secret",
                (raw.secret.clone(), raw.secret_file.clone()),
            )
            .map(|(_, secret)| secret)
            .filter(|s| !s.is_empty());
        Some(Webhook {
            api_url,
            access_token: Secret::new(access_token),
            secret: secret.map(Secret::new),
        })
    }

    /// A robot of an application: its key and secret, the robot's code (the key unless
    /// given) and the group.
    fn app_robot(
        &mut self,
        at: &Path,
        name: &str,
        raw: &RawRobot,
        openapi_url: Option<&Url>,
    ) -> Option<AppRobot> {
        let owner = format!("robot `{name}`");
        let app_key = self.required(at, &owner, "app_key", raw.app_key.as_deref());
        if raw.app_secret.is_none() && raw.app_secret_file.is_none() {
            self.error(
                at,
                format!("{owner} needs `app_secret` or `app_secret_file`"),
            );
        }
        let app_secret = self
            .inline_or_file(
                at,
                &owner,
                "app_secret",
                (raw.app_secret.clone(), raw.app_secret_file.clone()),
            )
            .and_then(|(secret_at, secret)| {
                if secret.is_empty() {
                    self.error(&secret_at, format!("{owner} has an empty `app_secret`"));
                    return None;
                }
                Some(secret)
            });
        let open_conversation_id = self.required(
            at,
            &owner,
            "open_conversation_id",
            raw.open_conversation_id.as_deref(),
        );
        let robot_code = match raw.robot_code.as_deref() {
            Some(code) => self.required(at, &owner, "robot_code", Some(code)),
            None => app_key.clone(),
        };
        Some(AppRobot {
            app: App {
                openapi_url: openapi_url?.clone(),
                app_key: app_key?,
                app_secret: Secret::new(app_secret?),
            },
            robot_code: robot_code?,
            open_conversation_id: open_conversation_id?,
        })
    }

    /// The trimmed value of `key`, which must be given and not empty.
    fn required(
        &mut self,
        at: &Path,
        owner: &str,
        key: &str,
        value: Option<&str>,
    ) -> Option<String> {
        match value.map(str::trim) {
            Some("") => {
                self.error(&at.key(key), format!("{owner} has an empty `{key}`"));
                None
            }
            Some(value) => Some(value.to_owned()),
            None => {
                self.error(at, format!("{owner} needs `{key}`"));
                None
            }
        }
    }
}
