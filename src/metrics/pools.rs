//! The series of robot pools ([`crate::deliver::pool`]): which members can take the
//! pool's messages, and how often one was passed over.

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label set of a pool member.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct MemberLabels {
    /// The pool, as strategies name it (`pool:<name>`).
    pub pool: String,
    /// The member robot.
    pub robot: String,
}

/// Label set of a member passed over.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    /// The pool, as strategies name it (`pool:<name>`).
    pub pool: String,
    /// The member robot.
    pub robot: String,
    /// `refused`, `failing` or `paused`.
    pub reason: String,
}

/// The pool metrics.
#[derive(Default)]
pub struct Pools {
    /// 1 while a member can take the pool's messages.
    pub member_up: Family<MemberLabels, Gauge>,
    /// Members passed over, by reason.
    pub skipped: Family<SkipLabels, Counter>,
    /// The members that have a `member_up` series.
    known: Mutex<BTreeSet<MemberLabels>>,
}

impl Pools {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "pool_member_up",
            "1 while a robot of a pool can take the pool's messages; 0 while it is passed over (refused, failing or paused)",
            self.member_up.clone(),
        );
        r.register(
            "pool_members_skipped",
            "Times a robot of a pool was passed over and its message left to the others, by reason (refused, failing, paused)",
            self.skipped.clone(),
        );
    }

    /// Counts `robot` of `pool` passed over for `reason`.
    pub fn skipped(&self, pool: &str, robot: &str, reason: &str) {
        self.skipped
            .get_or_create(&SkipLabels {
                pool: pool.to_owned(),
                robot: robot.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets `pool_member_up` of each `(pool, robot, up)` of `members`, and removes the
    /// series of members no longer configured.
    pub fn set_members(&self, members: &[(&str, &str, bool)]) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let mut current = BTreeSet::new();
        for &(pool, robot, up) in members {
            let labels = MemberLabels {
                pool: pool.to_owned(),
                robot: robot.to_owned(),
            };
            self.member_up.get_or_create(&labels).set(i64::from(up));
            current.insert(labels);
        }
        for gone in known.difference(&current) {
            self.member_up.remove(gone);
        }
        *known = current;
    }
}
