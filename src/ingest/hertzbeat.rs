//! HertzBeat's webhook notice, mapped onto the notification model.
//!
//! HertzBeat renders its webhook body from a FreeMarker template (apache/hertzbeat,
//! `hertzbeat-manager/src/main/resources/templates/2-WebhookTemplate.txt`, sent as is by
//! `hertzbeat-alerter/.../notice/impl/WebHookAlertNotifyHandlerImpl.java`):
//! `title`, `status`, `commonLabels`, `alerts` (each `labels`, `content`, `triggerTimes`,
//! `startAt`, `activeAt`, `endAt`, `annotations`; another version of the template names
//! the four `triggerCount`, `startTime`, `lastTrigger`, `endTime`, and both are read) and
//! `commonAnnotations`. Times are `yyyy-MM-dd HH:mm:ss` in the HertzBeat server's zone
//! (`sources.hertzbeat.timezone` here); a number is read as epoch milliseconds.
//!
//! The template's output is not always strict JSON: an optional field left out leaves
//! its comma behind (`"startAt": "…",` before `}` when an alert has no `activeAt`,
//! `endAt` or annotations, or a line of a lone comma after one ending in a comma when it
//! has them). [`drop_stray_commas`] removes
//! exactly those commas before parsing; anything else that is not JSON is refused.
//!
//! What HertzBeat does not send is derived: each alert's fingerprint from its labels
//! ([`super::fingerprint`]), its status from `endAt` (resolved when there is one) and the
//! group's `status`, the labels its alerts share (the template's `commonLabels` rewrites
//! `severity` for display and renames `alertname`, so it is not used), and the group
//! key, `hertzbeat/{alertname="…"}` from the alerts' names, so that every notice of one
//! alert definition is one group. `content` becomes the `summary` annotation when there
//! is none (and stays as `content`), `triggerTimes` the `trigger_times` annotation.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Alert, LabelSet, Notification, PayloadError, Source, Status, fingerprint, shared_labels,
};

/// What is put before the group keys derived for HertzBeat.
pub const GROUP_KEY_PREFIX: &str = "hertzbeat/";

/// The body as the template writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    title: String,
    #[serde(default)]
    status: String,
    alerts: Vec<RawAlert>,
    #[serde(default)]
    common_annotations: LabelSet,
}

/// One alert as the template writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    #[serde(default)]
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(default)]
    content: String,
    #[serde(default, alias = "triggerCount")]
    trigger_times: Option<Value>,
    #[serde(default, alias = "startTime")]
    start_at: Option<Value>,
    #[serde(default, alias = "lastTrigger")]
    active_at: Option<Value>,
    #[serde(default, alias = "endTime")]
    end_at: Option<Value>,
}

