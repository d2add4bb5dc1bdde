//! Validation of one entry of `strategies:`: its matchers, the robots it names, its
//! template and its `active_time` window.

use std::collections::BTreeSet;

use jiff::tz::TimeZone;

use super::Path;
use super::checker::Checker;
use super::raw::{RawActiveTime, RawStrategy};
use super::values::{all_weekdays, time_of_day, time_zone, weekdays};
use crate::dingtalk::Mention;
use crate::render::{DEFAULT_TEMPLATE, Renderer};
use crate::route::matcher::Matcher;
use crate::route::{ActiveTime, LabelMentions, Strategy};

impl Checker {
    pub(super) fn strategy(
        &mut self,
        at: &Path,
        raw: RawStrategy,
        robots: &BTreeSet<String>,
        renderer: Option<&Renderer>,
        timezone: TimeZone,
    ) -> Option<Strategy> {
        let mut ok = true;
        if raw.name.trim().is_empty() {
            self.error(at, "strategy needs a `name`");
            ok = false;
        }
        let mut matchers = Vec::new();
        for (i, text) in raw.matchers.iter().enumerate() {
            let parsed = Matcher::parse(text).map_err(|e| e.to_string());
            match self.check(&at.key("matchers").index(i), parsed) {
                Some(m) => matchers.push(m),
                None => ok = false,
            }
        }
        if raw.robots.is_empty() {
            self.error(at, format!("strategy `{}` names no robots", raw.name));
            ok = false;
        }
        for (i, robot) in raw.robots.iter().enumerate() {
            if !robots.contains(robot) {
                let known: Vec<&str> = robots.iter().map(String::as_str).collect();
                self.error(
                    &at.key("robots").index(i),
                    format!(
                        "strategy `{}` names robot `{robot}`, which is not defined (robots: {})",
                        raw.name,
                        known.join(", ")
                    ),
                );
                ok = false;
            }
        }
        let template = raw.template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
        if renderer.is_some_and(|r| !r.has_template(&template)) {
            self.error(
                &at.key("template"),
                format!("template `{template}` is not defined"),
            );
            ok = false;
        }
        let active_time = match raw.active_time {
            Some(window) => {
                let parsed = self.active_time(&at.key("active_time"), window, timezone);
                ok &= parsed.is_some();
                parsed
            }
            None => None,
        };
        ok.then(|| Strategy {
            name: raw.name,
            matchers,
            robots: raw.robots,
            send_resolved: raw.send_resolved.unwrap_or(true),
            mention: Mention {
                all: raw.mention.all,
                mobiles: raw.mention.mobiles,
                user_ids: raw.mention.user_ids,
            },
            mention_from_labels: LabelMentions {
                mobiles: raw.mention.mobiles_from_label,
                user_ids: raw.mention.user_ids_from_label,
            },
            mention_oncall: Vec::new(),
            escalate: Vec::new(),
            active_time,
            continue_matching: raw.continue_matching,
            template,
            msgtype: raw.msgtype,
        })
    }

    pub(super) fn active_time(
        &mut self,
        at: &Path,
        raw: RawActiveTime,
        zone: TimeZone,
    ) -> Option<ActiveTime> {
        let mut days = Vec::new();
        let mut days_ok = true;
        for (i, text) in raw.days.iter().enumerate() {
            match self.check(&at.key("days").index(i), weekdays(text)) {
                Some(parsed) => days.extend(parsed),
                None => days_ok = false,
            }
        }
        if days.is_empty() {
            days = all_weekdays();
        }
        let start = self.check(
            &at.key("start"),
            time_of_day(raw.start.as_deref().unwrap_or("00:00")),
        );
        let end = self.check(
            &at.key("end"),
            time_of_day(raw.end.as_deref().unwrap_or("24:00")),
        );
        let timezone = match raw.timezone.as_deref() {
            Some(name) => self.check(&at.key("timezone"), time_zone(name)),
            None => Some(zone),
        };
        let (start, end, timezone) = (start?, end?, timezone?);
        if !days_ok {
            return None;
        }
        if start == end {
            self.error(
                at,
                "active_time start and end are equal; leave active_time out to always send",
            );
            return None;
        }
        Some(ActiveTime {
            days,
            start,
            end,
            timezone,
        })
    }
}
