//! Validation of `oncall:` (the schedules) and of a strategy's `escalate:` steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::Path;
use super::checker::Checker;
use super::raw::{RawMember, RawOverride, RawRotation, RawSchedule, RawStep};
use super::values::{duration, time_of_day, time_zone, weekdays};
use crate::dingtalk::Robot;
use crate::oncall::{Member, Override, Schedule, Schedules, Step, Via};

/// A week on the wall clock.
const WEEK: SignedDuration = SignedDuration::from_hours(7 * 24);

impl Checker {
    /// Every schedule of `oncall:`, those with errors left out (and reported).
    pub(super) fn schedules(
        &mut self,
        at: &Path,
        raw: BTreeMap<String, RawSchedule>,
        zone: &TimeZone,
    ) -> Schedules {
        let mut schedules = Schedules::new();
        for (name, raw) in raw {
            if let Some(schedule) = self.schedule(&at.key(&name), &name, raw, zone) {
                schedules.insert(name, schedule);
            }
        }
        schedules
    }

    fn schedule(
        &mut self,
        at: &Path,
        name: &str,
        raw: RawSchedule,
        zone: &TimeZone,
    ) -> Option<Schedule> {
        let zone = match raw.timezone.as_deref() {
            Some(text) => self.check(&at.key("timezone"), time_zone(text))?,
            None => zone.clone(),
        };
        let members = self.members(at, name, raw.members)?;
        let rotation = match raw.rotation {
            Some(rotation) => self.rotation(&at.key("rotation"), rotation)?,
            // One member, or none rotating: the first is on call from the start of time.
            None if members.len() == 1 => (SignedDuration::from_hours(24), DateTime::MIN),
            None => {
                self.error(
                    at,
                    format!("schedule `{name}` has several members but no `rotation`"),
                );
                return None;
            }
        };
        let overrides = self.overrides(&at.key("overrides"), raw.overrides, &members, &zone)?;
        Some(Schedule {
            name: name.to_owned(),
            zone,
            every: rotation.0,
            first: rotation.1,
            members,
            overrides,
        })
    }

    fn members(&mut self, at: &Path, name: &str, raw: Vec<RawMember>) -> Option<Vec<Member>> {
        if raw.is_empty() {
            self.error(at, format!("schedule `{name}` has no `members`"));
            return None;
        }
        let mut ok = true;
        let mut members: Vec<Member> = Vec::new();
        for (i, member) in raw.into_iter().enumerate() {
            let here = at.key("members").index(i);
            if member.name.trim().is_empty() {
                self.error(&here, "a member needs a `name`");
                ok = false;
            } else if members.iter().any(|m| m.name == member.name) {
                self.error(&here, format!("member `{}` is listed twice", member.name));
                ok = false;
            }
            let empty = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
            if empty(&member.mobile) && empty(&member.user_id) {
                self.error(
                    &here,
                    format!(
                        "member `{}` needs a `mobile` or a `user_id`: how DingTalk reaches them",
                        member.name
                    ),
                );
                ok = false;
            }
            members.push(Member {
                name: member.name,
                mobile: member.mobile.filter(|m| !m.trim().is_empty()),
                user_id: member.user_id.filter(|u| !u.trim().is_empty()),
            });
        }
        ok.then_some(members)
    }

