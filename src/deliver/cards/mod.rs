//! Cards updated in place: for a robot whose messages go as cards, each alert group has
//! one card per episode. The group's first message sends it; later ones update it; the
//! message that says the whole group resolved updates it a last time and ends the episode,
//! so that the group's next firing sends a new card.
//!
//! Which card is a group's is kept by (robot, `groupKey`) in memory, in `cards.redb` beside
//! the queue file (written before the card is sent, so that a send whose answer was lost
//! is sent again with the same `cardBizId` after a retry or a restart), and with
//! `cluster:` in Redis, so that a replica updates the card another sent. A card whose send
//! may have arrived is sent again under the same id (DingTalk does not overwrite a card
//! sent twice) and then updated, so it shows the latest state; a card DingTalk refuses to
//! update for good is replaced by a new one. A card changes at most once in [`SPACING`]
//! per replica.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::dingtalk::card::{self, CardCall};
use crate::dingtalk::{Endpoint, Message, Retry, Robot, SendError, Sender};
use crate::ingest::{Notification, Status};
use crate::queue::GroupSummary;
use crate::storage::{self, Format};

mod shelf;

use shelf::Shelf;

/// The file's name in the queue directory.
const FILE_NAME: &str = "cards.redb";
/// The file's format: version 1 added the format record.
const FORMAT: Format = Format {
    version: 1,
    migrations: &[storage::record_only],
};
/// The table (and, with `cluster:`, the Redis hash) of the cards: group to card.
const CARDS: &str = "cards";
/// The table (and Redis hash) of the notifications cards are drawn from.
const SOURCES: &str = "card-sources";
/// The largest notification kept to draw its card again when the group is acknowledged
/// or silenced; a larger group's card changes with its next notification only.
const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The most notifications a replica keeps for that: past it, new groups' cards change with
/// their notifications only.
const MAX_SOURCES: usize = 1000;
/// The least time between two changes of one card by a replica.
pub const SPACING: Duration = Duration::from_secs(2);

/// The card of one group's episode on one robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The id it is sent and updated under.
    pub biz_id: String,
    /// Whether DingTalk accepted its send.
    pub sent: bool,
}

/// What a card was last drawn from: the robot and strategy, and the group's notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// The robot that shows the card.
    pub robot: String,
    /// The strategy that routed the group there.
    pub strategy: String,
    /// The group's latest notification.
    pub notification: Notification,
}

/// The group a card message shows: its `groupKey`, and whether the whole group resolved.
#[derive(Debug, Clone, Copy)]
pub struct CardGroup<'a> {
    /// The alert group's `groupKey`.
    pub group_key: &'a str,
    /// Whether every alert of the group resolved: the episode ends with this message.
    pub resolved: bool,
}

impl<'a> CardGroup<'a> {
    /// The group `message` (summed up in `summary`) shows, when `robot` sends it as a card:
    /// a message of one group (it has a `groupKey`) to a robot that sends cards.
    pub fn of(robot: &Robot, message: &Message, summary: &'a GroupSummary) -> Option<Self> {
        (robot.sends_cards(message) && !summary.group_key.is_empty()).then(|| CardGroup {
            group_key: &summary.group_key,
            resolved: summary.status == Status::Resolved,
        })
    }
}

/// Every open card, and what each was drawn from. See the module documentation.
#[derive(Debug)]
pub struct Cards {
    cards: Shelf<Card>,
    sources: Shelf<Source>,
    /// When each card was last sent or updated by this replica, to space its updates.
    touched: Mutex<HashMap<String, Instant>>,
}

impl Default for Cards {
    fn default() -> Self {
        Cards::in_memory()
    }
}

impl Cards {
    /// Cards in memory only (no `queue_dir`): a restart sends new cards.
    pub fn in_memory() -> Self {
        Cards {
            cards: Shelf::in_memory(CARDS),
            sources: Shelf::in_memory(SOURCES),
            touched: Mutex::default(),
        }
    }