/// Parses a HertzBeat webhook body whose times are in `zone`, at `now` (the start of an
/// alert that has none), answering with a one-line reason when it is not one.
pub fn parse(body: &[u8], zone: &TimeZone, now: Timestamp) -> Result<Notification, PayloadError> {
    let invalid = |reason: String| PayloadError {
        from: Source::HertzBeat,
        reason,
    };
    let body: Body =
        serde_json::from_slice(&drop_stray_commas(body)).map_err(|e| invalid(e.to_string()))?;
    if body.alerts.is_empty() {
        return Err(invalid("`alerts` is empty".to_owned()));
    }
    let group_resolved = body.status.eq_ignore_ascii_case("resolved");
    let alerts = body
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            alert(raw, group_resolved, zone, now)
                .map_err(|e| invalid(format!("alert {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let firing = alerts.iter().any(|a| a.status == Status::Firing);
    let common_labels = shared_labels(&alerts);
    let mut names: Vec<&str> = alerts.iter().map(Alert::name).collect();
    names.sort_unstable();
    names.dedup();
    let group_labels: LabelSet = match names[..] {
        [name] if !name.is_empty() => [("alertname".to_owned(), name.to_owned())].into(),
        _ => LabelSet::new(),
    };
    let quoted: Vec<String> = names.iter().map(|n| format!("alertname={n:?}")).collect();
    Ok(Notification {
        version: String::new(),
        group_key: format!("{GROUP_KEY_PREFIX}{{{}}}", quoted.join(",")),
        truncated_alerts: 0,
        status: if firing {
            Status::Firing
        } else {
            Status::Resolved
        },
        receiver: String::new(),
        group_labels,
        common_labels,
        common_annotations: body.common_annotations,
        external_url: String::new(),
        alerts,
        source: Source::HertzBeat,
        title: body.title,
        state: String::new(),
        message: String::new(),
        org_id: None,
    })
}

fn alert(
    raw: RawAlert,
    group_resolved: bool,
    zone: &TimeZone,
    now: Timestamp,
) -> Result<Alert, String> {
    let started = match time(raw.start_at.as_ref(), zone, "startAt")? {
        Some(started) => started,
        None => time(raw.active_at.as_ref(), zone, "activeAt")?.unwrap_or(now),
    };
    let ended = time(raw.end_at.as_ref(), zone, "endAt")?;
    let mut annotations = raw.annotations;
    if !raw.content.is_empty() {
        annotations
            .entry("summary".to_owned())
            .or_insert_with(|| raw.content.clone());
        annotations.insert("content".to_owned(), raw.content);
    }
    if let Some(times) = raw.trigger_times.filter(|v| !v.is_null()) {
        let text = times
            .as_str()
            .map_or_else(|| times.to_string(), str::to_owned);
        annotations.insert("trigger_times".to_owned(), text);
    }
    Ok(Alert {
        status: if ended.is_some() || group_resolved {
            Status::Resolved
        } else {
            Status::Firing
        },
        fingerprint: fingerprint(&raw.labels),
        labels: raw.labels,
        annotations,
        starts_at: started,
        ends_at: ended,
        generator_url: String::new(),
        silence_url: String::new(),
        dashboard_url: String::new(),
        panel_url: String::new(),
        values: None,
        value_string: String::new(),
        image_url: String::new(),
    })
}

/// A time as the template writes it: `yyyy-MM-dd HH:mm:ss` in `zone`, or epoch
/// milliseconds. `None` when absent, empty, or before 1971: the template prints epoch 0
/// (`startAt!0`) for a time HertzBeat does not have.
fn time(value: Option<&Value>, zone: &TimeZone, field: &str) -> Result<Option<Timestamp>, String> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        // jiff's ISO 8601 reading takes a space between date and time.
        Some(Value::String(text)) => text
            .trim()
            .parse::<DateTime>()
            .ok()
            .and_then(|civil| zone.to_timestamp(civil).ok())
            .or_else(|| text.trim().parse::<Timestamp>().ok())
            .ok_or_else(|| format!("`{field}` {text:?} is not yyyy-MM-dd HH:mm:ss"))?,
        Some(Value::Number(millis)) => millis
            .as_i64()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .ok_or_else(|| format!("`{field}` {millis} is not epoch milliseconds"))?,
        Some(other) => return Err(format!("`{field}` is {other}, not a time")),
    };
    let epoch_year = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(365 * 24);
    Ok((parsed > epoch_year).then_some(parsed))
}

/// `body` without the commas HertzBeat's template leaves where an optional field was left
/// out: a comma before `}`, `]` or another comma, or just after `{` or `[`. Text inside
/// strings is untouched.
pub fn drop_stray_commas(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    // The last byte written outside a string that is not white space.
    let mut last = 0u8;
    for (i, &byte) in body.iter().enumerate() {
        if in_string {
            out.push(byte);
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    last = byte;
                }
                _ => {}
            }
            continue;
        }
        if byte == b',' {
            let next = body[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
            let after_open = matches!(last, b'{' | b'[');
            if after_open || matches!(next, None | Some(b'}' | b']' | b',')) {
                continue;
            }
        }
        in_string = byte == b'"';
        out.push(byte);
        if !byte.is_ascii_whitespace() {
            last = byte;
        }
    }
    out
}
