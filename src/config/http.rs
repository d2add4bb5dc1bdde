//! Validation of `http:`, the limits the HTTP server puts on its clients: how many
//! connections it serves at once, how long a request may take to arrive, how long an idle
//! keep-alive connection stays open, and how large the request headers may be.

use std::time::Duration;

use super::Path;
use super::checker::Checker;
use super::raw::RawHttp;

/// `http:`, with defaults sized for Alertmanager: a few keep-alive connections per
/// Alertmanager (its client reuses them), requests of a few hundred bytes of headers,
/// bodies that arrive at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Longest time from a request's first byte to its last (headers and body).
    pub read_timeout: Duration,
    /// Longest time a keep-alive connection waits for its next request.
    pub idle_timeout: Duration,
    /// Largest request head (start line and headers); larger ones get 431.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 512,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Checker {
    pub(super) fn http(&mut self, at: &Path, raw: RawHttp) -> Option<HttpLimits> {
        let defaults = HttpLimits::default();
        let mut ok = true;
        let mut count = |key: &str, value: Option<u64>, min: u64, default: usize| match value {
            Some(n) if n < min => {
                self.error(&at.key(key), format!("http.{key} must be at least {min}"));
                ok = false;
                default
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => default,
        };
        let max_connections = count(
            "max_connections",
            raw.max_connections,
            1,
            defaults.max_connections,
        );
        let max_header_bytes = count(
            "max_header_bytes",
            raw.max_header_bytes,
            1024,
            defaults.max_header_bytes,
        );
        let mut timeout = |key: &str, value: Option<String>, default: Duration| match value {
            Some(text) => self.positive_duration(&at.key(key), &text),
            None => Some(default),
        };
        let read_timeout = timeout("read_timeout", raw.read_timeout, defaults.read_timeout);
        let idle_timeout = timeout("idle_timeout", raw.idle_timeout, defaults.idle_timeout);
        ok.then_some(HttpLimits {
            max_connections,
            read_timeout: read_timeout?,
            idle_timeout: idle_timeout?,
            max_header_bytes,
        })
    }
}
