//! `migrate`: a prometheus-webhook-dingtalk config (`targets` with `url`, `secret`,
//! `mention`, `message`; `templates`, `default_message`, `timeout`) turned into an
//! equivalent `config.yaml`. Each target becomes a robot of the same name, so that
//! Alertmanager's `/dingtalk/{target}/send` URLs keep working unchanged. What cannot be
//! carried over (Go templates, unknown keys) is listed in comments at the top.
//!
//! The field names are those of prometheus-webhook-dingtalk's `config/config.go` and
//! `config.example.yml` (github.com/timonwong/prometheus-webhook-dingtalk). Values are
//! written as JSON strings, which YAML reads as double-quoted scalars, so no value can
//! break the output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

/// A prometheus-webhook-dingtalk config, as far as it can be carried over.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Source {
    timeout: Option<String>,
    no_builtin_template: bool,
    template: Option<String>,
    templates: Vec<String>,
    default_message: Option<SourceMessage>,
    targets: BTreeMap<String, Target>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Target {
    url: Option<String>,
    secret: Option<String>,
    mention: Option<SourceMention>,
    message: Option<SourceMessage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceMention {
    all: bool,
    mobiles: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceMessage {
    title: Option<String>,
    text: Option<String>,
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
    let mut unknown = Vec::new();
    let source: Source = serde_saphyr::with_deserializer_from_str(&text, |de| {
        serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
    })
    .map_err(|e| error(e.without_snippet().to_string()))?;
    if source.targets.is_empty() {
        return Err(error("no `targets:`, nothing to migrate".to_owned()));
    }
    Ok(render(&file.display().to_string(), &source, &unknown))
}

fn render(file: &str, source: &Source, unknown: &[String]) -> String {
    let mut left_out = Vec::new();
    let templates: Vec<&String> = source.template.iter().chain(&source.templates).collect();
    if !templates.is_empty() {
        left_out.push(format!("templates: {}", list(templates)));
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
    left_out.extend(unknown.iter().map(|key| format!("{key}: unknown key")));

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
             # use the built-in `default` template instead. README.md, \"Migrating from\n\
             # prometheus-webhook-dingtalk\", shows the minijinja equivalents.\n#"
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
        if let Some(mention) = &target.mention
            && (mention.all || !mention.mobiles.is_empty())
        {
            let mobiles: Vec<String> = mention.mobiles.iter().map(|m| quoted(m)).collect();
            let mut fields = Vec::new();
            if mention.all {
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
         # (README.md, \"strategies[]\").\n\
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

fn list(items: Vec<&String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| quoted(s)).collect();
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