    /// `rotation:`: the length of a shift and the start of the first, on the wall clock.
    fn rotation(&mut self, at: &Path, raw: RawRotation) -> Option<(SignedDuration, DateTime)> {
        let every = self.check(
            &at.key("every"),
            raw.every
                .as_deref()
                .ok_or_else(|| "a rotation needs `every` (1w, 1d, 12h, …)".to_owned())
                .and_then(duration),
        );
        let every = every.and_then(|every| {
            let every = SignedDuration::try_from(every).ok()?;
            if every < SignedDuration::from_hours(1) || every.as_secs() % 60 != 0 {
                self.error(
                    &at.key("every"),
                    "a rotation's `every` must be at least 1h, in whole minutes",
                );
                return None;
            }
            Some(every)
        });
        let start = self.check(
            &at.key("start"),
            raw.start
                .as_deref()
                .ok_or_else(|| {
                    "a rotation needs `start`, the date of the first handoff (2026-12-07)"
                        .to_owned()
                })
                .and_then(|text| {
                    text.parse::<Date>()
                        .map_err(|_| format!("{text:?} is not a date like 2026-12-07"))
                }),
        );
        let (every, start) = (every?, start?);
        let weekly = every.as_secs() % WEEK.as_secs() == 0;
        let handoff = raw
            .handoff
            .as_deref()
            .unwrap_or(if weekly { "" } else { "00:00" });
        let (day, time) = self.check(&at.key("handoff"), handoff_time(handoff, weekly))?;
        if let Some(day) = day.filter(|day| *day != start.weekday()) {
            self.error(
                &at.key("start"),
                format!(
                    "the rotation hands off on {day:?}s, but `start` {start} is a {:?}",
                    start.weekday()
                ),
            );
            return None;
        }
        Some((every, start.to_datetime(time)))
    }

