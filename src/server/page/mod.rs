//! The status page, `GET /`: the configuration in force, each robot's state (the queue
//! API's view plus its address, security and dead letters), the cluster, who is on call
//! and what escalates, and the strategies; `POST /preview` shows on the same page what a payload would send, and
//! `POST /test-robot` the answer to a test message. Server-rendered HTML from
//! `page.html` (minijinja, HTML-escaped), an inline stylesheet, no script and no
//! external asset. Tokens and secrets never reach it: robot addresses are redacted, the
//! Redis URL has its password masked.

mod markdown;
mod samples;
mod view;

use std::collections::BTreeMap;

use hyper::StatusCode;
use jiff::Timestamp;

use super::html::HtmlPage;
use super::{Reply, reply};
use crate::app::App;
use crate::ingest;
use crate::snapshot::Snapshot;
use crate::tools::preview;
use crate::tools::probe;
use view::TestView;

/// What a request to the page asked for beyond the status.
#[derive(Default)]
pub(super) struct Asked {
    /// A payload to preview and the sample it came from (`POST /preview`).
    preview: Option<(String, String)>,
    /// A test message's outcome (`POST /test-robot`).
    test: Option<TestView>,
}

/// The page with nothing asked.
pub(super) async fn status(app: &App, snapshot: &Snapshot) -> Reply {
    page(app, snapshot, Asked::default()).await
}

/// `POST /preview` with the form `payload=…&sample=…`: the payload, or the sample when
/// the payload is empty, previewed on the page.
pub(super) async fn preview(app: &App, snapshot: &Snapshot, form: &[u8]) -> Reply {
    let fields = form_fields(form);
    let payload = fields.get("payload").cloned().unwrap_or_default();
    let sample = fields.get("sample").cloned().unwrap_or_default();
    page(
        app,
        snapshot,
        Asked {
            preview: Some((payload, sample)),
            test: None,
        },
    )
    .await
}

/// `POST /test-robot` with the form `robot=…`: the test message of `test-robot`, and
/// the page with DingTalk's answer explained.
pub(super) async fn test_robot(app: &App, snapshot: &Snapshot, form: &[u8]) -> Reply {
    let name = form_fields(form).remove("robot").unwrap_or_default();
    let Some(robot) = snapshot.config.robots.get(&name) else {
        return reply(
            StatusCode::NOT_FOUND,
            format!("no robot {name:?} in the config"),
        );
    };
    let probe = probe::send(&app.delivery, snapshot, robot, probe::DEFAULT_TEXT).await;
    let test = TestView {
        delivered: probe.delivered,
        robot: name,
        report: probe.report,
    };
    page(
        app,
        snapshot,
        Asked {
            preview: None,
            test: Some(test),
        },
    )
    .await
}

fn form_fields(form: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(form).into_owned().collect()
}

async fn page(app: &App, snapshot: &Snapshot, asked: Asked) -> Reply {
    let now = Timestamp::now();
    let episodes = app.escalations.episodes(snapshot).await;
    let mut view = view::status(app, snapshot, now, asked.test, episodes);
    let mut status = StatusCode::OK;
    if let Some((payload, sample)) = asked.preview {
        let payload = match (payload.trim().is_empty(), samples::sample(&sample, now)) {
            (true, Some(json)) => json,
            _ => payload,
        };
        match ingest::parse(payload.as_bytes()) {
            Ok(notification) => {
                view.preview = Some(view::preview(preview::preview(
                    &snapshot.config,
                    &notification,
                    now,
                )));
            }
            Err(error) => {
                status = StatusCode::BAD_REQUEST;
                view.preview_error = Some(format!("not an Alertmanager payload: {error}"));
            }
        }
        view.chosen_sample = sample;
        view.payload = payload;
    }
    PAGE.answer(status, &view)
}

/// The status page's template.
static PAGE: HtmlPage = HtmlPage::new("the status page", "page.html", include_str!("page.html"));
