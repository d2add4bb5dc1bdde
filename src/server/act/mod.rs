//! The pages of action links, `/act/{link}`: `GET` shows the group (its alerts as
//! Alertmanager has them, the exact matchers a silence will have, who acknowledged it,
//! its silences) and a form; only the form's `POST` acts, and only with the form token of
//! the same link. A link that is not the bridge's is 403, an expired one 410, and both
//! show nothing of any group. Server-rendered HTML (`act.html`, minijinja, HTML-escaped),
//! no script, no external asset, a strict Content-Security-Policy, and no `Referer` to
//! another site (the address is the capability). The link's token is never logged or
//! shown.

use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::html::HtmlPage;
use super::{Reply, reply};
use crate::accept::refresh;
use crate::act::link::group_id;
use crate::act::{Act, ActError, AlertmanagerClient, Done, GroupState, Link, LinkError};
use crate::app::App;
use crate::config::ActionsConfig;
use crate::ingest::Notification;
use crate::snapshot::Snapshot;

/// The cookie that remembers the name a person gave.
const NAME_COOKIE: &str = "alertmanager_dingtalk_name";
/// The longest name and comment taken.
const MAX_NAME: usize = 64;
const MAX_COMMENT: usize = 500;

/// What the page shows.
#[derive(Serialize, Default)]
struct ActPage {
    /// The action's label, `Silence 1h`, or what went wrong.
    heading: String,
    /// One line under the heading.
    lead: String,
    matchers: Vec<String>,
    alerts: Vec<AlertLine>,
    alerts_error: Option<String>,
    acknowledged: Option<String>,
    silences: Vec<SilenceLine>,
    silences_error: Option<String>,
    /// The outcome of a form just posted.
    done: Option<String>,
    /// Why it was not done.
    problem: Option<String>,
    /// Whether the form is shown.
    form: bool,
    /// What the form's button says.
    button: String,
    name: String,
    form_token: String,
    expires: String,
}

#[derive(Serialize)]
struct AlertLine {
    name: String,
    labels: String,
    since: String,
}

#[derive(Serialize)]
struct SilenceLine {
    id: String,
    by: String,
    until: String,
    comment: String,
}

/// `GET /act/{link}`: the page, acting on nothing.
pub(super) async fn show(
    act: &Act,
    snapshot: &Snapshot,
    token: &str,
    headers: &HeaderMap,
) -> Reply {
    let (actions, alertmanager) = match configured(snapshot) {
        Ok(configured) => configured,
        Err(refused) => return *refused,
    };
    let link = match Link::verify(token, &actions.key, Timestamp::now()) {
        Ok(link) => link,
        Err(error) => return refused(act, error),
    };
    let state = act.state(&link, alertmanager).await;
    let page = page(
        &link,
        actions,
        &state,
        cookie_name(headers),
        &snapshot.config.timezone,
    );
    html(StatusCode::OK, &page, None)
}

/// `POST /act/{link}` with the page's form: does what the link names (or, with
/// `do=unsilence`, expires the group's silence `silence`), and shows the page again with
/// the outcome.
pub(super) async fn perform(
    app: &Arc<App>,
    snapshot: &Snapshot,
    token: &str,
    form: &[u8],
) -> Reply {
    let act = &*app.act;
    let (actions, alertmanager) = match configured(snapshot) {
        Ok(configured) => configured,
        Err(refused) => return *refused,
    };
    let now = Timestamp::now();
    let link = match Link::verify(token, &actions.key, now) {
        Ok(link) => link,
        Err(error) => return refused(act, error),
    };
    let fields: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(form).into_owned().collect();
    let field = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or_default();
    if !link.accepts_form_token(&actions.key, field("form_token")) {
        act.refused(LinkError::Invalid);
        return reply(
            StatusCode::FORBIDDEN,
            "this form was not served for this link; open the link again",
        );
    }
    let name = field("name");
    if name.is_empty()
        || name.chars().count() > MAX_NAME
        || field("comment").chars().count() > MAX_COMMENT
    {
        return reply(
            StatusCode::BAD_REQUEST,
            format!(
                "give a name of 1 to {MAX_NAME} characters, and a comment of at most {MAX_COMMENT}"
            ),
        );
    }
    let done = match field("do") {
        "unsilence" => {
            act.unsilence(&link, alertmanager, name, field("silence"))
                .await
        }
        _ => {
            let cluster = snapshot.cluster.as_deref();
            act.perform(&link, alertmanager, cluster, name, field("comment"), now)
                .await
        }
    };
    if let Ok(done) = &done {
        redraw(app, &link, done, name);
    }
    let zone = &snapshot.config.timezone;
    let state = act.state(&link, alertmanager).await;
    let mut page = page(&link, actions, &state, name.to_owned(), zone);
    let status = match &done {
        Ok(done) => {
            page.done = Some(said(done, zone));
            StatusCode::OK
        }
        Err(error @ ActError::NoSuchSilence(_)) => {
            page.problem = Some(error.to_string());
            StatusCode::CONFLICT
        }
        Err(error) => {
            page.problem = Some(format!("nothing was done: {error}"));
            StatusCode::BAD_GATEWAY
        }
    };
    html(status, &page, Some(name))
}

