//! Label matchers in Alertmanager's syntax: `name="value"`, `name!="value"`,
//! `name=~"regex"`, `name!~"regex"`.
//!
//! Semantics follow Alertmanager: regexes are anchored at both ends, a label the alert
//! does not have matches as the empty string, and the value may be left unquoted.
//! Parsing happens once, at config load; matching is a plain function with no I/O.

use std::fmt;

use regex::Regex;

use crate::ingest::LabelSet;

/// One compiled label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: Op,
    value: String,
    /// Compiled, anchored form of `value` for `=~` and `!~`.
    regex: Option<Regex>,
}

/// The four matching operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: the label equals the value.
    Equal,
    /// `!=`: the label differs from the value.
    NotEqual,
    /// `=~`: the label matches the anchored regex.
    Regex,
    /// `!~`: the label does not match the anchored regex.
    NotRegex,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
        }
    }
}

/// Why a matcher does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// No operator was found after the label name.
    #[error("matcher {0:?} has no operator: expected one of =, !=, =~, !~")]
    NoOperator(String),
    /// The label name is empty or has characters Prometheus does not allow.
    #[error("matcher {0:?} has an invalid label name")]
    BadName(String),
    /// The quoted value is not closed or has an unknown escape.
    #[error("matcher {0:?} has a badly quoted value")]
    BadQuoting(String),
    /// The regex does not compile.
    #[error("matcher {matcher:?} has an invalid regex: {reason}")]
    BadRegex {
        /// The matcher as written.
        matcher: String,
        /// The regex engine's explanation, first line only.
        reason: String,
    },
}

impl Matcher {
    /// Parses one matcher such as `severity=~"critical|page"`.
    pub fn parse(input: &str) -> Result<Self, MatcherError> {
        let text = input.trim();
        let name_end = text
            .find(|c: char| c == '=' || c == '!' || c == '~' || c.is_whitespace())
            .ok_or_else(|| MatcherError::NoOperator(input.to_owned()))?;
        let name = &text[..name_end];
        if !is_label_name(name) {
            return Err(MatcherError::BadName(input.to_owned()));
        }
        let rest = text[name_end..].trim_start();
        let (op, rest) = [
            ("=~", Op::Regex),
            ("!~", Op::NotRegex),
            ("!=", Op::NotEqual),
            ("=", Op::Equal),
        ]
        .into_iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|rest| (op, rest)))
        .ok_or_else(|| MatcherError::NoOperator(input.to_owned()))?;
        let value =
            unquote(rest.trim()).ok_or_else(|| MatcherError::BadQuoting(input.to_owned()))?;
        Matcher::compiled(input, name, op, value)
    }

    /// The matcher `name`, `op`, `value`, as parsed from elsewhere (a silence of
    /// Alertmanager's API).
    pub fn new(name: &str, op: Op, value: &str) -> Result<Self, MatcherError> {
        let input = format!("{name}{}{value:?}", op.as_str());
        if !is_label_name(name) {
            return Err(MatcherError::BadName(input));
        }
        Matcher::compiled(&input, name, op, value.to_owned())
    }

    /// The matcher, its regex compiled; `input` names it in an error.
    fn compiled(input: &str, name: &str, op: Op, value: String) -> Result<Self, MatcherError> {
        let regex = match op {
            Op::Regex | Op::NotRegex => Some(Regex::new(&format!("^(?:{value})$")).map_err(
                |e| MatcherError::BadRegex {
                    matcher: input.to_owned(),
                    reason: regex_error_summary(&e.to_string()),
                },
            )?),
            Op::Equal | Op::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            regex,
        })
    }

    /// The label it matches.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The value or regex, unquoted.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the labels satisfy this matcher; a missing label counts as "".
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let actual = labels.get(&self.name).map_or("", String::as_str);
        let equal = match &self.regex {
            Some(re) => re.is_match(actual),
            None => actual == self.value,
        };
        equal == matches!(self.op, Op::Equal | Op::Regex)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Removes surrounding double quotes and resolves `\"`, `\\` and `\n`; an unquoted
/// value is taken as is.
fn unquote(raw: &str) -> Option<String> {
    let Some(inner) = raw.strip_prefix('"') else {
        return (!raw.contains('"')).then(|| raw.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '"' => value.push('"'),
                '\\' => value.push('\\'),
                'n' => value.push('\n'),
                // Regexes need their own escapes (`\d`, `\.`) to survive unchanged.
                other => {
                    value.push('\\');
                    value.push(other);
                }
            },
            '"' => return None,
            c => value.push(c),
        }
    }
    Some(value)
}

/// The regex crate explains errors over several lines with a caret diagram; the last line
/// says what is wrong, which is what fits in a one-line config error.
fn regex_error_summary(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(text)
        .trim_start_matches("error: ")
        .to_owned()
}