    /// Cards kept in `dir/cards.redb` too, read whole now (at start).
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let tables = [CARDS, SOURCES].map(TableDefinition::new);
        let database = storage::open(&path, &FORMAT, &tables).map_err(|e| fail(&e))?;
        let database = Arc::new(database);
        Ok(Cards {
            cards: Shelf::open(CARDS, database.clone()).map_err(|e| fail(&e))?,
            sources: Shelf::open(SOURCES, database).map_err(|e| fail(&e))?,
            touched: Mutex::default(),
        })
    }

    /// How many cards this replica holds open.
    pub fn len(&self) -> usize {
        self.cards.len()
    }

    /// Whether this replica holds no card open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `notification` as what `robot`'s card of its group, routed by `strategy`, is
    /// drawn from, unless it is too large; forgets it when the whole group resolved.
    pub async fn remember(
        &self,
        robot: &str,
        strategy: &str,
        notification: &Notification,
        cluster: Option<&Cluster>,
    ) {
        let key = key(robot, &notification.group_key);
        let source = Source {
            robot: robot.to_owned(),
            strategy: strategy.to_owned(),
            notification: notification.clone(),
        };
        let small = serde_json::to_vec(&source).is_ok_and(|json| json.len() <= MAX_SOURCE_BYTES);
        let room = self.sources.len() < MAX_SOURCES || self.sources.holds(&key);
        let open = notification
            .alerts
            .iter()
            .any(|a| a.status == Status::Firing);
        self.sources
            .put(&key, (small && open && room).then_some(&source), cluster)
            .await;
    }

    /// What every open card was drawn from.
    pub async fn sources(&self, cluster: Option<&Cluster>) -> Vec<Source> {
        self.sources.all(cluster).await
    }

    /// Sends `message` about `group` to `robot` as its card: a new one, or an update of
    /// the episode's; forgets the card when the group resolved.
    pub async fn post(
        &self,
        sender: &dyn Sender,
        cluster: Option<&Cluster>,
        robot: &Robot,
        message: &Message,
        group: CardGroup<'_>,
    ) -> Result<(), SendError> {
        let Endpoint::App(app_robot) = &robot.endpoint else {
            return Err(SendError::BadAnswer(
                "cards are for robots of an application".into(),
            ));
        };
        let key = key(&robot.name, group.group_key);
        let call = |call: CardCall, card: &Card| {
            sender.card(
                robot,
                card::body(call, app_robot, &card.biz_id, message),
                call,
            )
        };
        let card = match self.cards.get(&key, cluster).await {
            Some(card) => card,
            // Of two replicas sending the group's first card at once, one sends it; the
            // other updates it.
            None => {
                let new = Card::new();
                match self.cards.put_first(&key, &new, cluster).await {
                    Some(theirs) => theirs,
                    None => {
                        self.touched().insert(key.clone(), Instant::now());
                        call(CardCall::Send, &new).await?;
                        self.done(&key, new, group, cluster).await;
                        return Ok(());
                    }
                }
            }
        };
        self.space(&key).await;
        let card = if card.sent {
            match call(CardCall::Update, &card).await {
                Err(error) if error.retry() == Retry::Never => {
                    tracing::warn!(
                        message = "DingTalk refused to update a card; sending a new one.",
                        robot = %robot.name,
                        card = %card.biz_id,
                        %error,
                    );
                    let new = Card::new();
                    self.cards.put(&key, Some(&new), cluster).await;
                    call(CardCall::Send, &new).await?;
                    new
                }
                outcome => outcome.map(|()| card)?,
            }
        } else {
            // Its send may have arrived: DingTalk keeps the first data of an id.
            call(CardCall::Send, &card).await?;
            call(CardCall::Update, &card).await?;
            card
        };
        self.done(&key, card, group, cluster).await;
        Ok(())
    }

    /// Waits until card `key` was last touched [`SPACING`] ago, so that a card changes at
    /// most once in that time (the newest state waits in the queue meanwhile, superseding
    /// older ones); the card counts as touched from now.
    async fn space(&self, key: &str) {
        let last = self.touched().get(key).copied();
        if let Some(last) = last {
            tokio::time::sleep_until(last + SPACING).await;
        }
        self.touched().insert(key.to_owned(), Instant::now());
    }

    fn touched(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // Every critical section leaves the map consistent.
        self.touched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After `card` of `key` went out: forgets it when the group resolved, else marks it
    /// sent.
    async fn done(&self, key: &str, card: Card, group: CardGroup<'_>, cluster: Option<&Cluster>) {
        if group.resolved {
            self.touched().remove(key);
            self.cards.put(key, None, cluster).await;
            self.sources.put(key, None, cluster).await;
        } else if !card.sent {
            let sent = Card { sent: true, ..card };
            self.cards.put(key, Some(&sent), cluster).await;
        }
    }
}

impl Card {
    /// A new card, not sent yet, under a random id.
    fn new() -> Self {
        Card {
            biz_id: format!("amdt-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            sent: false,
        }
    }
}

/// The key of `robot`'s card of the group with `group_key`: the robot, and a hash of the
/// `groupKey` (which can be long).
fn key(robot: &str, group_key: &str) -> String {
    let digest = Sha256::digest(group_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{robot}/{hex}")
}
