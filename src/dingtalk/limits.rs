//! What DingTalk takes of a robot: how long a message may be, and how many messages a
//! rolling window may hold ([`RateLimit`], a robot's `rate_limit`). The window that keeps
//! sends under it is the bridge's own (`limit::RateWindow`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// DingTalk's limit on a webhook robot's message, in bytes: it refuses longer ones with
/// errcode 460101, "message too long, exceed 20000 bytes". The wording does not say what
/// it counts.
pub const MAX_MESSAGE_BYTES: usize = 20_000;
/// What the bridge lets the title and the text of one message to a webhook robot take
/// together: DingTalk's limit less 5 % for whatever else it might count. A 460101 answer
/// lowers it per robot (see `gate::Gate::shrink`).
pub const MESSAGE_BUDGET: usize = MAX_MESSAGE_BYTES / 20 * 19;
/// The lowest a robot's budget goes. A message of fewer bytes that DingTalk still calls
/// too long shows that length is not the problem: it is given up on instead of being cut
/// shorter still.
pub const MIN_BUDGET: usize = 1000;
/// The longest title: DingTalk shows only its start in the notification list.
pub const MAX_TITLE_BYTES: usize = 256;
/// Most bytes of button titles and links an action card carries, beside the budget: they
/// fit in its margin under DingTalk's limit.
pub const MAX_BUTTON_BYTES: usize = 600;
/// The longest text within the full budget, leaving room for the longest title.
pub const MAX_TEXT_BYTES: usize = MESSAGE_BUDGET - MAX_TITLE_BYTES;

/// How many messages may be sent in any rolling window of the given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed per window; at least 1.
    pub count: u32,
    /// Length of the rolling window.
    pub window: Duration,
}

impl RateLimit {
    /// DingTalk's own limit: 20 messages per minute.
    pub const DINGTALK: RateLimit = RateLimit {
        count: 20,
        window: Duration::from_secs(60),
    };
}

impl RateLimit {
    /// The window plus the latency margin: 1/20 of the window, at most 1 s. Sends are
    /// counted over this span.
    pub fn span(&self) -> Duration {
        self.window + (self.window / 20).min(Duration::from_secs(1))
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::DINGTALK
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// Parses `20/min`, `1/s`, `100/h` or `20/90s` (any duration after the slash).
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("rate limit {text:?} should look like 20/min, 1/s or 20/90s");
        let (count, per) = text.split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 {
            return Err(format!("rate limit {text:?} allows no messages at all"));
        }
        let window = match per.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => jiff::SignedDuration::from_str(other)
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(usage)?,
        };
        Ok(RateLimit { count, window })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.count, self.window)
    }
}
