//! Single values of the config: URLs, webhook addresses, durations, time zones, times of
//! day and weekdays, each parsed with a one-line error.

use std::str::FromStr;
use std::time::Duration;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use url::Url;

/// Splits a webhook address as copied from DingTalk into the API URL and the token.
pub(super) fn split_webhook(webhook: &str) -> Result<(Url, String), String> {
    let url = http_url(webhook)?;
    let mut token = None;
    let mut rest = Vec::new();
    for (key, value) in url.query_pairs() {
        if key == "access_token" {
            token = Some(value.into_owned());
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or("webhook has no access_token=... parameter; copy the whole address from the robot's settings")?;
    let mut api_url = url;
    api_url.set_query(None);
    if !rest.is_empty() {
        api_url.query_pairs_mut().extend_pairs(rest);
    }
    Ok((api_url, token))
}

pub(super) fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| match e {
        // idna_adapter is pinned to the version without Unicode tables (Cargo.toml).
        url::ParseError::IdnaError => {
            "invalid URL: a host name in other than ASCII letters; write it in its ASCII (punycode, xn--...) form".to_owned()
        }
        e => format!("invalid URL: {e}"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("URL scheme must be http or https, not {other}")),
    }
}

/// A duration such as `5s`, `1m30s`, `24h`, or, as Alertmanager's and Prometheus'
/// durations allow, `7d` and `2w` (a day taken as 24 hours).
pub fn duration(text: &str) -> Result<Duration, String> {
    let exact = jiff::SignedDuration::from_str(text).ok();
    let in_days = || {
        let span = jiff::Span::from_str(text).ok()?;
        span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .ok()
    };
    exact
        .or_else(in_days)
        .and_then(|d| Duration::try_from(d).ok())
        .ok_or_else(|| format!("{text:?} is not a duration like 5s, 1m30s, 24h or 7d"))
}

pub(super) fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Asia/Shanghai)"))
}

pub(super) fn time_of_day(text: &str) -> Result<Time, String> {
    let error = || format!("{text:?} is not a time of day like 09:00 or 18:30");
    if text == "24:00" {
        return Ok(Time::MAX);
    }
    let (hour, minute) = text.split_once(':').ok_or_else(error)?;
    let hour: i8 = hour.parse().map_err(|_| error())?;
    let minute: i8 = minute.parse().map_err(|_| error())?;
    Time::new(hour, minute, 0, 0).map_err(|_| error())
}

pub(super) fn all_weekdays() -> Vec<Weekday> {
    (0..7).map(|i| Weekday::Monday.wrapping_add(i)).collect()
}

/// `mon`, `monday`, or a range such as `mon-fri` or `monday:friday`.
pub(super) fn weekdays(text: &str) -> Result<Vec<Weekday>, String> {
    let one = |name: &str| -> Result<Weekday, String> {
        let lower = name.trim().to_ascii_lowercase();
        all_weekdays()
            .into_iter()
            .find(|day| {
                let full = format!("{day:?}").to_ascii_lowercase();
                lower == full || (lower.len() >= 3 && full.starts_with(&lower))
            })
            .ok_or_else(|| format!("{name:?} is not a weekday (mon, tue, ... or monday, ...)"))
    };
    match text.split_once(['-', ':']) {
        Some((from, to)) => {
            let (from, to) = (one(from)?, one(to)?);
            let mut days = vec![from];
            let mut day = from;
            while day != to {
                day = day.wrapping_add(1);
                days.push(day);
            }
            Ok(days)
        }
        None => Ok(vec![one(text)?]),
    }
}
