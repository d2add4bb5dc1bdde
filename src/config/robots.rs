//! Validation of one entry of `robots:`: exactly one way of giving the token, the
//! optional signing secret, keywords and rate limit.

use std::str::FromStr;

use url::Url;

use super::Path;
use super::check::Checker;
use super::raw::RawRobot;
use super::values::split_webhook;
use crate::dingtalk::{Robot, Secret};
use crate::rate_window::RateLimit;

impl Checker {
    pub(super) fn robot(
        &mut self,
        at: &Path,
        name: &str,
        raw: RawRobot,
        default_keywords: &[String],
        default_api_url: Option<&Url>,
    ) -> Option<Robot> {
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
                     `access_token_file`"
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
            .inline_or_file(at, &owner, "secret", (raw.secret, raw.secret_file))
            .map(|(_, secret)| secret)
            .filter(|s| !s.is_empty());

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
            api_url,
            access_token: Secret::new(access_token),
            secret: secret.map(Secret::new),
            keywords,
            mention: raw.mention,
            rate_limit,
            msgtype: raw.msgtype,
        })
    }
}