    fn overrides(
        &mut self,
        at: &Path,
        raw: Vec<RawOverride>,
        members: &[Member],
        zone: &TimeZone,
    ) -> Option<Vec<Override>> {
        let mut ok = true;
        let mut overrides: Vec<(usize, Override)> = Vec::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let here = at.index(i);
            let mut instant = |key: &str, text: Option<String>| {
                let parsed = text
                    .ok_or_else(|| format!("an override needs `{key}`"))
                    .and_then(|text| local_instant(&text, zone));
                self.check(&here.key(key), parsed)
            };
            let (from, to) = (instant("from", raw.from), instant("to", raw.to));
            let name = raw.member.unwrap_or_default();
            let member = members.iter().position(|m| m.name == name);
            if member.is_none() {
                let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                self.error(
                    &here.key("member"),
                    format!(
                        "override names `{name}`, who is not a member (members: {})",
                        known.join(", ")
                    ),
                );
            }
            let (Some(from), Some(to), Some(member)) = (from, to, member) else {
                ok = false;
                continue;
            };
            if from >= to {
                self.error(&here, "an override's `to` must come after its `from`");
                ok = false;
                continue;
            }
            overrides.push((i, Override { from, to, member }));
        }
        overrides.sort_by_key(|(_, o)| o.from);
        for pair in overrides.windows(2) {
            let ((_, earlier), (i, later)) = (&pair[0], &pair[1]);
            if later.from < earlier.to {
                self.error(
                    &at.index(*i),
                    "this override overlaps another; overrides must not overlap",
                );
                ok = false;
            }
        }
        ok.then(|| overrides.into_iter().map(|(_, o)| o).collect())
    }

    /// `mention.oncall:` of a robot or strategy: each name a schedule.
    pub(super) fn check_schedule_names(
        &mut self,
        at: &Path,
        names: &[String],
        schedules: &Schedules,
    ) {
        for (i, name) in names.iter().enumerate() {
            if !schedules.contains_key(name) {
                let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
                self.error(
                    &at.index(i),
                    format!(
                        "`{name}` is not a schedule of `oncall:` (schedules: {})",
                        known.join(", ")
                    ),
                );
            }
        }
    }

    /// A strategy's `escalate:` steps.
    pub(super) fn steps(
        &mut self,
        at: &Path,
        raw: Vec<RawStep>,
        schedules: &Schedules,
        robots: &BTreeMap<String, Arc<Robot>>,
        strategy_robots: &[String],
    ) -> Option<Vec<Step>> {
        let mut ok = true;
        let mut steps: Vec<Step> = Vec::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let step = self.step(&at.index(i), raw, schedules, robots, strategy_robots);
            match (step, steps.last()) {
                (Some(step), Some(last)) if step.after < last.after => {
                    self.error(
                        &at.index(i).key("after"),
                        "steps must be in order: each `after` at least the one before",
                    );
                    ok = false;
                }
                (Some(step), _) => steps.push(step),
                (None, _) => ok = false,
            }
        }
        ok.then_some(steps)
    }

    fn step(
        &mut self,
        at: &Path,
        raw: RawStep,
        schedules: &Schedules,
        robots: &BTreeMap<String, Arc<Robot>>,
        strategy_robots: &[String],
    ) -> Option<Step> {
        let after = match raw.after.as_deref() {
            Some(text) => self.positive_duration(&at.key("after"), text),
            None => {
                self.error(at, "a step needs `after`, e.g. 5m");
                None
            }
        };
        let notify = raw.notify.unwrap_or_default();
        let schedule = schedules.get(&notify);
        if schedule.is_none() {
            let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
            self.error(
                &at.key("notify"),
                format!("step notifies `{notify}`, which is not a schedule of `oncall:` (schedules: {})", known.join(", ")),
            );
        }
        let via_text = raw.via.unwrap_or_default();
        let via = Via::ALL.into_iter().find(|via| via.as_str() == via_text);
        if via.is_none() {
            self.error(
                &at.key("via"),
                format!("`via: {via_text}` is not one of ding_app, ding_sms, ding_call, mention"),
            );
        }
        let (after, schedule, via) = (after?, schedule?, via?);
        let robot = match (raw.robot, via) {
            (Some(robot), _) => robot,
            // A mention goes to the strategy's first robot that can mention.
            (None, Via::Mention) => match strategy_robots
                .iter()
                .find(|name| robots.get(*name).is_some_and(|r| r.can_mention()))
            {
                Some(robot) => robot.clone(),
                None => {
                    self.error(at, "a `via: mention` step needs a webhook robot: name one in `robot`, or give the strategy one");
                    return None;
                }
            },
            (None, _) => {
                self.error(at, format!("a `via: {via}` step needs `robot`: a robot of an application, which sends the DING"));
                return None;
            }
        };
        let Some(config) = robots.get(&robot) else {
            self.error(&at.key("robot"), format!("robot `{robot}` is not defined"));
            return None;
        };
        if via == Via::Mention && !config.can_mention() {
            self.error(&at.key("robot"), format!("robot `{robot}` is a robot of an application, which cannot mention people; `via: mention` needs a webhook robot"));
            return None;
        }
        if via != Via::Mention {
            if !config.is_app() {
                self.error(&at.key("robot"), format!("robot `{robot}` is a webhook robot; a DING is sent by a robot of an application"));
                return None;
            }
            if let Some(member) = schedule.members.iter().find(|m| m.user_id.is_none()) {
                self.error(
                    &at.key("notify"),
                    format!(
                        "member `{}` of schedule `{notify}` has no `user_id`, which a DING needs",
                        member.name
                    ),
                );
                return None;
            }
        }
        Some(Step {
            after,
            notify,
            via,
            robot,
        })
    }
}

/// `handoff:`: `"Mon 10:00"` for a rotation of whole weeks, `"10:00"` for others.
fn handoff_time(text: &str, weekly: bool) -> Result<(Option<Weekday>, Time), String> {
    match text.split_once(' ') {
        Some((day, time)) if weekly => {
            let day = weekdays(day)?;
            match day.as_slice() {
                [day] => Ok((Some(*day), time_of_day(time.trim())?)),
                _ => Err(format!(
                    "{text:?}: the handoff is on one day, like \"Mon 10:00\""
                )),
            }
        }
        None if weekly => Err(format!(
            "{text:?}: a rotation of whole weeks hands off on a day and time, like \"Mon 10:00\""
        )),
        Some(_) => Err(format!(
            "{text:?}: a rotation shorter than a week hands off at a time of day, like \"10:00\""
        )),
        None => Ok((None, time_of_day(text)?)),
    }
}

/// `"2026-12-24 18:00"` on the wall clock of `zone`.
fn local_instant(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    let local: DateTime = text
        .parse()
        .map_err(|_| format!("{text:?} is not a date and time like \"2026-12-24 18:00\""))?;
    zone.to_ambiguous_timestamp(local)
        .compatible()
        .map_err(|e| format!("{text:?}: {e}"))
}
