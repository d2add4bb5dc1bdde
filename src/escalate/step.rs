//! Taking one escalation step: reaching the member on call of its schedule by a DING of
//! its robot (saying whether the episode's earlier DING was read), or by a short message
//! that `@`s them, queued for its robot like any other message (in passthrough mode too,
//! where the queue holds only such messages of the bridge's own).

use std::sync::Arc;

use jiff::Timestamp;

use super::episode::{Done, Stored};
use crate::deliver::Delivery;
use crate::dingtalk::{Retry, Robot, SendError, markdown};
use crate::oncall::{Member, Step};
use crate::queue::{Envelope, GroupSummary};
use crate::render;
use crate::snapshot::Snapshot;

/// What became of a step.
#[derive(Debug)]
pub(super) enum Taken {
    /// Taken, with its record.
    Done(Done),
    /// DingTalk could not be reached or failed for now: the claim stays, and another
    /// attempt may be made when its lease ends.
    Failed(String),
}

/// Takes `step` (number `index`) of episode `stored` at `now` for `snapshot`'s
/// configuration.
pub(super) async fn take(
    delivery: &Arc<Delivery>,
    snapshot: &Snapshot,
    (stored, index, step): (&Stored, usize, &Step),
    now: Timestamp,
) -> Taken {
    let config = &snapshot.config;
    let (Some(schedule), Some(robot)) = (
        config.oncall.get(&step.notify),
        config.robots.get(&step.robot),
    ) else {
        return Taken::Done(done(now, step, "", "skipped", None));
    };
    let member = schedule.on_call(now);
    let waited = now.duration_since(stored.episode.started);
    let minutes = waited.as_secs() / 60;
    let headline = format!(
        "{} has fired for {minutes} min and nobody has acknowledged it (step {} of strategy {}).",
        stored.episode.title,
        index + 1,
        stored.episode.strategy,
    );
    match step.via.remind_type() {
        Some(remind_type) => {
            let Some(user_id) = &member.user_id else {
                return Taken::Done(done(now, step, &member.name, "skipped", None));
            };
            let earlier = earlier_ding(snapshot, stored).await;
            let content = format!("{headline}{earlier}");
            let sent = snapshot
                .dingtalk
                .ding(robot, remind_type, std::slice::from_ref(user_id), &content)
                .await;
            match sent {
                Ok(id) => Taken::Done(done(now, step, &member.name, "sent", Some(id))),
                Err(error) => failure(now, step, member, error),
            }
        }
        None => match mention(delivery, snapshot, robot, member, &headline, stored).await {
            Ok(()) => Taken::Done(done(now, step, &member.name, "sent", None)),
            Err(error) => Taken::Failed(error),
        },
    }
}

fn done(
    at: Timestamp,
    step: &Step,
    member: &str,
    outcome: &str,
    open_ding_id: Option<String>,
) -> Done {
    Done {
        at,
        via: step.via.as_str().to_owned(),
        member: member.to_owned(),
        outcome: outcome.to_owned(),
        open_ding_id,
    }
}

/// A failed DING: refused for good (its record says so), or to be tried again.
fn failure(now: Timestamp, step: &Step, member: &Member, error: SendError) -> Taken {
    match error.retry() {
        Retry::Never | Retry::Shorter => {
            tracing::error!(
                message = "DingTalk refused a DING; the escalation step is given up on.",
                member = %member.name,
                %error,
            );
            Taken::Done(done(now, step, &member.name, "refused", None))
        }
        Retry::Later | Retry::AfterPause => Taken::Failed(error.to_string()),
    }
}

/// What DingTalk says of the episode's latest DING: " Earlier DING to 张三: read (READ)."
async fn earlier_ding(snapshot: &Snapshot, stored: &Stored) -> String {
    let strategy = snapshot
        .config
        .strategies
        .iter()
        .find(|s| s.name == stored.episode.strategy);
    let latest = stored.done.iter().rev().find_map(|(index, done)| {
        let step = strategy?.escalate.get(*index)?;
        Some((
            done,
            done.open_ding_id.as_ref()?,
            snapshot.config.robots.get(&step.robot)?,
        ))
    });
    let Some((done, id, robot)) = latest else {
        return String::new();
    };
    match snapshot.dingtalk.ding_read(robot, id).await {
        Ok(read) => {
            let statuses: Vec<&str> = read.iter().map(|r| r.read_status.as_str()).collect();
            format!(" Earlier DING to {}: {}.", done.member, statuses.join(", "))
        }
        Err(error) => {
            tracing::warn!(message = "Cannot ask DingTalk whether a DING was read.", %error);
            String::new()
        }
    }
}

/// Queues a short message that `@`s `member` for `robot`'s group.
async fn mention(
    delivery: &Arc<Delivery>,
    snapshot: &Snapshot,
    robot: &Robot,
    member: &Member,
    headline: &str,
    stored: &Stored,
) -> Result<(), String> {
    // The title and the headline carry label values, scraped text: made inert.
    let title = format!("On call: {}", markdown::escape(&stored.episode.title));
    let body = format!(
        "**{}**, {}",
        markdown::escape(&member.name),
        markdown::escape(headline)
    );
    let message = render::notice(robot, &title, body, member.mention());
    let envelope = Envelope {
        id: delivery.queue.next_id(),
        robot: robot.name.clone(),
        strategy: stored.episode.strategy.clone(),
        summary: GroupSummary {
            status: crate::ingest::Status::Firing,
            title: message.title.clone(),
            alerts: Vec::new(),
            external_url: String::new(),
            // Not superseded by the group's own messages, nor superseding them.
            group_key: String::new(),
        },
        message,
        accepted_at: Timestamp::now(),
    };
    let max_pending = snapshot.config.max_pending;
    delivery
        .queue
        .push(vec![envelope], max_pending)
        .await
        .map_err(|e| e.to_string())?;
    delivery.wake(&robot.name);
    Ok(())
}
