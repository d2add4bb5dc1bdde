//! The server's HTML pages (the status page, the action pages): a minijinja template
//! compiled on first use, with every value HTML-escaped, answered as `text/html`.

use std::sync::OnceLock;

use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::{Reply, reply};

/// One page's template.
pub(super) struct HtmlPage {
    /// What the page is, for the answer when it does not render ("the status page").
    what: &'static str,
    /// The template's name; it ends in `.html`, so every value is HTML-escaped unless
    /// the template marks it `safe`.
    name: &'static str,
    source: &'static str,
    compiled: OnceLock<Result<Environment<'static>, String>>,
}

impl HtmlPage {
    pub(super) const fn new(what: &'static str, name: &'static str, source: &'static str) -> Self {
        Self {
            what,
            name,
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The page filled in with `context`, answered with `status`; 500 if it does not
    /// render.
    pub(super) fn answer(&self, status: StatusCode, context: &impl Serialize) -> Reply {
        match self.render(context) {
            Ok(html) => {
                let mut response = reply(status, html);
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            Err(error) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{} did not render: {error}", self.what),
            ),
        }
    }

    fn render(&self, context: &impl Serialize) -> Result<String, String> {
        let env = self.compiled.get_or_init(|| {
            let mut env = Environment::new();
            env.add_template(self.name, self.source)
                .map_err(|e| e.to_string())?;
            Ok(env)
        });
        let env = env.as_ref().map_err(Clone::clone)?;
        env.get_template(self.name)
            .and_then(|template| template.render(Value::from(Serde(context))))
            .map_err(|e| e.to_string())
    }
}
