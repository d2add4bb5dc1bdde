//! Commands as written: `list`, `ack <number>`, `silence <duration> <matchers>`,
//! `unsilence <id>`, `help`, each also in Chinese, and what a bad one is told.

use std::time::Duration;

use crate::config::parse_duration;
use crate::route::matcher::{Matcher as LabelMatcher, Op};

/// The longest silence a command makes.
const MAX_SILENCE: Duration = Duration::from_secs(30 * 86_400);
/// What `help` and every reply to a bad command say.
pub(super) const USAGE: &str = "Commands (命令):\n\n\
- `list` / `列表`: the alert groups that fire, numbered\n\
- `ack <number>` / `认领 <number>`: take group `<number>` of `list` on\n\
- `silence <duration> <matchers>` / `静默`: e.g. `silence 2h alertname=\"DiskFull\" instance=~\"db.*\"`\n\
- `unsilence <silence id>` / `取消静默`: expire a silence made here\n\
- `help` / `帮助`: this";

/// A command as written.
#[derive(Debug, Clone)]
pub enum Command {
    /// The groups that fire.
    List,
    /// Acknowledge group `number` (from 1) of `list`.
    Ack(usize),
    /// Silence what `matchers` select for `length`.
    Silence {
        /// How long.
        length: Duration,
        /// What, in Alertmanager's matcher syntax.
        matchers: Vec<LabelMatcher>,
    },
    /// Expire the silence with this id.
    Unsilence(String),
    /// What the commands are.
    Help,
}

impl Command {
    /// The `action` label of `actions_total`.
    pub fn action(&self) -> &'static str {
        match self {
            Command::List => "list",
            Command::Ack(_) => "acknowledge",
            Command::Silence { .. } => "silence",
            Command::Unsilence(_) => "unsilence",
            Command::Help => "help",
        }
    }
}

/// `text`, what followed the mention of the robot, as a command; or what is wrong with it,
/// with how to write it.
pub fn parse(text: &str) -> Result<Command, String> {
    let text = text.trim().trim_start_matches('/');
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(word, rest)| (word, rest.trim()));
    match word.to_lowercase().as_str() {
        "list" | "列表" if rest.is_empty() => Ok(Command::List),
        "help" | "帮助" | "" => Ok(Command::Help),
        "ack" | "认领" => match rest.parse::<usize>() {
            Ok(number) if number > 0 => Ok(Command::Ack(number)),
            _ => Err(format!(
                "`ack` takes the number `list` shows a group under, not {rest:?}"
            )),
        },
        "unsilence" | "取消静默"
            if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(Command::Unsilence(rest.to_owned()))
        }
        "unsilence" | "取消静默" => {
            Err("`unsilence` takes one silence id (letters, digits and -)".to_owned())
        }
        "silence" | "静默" => {
            let (length, matchers) = rest
                .split_once(char::is_whitespace)
                .ok_or("`silence` takes a duration and at least one matcher")?;
            let length = parse_duration(length)?;
            if length < Duration::from_secs(60) {
                return Err("a silence must last at least a minute".to_owned());
            }
            if length > MAX_SILENCE {
                return Err(
                    "a silence made here lasts at most 30d; make a longer one in Alertmanager"
                        .to_owned(),
                );
            }
            Ok(Command::Silence {
                length,
                matchers: matchers_of(matchers)?,
            })
        }
        "list" | "列表" => Err("`list` takes nothing after it".to_owned()),
        _ => Err(format!("there is no command {word:?}")),
    }
}

/// Matchers in Alertmanager's syntax, separated by spaces or commas, optionally in braces:
/// `{alertname="DiskFull", instance=~"db.*"}`; spaces around an operator are allowed.
fn matchers_of(text: &str) -> Result<Vec<LabelMatcher>, String> {
    let text = text.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let mut pieces: Vec<String> = Vec::new();
    let (mut piece, mut quoted, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' | ' ' | '\t' if !quoted => {
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            _ => {}
        }
        piece.push(c);
    }
    pieces.push(piece);
    // `a = "b"` is one matcher: a piece that starts or ends at an operator joins the next.
    let mut joined: Vec<String> = Vec::new();
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        let joins_last = piece.starts_with(['=', '!', '~'])
            || joined.last().is_some_and(|last| last.ends_with(['=', '~']));
        match joined.last_mut() {
            Some(last) if joins_last => last.push_str(&piece),
            _ => joined.push(piece),
        }
    }
    if joined.is_empty() {
        return Err("`silence` needs at least one matcher, such as alertname=\"DiskFull\"".into());
    }
    let matchers = joined
        .iter()
        .map(|m| LabelMatcher::parse(m).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if matchers.iter().all(|m| m.op() != Op::Equal) {
        return Err("a silence needs at least one `name=\"value\"` matcher, so that it cannot cover every alert".into());
    }
    Ok(matchers)
}
