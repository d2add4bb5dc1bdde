//! The access tokens of applications: fetched on first use, shared by every robot of an
//! application, fetched again shortly before DingTalk's `expireIn` runs out, and at once
//! when DingTalk rejects the one in use.
//!
//! Each application has one slot behind an async lock that is held while its token is
//! fetched, so concurrent sends wait for one token request instead of making their own.
//! Time is `tokio::time::Instant`, so tests can pause it. Tokens are [`Secret`]s.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::app::App;
use super::{Secret, SendError};

/// The most a token is fetched again before it expires.
const MAX_EARLY: Duration = Duration::from_secs(300);

/// The tokens of every application robots have used, by application: its address, key
/// and secret, so a reload that corrects a secret does not keep a token of the old one.
/// Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<App, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

struct Cached {
    token: Secret,
    /// When it is fetched again: ahead of its expiry by a tenth of its life, at most
    /// [`MAX_EARLY`].
    refresh_at: Instant,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let apps = self.slots.lock().map_or(0, |slots| slots.len());
        f.debug_struct("Tokens").field("apps", &apps).finish()
    }
}

impl Tokens {
    /// `app`'s token: the cached one unless it is due for refresh or is `rejected` (the one
    /// DingTalk just refused), otherwise one `fetch` returns as (token, `expireIn`).
    /// Callers that wait while another fetches get the token it fetched.
    pub async fn get<F, Fut>(
        &self,
        app: &App,
        rejected: Option<&Secret>,
        fetch: F,
    ) -> Result<Secret, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), SendError>>,
    {
        let slot = self.slot(app);
        let mut cached = slot.lock().await;
        let now = Instant::now();
        if let Some(cached) = cached.as_ref() {
            let usable = now < cached.refresh_at && rejected != Some(&cached.token);
            if usable {
                return Ok(cached.token.clone());
            }
        }
        let (token, expires_in) = fetch().await?;
        let early = (expires_in / 10).min(MAX_EARLY);
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + expires_in.saturating_sub(early),
        });
        Ok(token)
    }

    fn slot(&self, app: &App) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(app.clone()).or_default())
    }
}
