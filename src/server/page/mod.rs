//! The status page, `GET /`: the configuration in force, each robot's state (the queue
//! API's view plus its address, security and dead letters), the cluster, who is on call
//! and what escalates, and the strategies; `POST /preview` shows on the same page what a payload would send, and
//! `POST /test-robot` the answer to a test message. Server-rendered HTML from
//! `page.html` (minijinja, HTML-escaped), an inline stylesheet, no script and no
//! external asset. Tokens and secrets never reach it: robot addresses are redacted, the
//! Redis URL has its password masked.

mod markdown;
mod robots;
mod samples;
mod shown;
mod view;

use std::collections::BTreeMap;

use hyper::StatusCode;
use jiff::Timestamp;

use super::html::HtmlPage;
use super::{Reply, reply};
use crate::app::App;
use crate::ingest::{self, Source};
use crate::snapshot::Snapshot;
use crate::tools::preview;
use crate::tools::probe;
use view::TestView;

/// What a request to the page asked for beyond the status.
#[derive(Default)]
pub(super) struct Asked {
    /// A payload to preview, the sample it came from and the source it was given as
    /// (`POST /preview`).
    preview: Option<(String, String, String)>,
    /// A test message's outcome (`POST /test-robot`).
    test: Option<TestView>,
}

/// The page with nothing asked.
pub(super) async fn status(app: &App, snapshot: &Snapshot) -> Reply {
    page(app, snapshot, Asked::default()).await
}

/// `POST /preview` with the form `payload=…&sample=…&source=…`: the payload as the
/// source's, or the sample when the payload is empty, previewed on the page.
pub(super) async fn preview(app: &App, snapshot: &Snapshot, form: &[u8]) -> Reply {
    let mut fields = form_fields(form);
    let mut field = |name: &str| fields.remove(name).unwrap_or_default();
    let (payload, sample, source) = (field("payload"), field("sample"), field("source"));
    page(
        app,
        snapshot,
        Asked {
            preview: Some((payload, sample, source)),
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
    if let Some((payload, sample, source)) = asked.preview {
        let zone = &snapshot.config.sources.hertzbeat_timezone;
        let given = samples::sample(&sample, now, zone);
        let (payload, source) = match (payload.trim().is_empty(), given) {
            (true, Some(json)) => (json, samples::source_of(&sample)),
            _ => (payload, Source::named(&source).unwrap_or_default()),
        };
        match ingest::parse_from(source, payload.as_bytes(), zone, now) {
            Ok(notification) => {
                view.preview = Some(view::preview(preview::preview(
                    &snapshot.config,
                    &notification,
                    now,
                )));
            }
            Err(error) => {
                status = StatusCode::BAD_REQUEST;
                view.preview_error = Some(error.to_string());
            }
        }
        view.chosen_sample = sample;
        view.chosen_source = source.as_str();
        view.payload = payload;
    }
    PAGE.answer(status, &view)
}

/// The status page's template.
static PAGE: HtmlPage = HtmlPage::new("the status page", "page.html", include_str!("page.html"));