/// Draws the group's cards again when `done` changed how it is handled (by `by`), on a
/// task of its own: the page does not wait for DingTalk.
fn redraw(app: &Arc<App>, link: &Link, done: &Done, by: &str) {
    let silenced = match done {
        Done::Acknowledged { new: false, .. } | Done::Silenced { new: false, .. } => return,
        Done::Silenced { until, .. } => Some((by.to_owned(), *until)),
        Done::Acknowledged { .. } | Done::Unsilenced { .. } => None,
    };
    let (app, group) = (app.clone(), link.group.clone());
    tokio::spawn(async move {
        let snapshot = app.config.snapshot();
        let matches = |n: &Notification| group_id(&n.group_key) == group;
        let mode = app.pinned().mode;
        refresh::cards(&app.delivery, &app.act, &snapshot, mode, matches, silenced).await;
    });
}

/// The actions configuration and the Alertmanager client, or the answer that there are
/// none.
fn configured(snapshot: &Snapshot) -> Result<(&ActionsConfig, &AlertmanagerClient), Box<Reply>> {
    match (&snapshot.config.actions, &snapshot.alertmanager) {
        (Some(actions), Some(alertmanager)) => Ok((actions, alertmanager)),
        _ => Err(Box::new(reply(
            StatusCode::NOT_FOUND,
            "actions are not configured (actions: in config.yaml)",
        ))),
    }
}

/// The page of a refused link: 403 for a link that is not the bridge's, 410 for an
/// expired one. Nothing of any group is shown.
fn refused(act: &Act, error: LinkError) -> Reply {
    act.refused(error);
    let (status, lead) = match error {
        LinkError::Invalid => (
            StatusCode::FORBIDDEN,
            "This link was changed, or it is not from this bridge. Nothing was done.",
        ),
        LinkError::Expired => (
            StatusCode::GONE,
            "This link has expired (actions.link_ttl). Nothing was done; use the link of a newer message.",
        ),
    };
    let page = ActPage {
        heading: error.to_string(),
        lead: lead.to_owned(),
        ..ActPage::default()
    };
    html(status, &page, None)
}

fn page(
    link: &Link,
    actions: &ActionsConfig,
    state: &GroupState,
    name: String,
    zone: &TimeZone,
) -> ActPage {
    let shown = |at: Timestamp| {
        at.to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let (alerts, alerts_error) = match &state.alerts {
        Ok(alerts) => (
            alerts
                .iter()
                .map(|alert| AlertLine {
                    name: alert.labels.get("alertname").cloned().unwrap_or_default(),
                    labels: alert
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    since: shown(alert.starts_at),
                })
                .collect(),
            None,
        ),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let (silences, silences_error) = match &state.silences {
        Ok(silences) => (
            silences
                .iter()
                .map(|silence| SilenceLine {
                    id: silence.id.clone(),
                    by: silence.created_by.clone(),
                    until: shown(silence.ends_at),
                    comment: silence.comment.clone(),
                })
                .collect(),
            None,
        ),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let label = link.action.label();
    ActPage {
        lead: match link.action {
            crate::act::Action::Acknowledge => {
                "Say that you are taking this alert group on. The group's next messages name you."
                    .to_owned()
            }
            crate::act::Action::Silence { .. } => format!(
                "Make a silence in Alertmanager of the matchers below for {}.",
                label.trim_start_matches("Silence ")
            ),
        },
        heading: label.clone(),
        matchers: link
            .matchers
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect(),
        alerts,
        alerts_error,
        acknowledged: state
            .acknowledged
            .as_ref()
            .map(|ack| format!("{} at {}", ack.by, shown(ack.at))),
        silences,
        silences_error,
        done: None,
        problem: None,
        form: true,
        button: label,
        name,
        form_token: link.form_token(&actions.key),
        expires: Timestamp::from_second(link.expires).map_or_else(|_| String::new(), shown),
    }
}

/// What a done action says on the page.
fn said(done: &Done, zone: &TimeZone) -> String {
    let shown = |at: Timestamp| {
        at.to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    match done {
        Done::Acknowledged { ack, new: true } => format!("Acknowledged by {}.", ack.by),
        Done::Acknowledged { ack, new: false } => {
            format!("Already acknowledged by {} at {}.", ack.by, shown(ack.at))
        }
        Done::Silenced {
            id,
            until,
            new: true,
        } => {
            format!("Silenced until {} (silence {id}).", shown(*until))
        }
        Done::Silenced {
            id,
            until,
            new: false,
        } => format!(
            "This link silenced the group already, until {} (silence {id}).",
            shown(*until)
        ),
        Done::Unsilenced { id } => format!("Silence {id} expired."),
    }
}

/// The name the cookie remembers, if any.
fn cookie_name(headers: &HeaderMap) -> String {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == NAME_COOKIE)
        .and_then(|(_, value)| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()
                .map(|name| name.chars().take(MAX_NAME).collect())
        })
        .unwrap_or_default()
}

/// `page` as HTML with `status`, and the headers of a capability page; with `remember`,
/// a cookie with the name given.
fn html(status: StatusCode, page: &ActPage, remember: Option<&str>) -> Reply {
    let mut response = ACT_PAGE.answer(status, page);
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    // Not `no-referrer`: under it a browser posts the form with `Origin: null`
    // (https://fetch.spec.whatwg.org/#serializing-a-request-origin), which the
    // cross-origin guard refuses. `same-origin` still sends the link to no other site.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(name) = remember {
        let value = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        let cookie = format!(
            "{NAME_COOKIE}={value}; Path=/act/; Max-Age=31536000; SameSite=Strict; HttpOnly"
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            headers.insert(SET_COOKIE, cookie);
        }
    }
    response
}

/// The action page's template.
static ACT_PAGE: HtmlPage = HtmlPage::new("the action page", "act.html", include_str!("act.html"));
