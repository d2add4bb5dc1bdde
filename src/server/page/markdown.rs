//! A markdown message's text as HTML for the preview's chat bubble: CommonMark as
//! pulldown-cmark reads it, which is close to, not the same as, what DingTalk's client
//! shows. The text carries alert labels from scraped targets, so raw HTML in it is shown
//! as text, links keep only `http`, `https` and `dingtalk` addresses, and images are
//! shown as their address instead of being fetched: the page loads nothing from outside.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// `markdown` as HTML, safe to put in the page.
pub(super) fn to_html(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH).flat_map(|event| {
        let replaced = match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            Event::Start(Tag::Image { dest_url, .. }) => {
                return vec![
                    Event::Text("[image ".into()),
                    Event::Text(dest_url),
                    Event::Text(": ".into()),
                ];
            }
            Event::End(TagEnd::Image) => Event::Text("]".into()),
            other => other,
        };
        vec![replaced]
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.to_ascii_lowercase();
    if ["http://", "https://", "dingtalk://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        url
    } else {
        CowStr::Borrowed("#")
    }
}
