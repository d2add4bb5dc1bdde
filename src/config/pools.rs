//! `pools:`: robots of one group that share its messages. Each pool becomes a robot
//! named `pool:<name>` (what strategies name), whose endpoint lists its members
//! ([`Endpoint::Pool`]) and whose other settings are the members' own: they must be
//! alike, so that a message rendered once suits whichever member sends it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Path;
use super::checker::Checker;
use crate::dingtalk::{Endpoint, Robot};

/// What strategies put before a pool's name.
pub const POOL_PREFIX: &str = "pool:";

impl Checker {
    /// The robots `pools:` makes, by their names (`pool:<name>`), from the `robots`
    /// already checked.
    pub(super) fn pools(
        &mut self,
        at: &Path,
        raw: BTreeMap<String, Vec<String>>,
        robots: &BTreeMap<String, Arc<Robot>>,
    ) -> BTreeMap<String, Arc<Robot>> {
        for name in robots.keys().filter(|name| name.starts_with(POOL_PREFIX)) {
            self.error(
                &Path::default().key("robots").key(name),
                format!("robot name `{name}` starts with `{POOL_PREFIX}`, which names pools"),
            );
        }
        let mut pools = BTreeMap::new();
        for (name, members) in raw {
            let at = at.key(&name);
            if let Some(pool) = self.pool(&at, &name, &members, robots) {
                pools.insert(pool.name.clone(), Arc::new(pool));
            }
        }
        pools
    }

    fn pool(
        &mut self,
        at: &Path,
        name: &str,
        members: &[String],
        robots: &BTreeMap<String, Arc<Robot>>,
    ) -> Option<Robot> {
        if members.is_empty() {
            self.error(at, format!("pool `{name}` has no robots"));
            return None;
        }
        let mut ok = true;
        let mut first: Option<&Robot> = None;
        for (i, member) in members.iter().enumerate() {
            let at = at.index(i);
            if members[..i].contains(member) {
                self.error(&at, format!("pool `{name}` names robot `{member}` twice"));
                ok = false;
                continue;
            }
            let Some(robot) = robots.get(member) else {
                self.error(
                    &at,
                    format!("pool `{name}` names robot `{member}`, which is not defined"),
                );
                ok = false;
                continue;
            };
            if !matches!(robot.endpoint, Endpoint::Webhook(_)) {
                self.error(
                    &at,
                    format!("pool `{name}`: robot `{member}` is not a webhook robot; a pool shares one group's messages among webhook (custom) robots"),
                );
                ok = false;
                continue;
            }
            let Some(like) = first else {
                first = Some(robot);
                continue;
            };
            let differs = [
                ("keywords", robot.keywords != like.keywords),
                ("msgtype", robot.msgtype != like.msgtype),
                ("rate_limit", robot.rate_limit != like.rate_limit),
                (
                    "mention",
                    robot.mention != like.mention || robot.oncall != like.oncall,
                ),
            ];
            for (key, _) in differs.iter().filter(|(_, differs)| *differs) {
                self.error(
                    &at,
                    format!(
                        "pool `{name}`: robot `{member}` has other `{key}` than `{}`; the robots of a pool are configured alike but for their tokens and secrets",
                        like.name
                    ),
                );
                ok = false;
            }
        }
        let like = first.filter(|_| ok)?;
        Some(Robot {
            name: format!("{POOL_PREFIX}{name}"),
            endpoint: Endpoint::Pool(members.to_vec()),
            commands: None,
            ..like.clone()
        })
    }
}
