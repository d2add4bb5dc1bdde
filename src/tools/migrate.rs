//! `migrate`: a prometheus-webhook-dingtalk config (`targets` with `url`, `secret`,
//! `mention`, `message`; `templates`, `default_message`, `timeout`) turned into an
//! equivalent `config.yaml`. Each target becomes a robot of the same name, so that
//! Alertmanager's `/dingtalk/{target}/send` URLs keep working unchanged. What cannot be
//! carried over (Go templates) is listed in comments at the top.
//!
//! The field names are those of prometheus-webhook-dingtalk's `config/config.go` and
//! `config.example.yml` (github.com/timonwong/prometheus-webhook-dingtalk). Values are
//! written as JSON strings, which YAML reads as double-quoted scalars, so no value can
//! break the output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// A prometheus-webhook-dingtalk config, as far as it can be carried over.
#[derive(Debug, Default)]
struct Source {
    timeout: Option<String>,
    no_builtin_template: bool,
    templates: Vec<String>,
    default_message: Option<SourceMessage>,
    targets: BTreeMap<String, Target>,
}

#[derive(Debug, Default)]
struct Target {
    url: Option<String>,
    secret: Option<String>,
    mention_all: bool,
    mobiles: Vec<String>,
    message: Option<SourceMessage>,
}

#[derive(Debug, Default)]
struct SourceMessage {
    title: Option<String>,
    text: Option<String>,
}

impl Source {
    /// Reads the fields out of the YAML as a JSON value (one generic deserializer for
    /// the whole file rather than one per type: the binary stays smaller).
    fn from_value(value: &Value) -> Self {
        let targets = value
            .get("targets")
            .and_then(Value::as_object)
            .map(|targets| {
                targets
                    .iter()
                    .map(|(name, target)| {
                        let mention = target.get("mention");
                        let target = Target {
                            url: string(target.get("url")),
                            secret: string(target.get("secret")),
                            mention_all: mention
                                .and_then(|m| m.get("all"))
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                            mobiles: strings(mention.and_then(|m| m.get("mobiles"))),
                            message: target.get("message").map(SourceMessage::from_value),
                        };
                        (name.clone(), target)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut templates = strings(value.get("templates"));
        templates.extend(string(value.get("template")));
        Source {
            timeout: string(value.get("timeout")),
            no_builtin_template: value
                .get("no_builtin_template")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            templates,
            default_message: value.get("default_message").map(SourceMessage::from_value),
            targets,
        }
    }
}

impl SourceMessage {
    fn from_value(value: &Value) -> Self {
        SourceMessage {
            title: string(value.get("title")),
            text: string(value.get("text")),
        }
    }
}

/// A string, or a number or boolean written where a string belongs (`timeout: 5`).
fn string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|i| string(Some(i))).collect())
        .unwrap_or_default()
}

/// Why a file could not be migrated.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct MigrateError {
    file: String,
    message: String,
}

/// Reads the prometheus-webhook-dingtalk config `file` and returns the equivalent
/// `config.yaml`.
pub fn migrate(file: &Path) -> Result<String, MigrateError> {
    let error = |message: String| MigrateError {
        file: file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| error(format!("cannot read: {e}")))?;
    // No unknown keys to report: prometheus-webhook-dingtalk reads its file with
    // `yaml.UnmarshalStrict`, so a file it runs with has none.
    let value: Value = crate::config::read_yaml(&text).map_err(error)?;
    let source = Source::from_value(&value);
    if source.targets.is_empty() {
        return Err(error("no `targets:`, nothing to migrate".to_owned()));
    }
    Ok(render(&file.display().to_string(), &source))
}

fn render(file: &str, source: &Source) -> String {
    let mut left_out = Vec::new();
    if !source.templates.is_empty() {
        left_out.push(format!("templates: {}", list(&source.templates)));
    }
    if source.no_builtin_template {
        left_out.push("no_builtin_template: true".to_owned());
    }
    if let Some(message) = &source.default_message {
        left_out.push(format!("default_message: {}", message_text(message)));
    }
    for (name, target) in &source.targets {
        if let Some(message) = &target.message {
            left_out.push(format!("targets.{name}.message: {}", message_text(message)));
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# config.yaml for alertmanager-dingtalk, migrated by `alertmanager-dingtalk migrate`\n\
         # from {file}.\n\
         # Each target is a robot of the same name, so Alertmanager's URLs\n\
         # http://HOST:8060/dingtalk/<target>/send keep working.\n\
         # Check it with: alertmanager-dingtalk check --config config.yaml"
    );
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "#\n# Not carried over: Go templates have no automatic translation, and messages\n\
             # use the built-in `default` template instead. docs/migrating.md, \"Go\n\
             # templates in minijinja\", shows the minijinja equivalents.\n#"
        );
        // One line each: the values are quoted, newlines escaped.
        for item in &left_out {
            let _ = writeln!(out, "#   - {item}");
        }
    }
    let _ = writeln!(
        out,
        "\nlisten: \"0.0.0.0:8060\"\n\n\
         # The bridge adds this keyword to every message that has none: set it to the custom\n\
         # keyword of your robots' security settings (or [] if they use none).\n\
         keywords: [HertzBeat]\n"
    );
    if let Some(timeout) = &source.timeout {
        let _ = writeln!(out, "dingtalk:\n  timeout: {}\n", quoted(timeout));
    }
    out.push_str("robots:\n");
    for (name, target) in &source.targets {
        let _ = writeln!(out, "  {}:", key(name));
        match &target.url {
            Some(url) => {
                let _ = writeln!(out, "    webhook: {}", quoted(url));
            }
            None => {
                let _ = writeln!(
                    out,
                    "    # the target has no url: give the robot's webhook here"
                );
                let _ = writeln!(out, "    webhook: \"\"");
            }
        }
        if let Some(secret) = target.secret.as_deref().filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "    secret: {}", quoted(secret));
        }
        if target.mention_all || !target.mobiles.is_empty() {
            let mobiles: Vec<String> = target.mobiles.iter().map(|m| quoted(m)).collect();
            let mut fields = Vec::new();
            if target.mention_all {
                fields.push("all: true".to_owned());
            }
            if !mobiles.is_empty() {
                fields.push(format!("mobiles: [{}]", mobiles.join(", ")));
            }
            let _ = writeln!(out, "    mention: {{ {} }}", fields.join(", "));
        }
    }
    out.push_str(
        "\n# prometheus-webhook-dingtalk does no routing: each Alertmanager receiver names its\n\
         # target in the URL. To route POST /alertmanager by labels instead, add strategies\n\
         # (docs/configuration.md, \"strategies[]\").\n\
         strategies: []\n",
    );
    out
}

fn message_text(message: &SourceMessage) -> String {
    let part = |name: &str, value: &Option<String>| {
        value.as_ref().map(|v| format!("{name} {}", quoted(v)))
    };
    [part("title", &message.title), part("text", &message.text)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", items.join(", "))
}

/// `name` as a mapping key: as it is when it is a plain word (prometheus-webhook-dingtalk
/// allows only those as target names), quoted otherwise.
fn key(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain { name.to_owned() } else { quoted(name) }
}

/// `value` as a YAML double-quoted scalar (JSON's string syntax is a subset).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}
