//! Text from scraped targets cannot change what a group sees: label values in the
//! built-in templates (and through the `escape` filter in custom ones) add no link,
//! image, heading, HTML or line of their own, read as CommonMark (pulldown-cmark) since
//! DingTalk documents no grammar of its own; annotations, written by rule authors, keep
//! their markdown. A template that would run without end fails on its fuel and the
//! built-in template is used.

use std::sync::mpsc;
use std::time::Duration;

use alertmanager_dingtalk::ingest::{self, Notification};
use alertmanager_dingtalk::render::{Extras, Renderer, TemplateSource};
use jiff::tz::TimeZone;
use pulldown_cmark::{Event, Parser, Tag};

use crate::robot;

/// What hostile label values try.
const HOSTILE: [(&str, &str); 6] = [
    ("instance", "[点我领奖](http://evil.example/phish)"),
    ("pod", "![x](http://evil.example/p.png)"),
    ("job", "x\n# Urgent: call http://evil.example\n"),
    (
        "team",
        "<font color=red>boss</font><img src=http://evil.example/i.png>",
    ),
    ("owner", "ok\n@13800000000 @all"),
    ("namespace", "<http://evil.example/auto>"),
];

fn hostile_group() -> Notification {
    let labels: serde_json::Map<String, serde_json::Value> = HOSTILE
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .chain([(
            "alertname".to_owned(),
            "[Disk](http://evil.example/n)".into(),
        )])
        .collect();
    let body = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
        "groupLabels": {}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing", "labels": labels,
            "annotations": {"summary": "See the [runbook](http://runbooks.example/disk)"},
            "startsAt": "2024-05-01T00:00:00Z", "generatorURL": "http://prometheus.example/graph",
            "fingerprint": "1"
        }]
    });
    ingest::parse(body.to_string().as_bytes()).unwrap()
}

fn render(template: &str, extra: &[TemplateSource]) -> String {
    let renderer = Renderer::new(extra, TimeZone::UTC).unwrap();
    let notification = hostile_group();
    let now = notification.alerts[0].starts_at;
    renderer
        .render(
            template,
            &notification,
            &[0],
            &robot(&["HertzBeat"], &[]),
            &Extras::default(),
            now,
        )
        .text
}

/// What CommonMark reads in `markdown`: link and image targets, heading texts, raw HTML,
/// and the lines that start with `@`.
fn structure(markdown: &str) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let (mut targets, mut headings, mut html) = (Vec::new(), Vec::new(), Vec::new());
    let mut in_heading = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                targets.push(dest_url.to_string());
            }
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                headings.push(String::new());
            }
            Event::End(pulldown_cmark::TagEnd::Heading(_)) => in_heading = false,
            Event::Text(text) if in_heading => {
                if let Some(last) = headings.last_mut() {
                    last.push_str(&text);
                }
            }
            Event::Html(raw) | Event::InlineHtml(raw) => html.push(raw.to_string()),
            _ => {}
        }
    }
    let at_lines = markdown
        .lines()
        .filter(|line| line.trim_start().starts_with('@'))
        .map(str::to_owned)
        .collect();
    (targets, headings, html, at_lines)
}

fn check_inert(template: &str, text: &str) {
    let (targets, headings, html, at_lines) = structure(text);
    assert!(
        targets.iter().all(|t| !t.contains("evil.example")),
        "{template}: a link from a label: {targets:?}\n{text}"
    );
    assert!(
        targets.contains(&"http://runbooks.example/disk".to_owned()),
        "{template}: the annotation's link is kept: {targets:?}\n{text}"
    );
    assert!(
        headings.iter().all(|h| !h.contains("Urgent")),
        "{template}: a heading from a label: {headings:?}"
    );
    assert!(
        html.is_empty(),
        "{template}: HTML from a label: {html:?}\n{text}"
    );
    assert!(at_lines.is_empty(), "{template}: an @ line: {at_lines:?}");
    // The values are still shown, readably.
    assert!(
        text.contains("［点我领奖］(http://evil.example/phish)"),
        "{text}"
    );
}

#[test]
fn label_values_cannot_add_links_images_headings_html_or_mention_lines() {
    for template in ["default", "default-zh"] {
        check_inert(template, &render(template, &[]));
    }
}

#[test]
fn the_escape_filter_makes_label_values_inert_in_custom_templates() {
    let custom = TemplateSource {
        name: "custom".to_owned(),
        title: "t".to_owned(),
        text: "{% for a in alerts %}{% for k, v in a.labels|items %}- {{ k }}: {{ v|escape }}\n{% endfor %}{{ a.annotations.summary }}\n{% endfor %}"
            .to_owned(),
    };
    check_inert("custom", &render("custom", std::slice::from_ref(&custom)));
    // Without the filter, the same template links to the phishing page: the test sees it.
    let unescaped = TemplateSource {
        text: custom.text.replace("|escape", ""),
        ..custom
    };
    let (targets, ..) = structure(&render("custom", &[unescaped]));
    assert!(
        targets.iter().any(|t| t.contains("evil.example")),
        "{targets:?}"
    );
}

#[test]
fn a_template_that_would_run_without_end_falls_back_to_the_built_in_one() {
    let endless = TemplateSource {
        name: "endless".to_owned(),
        title: "t".to_owned(),
        text:
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}never"
                .to_owned(),
    };
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(render("endless", &[endless]));
    });
    let text = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the render ran out of its fuel instead of running on");
    assert!(
        !text.contains("never") && text.contains("HertzBeat"),
        "{text}"
    );
}
