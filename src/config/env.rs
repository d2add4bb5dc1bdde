//! `${VAR}` expansion from the environment, done on the text before YAML parsing so that
//! it works in any value, quoted or not.
//!
//! `${VAR:-default}` uses `default` when `VAR` is unset or empty, which makes a variable
//! optional. `$$` stands for a literal `$`. Comments are left alone, so documentation in the config
//! may mention `${VAR}`. Values are inserted verbatim; a value containing a newline is
//! refused because it would shift the line numbers every later error refers to.

/// A `${VAR}` that could not be expanded, with its 1-based position in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    /// Line of the `$`.
    pub line: u32,
    /// Column of the `$`, in characters.
    pub column: u32,
    /// What is wrong, naming the variable.
    pub message: String,
}

/// Expands every `${NAME}` and `${NAME:-default}` in `text` with `lookup`, collecting every error.
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<EnvError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        let mut scan = LineScan::default();
        let mut chars = line.char_indices().peekable();
        while let Some((offset, c)) = chars.next() {
            let in_comment = scan.in_comment;
            scan.see(c);
            if in_comment || c != '$' {
                out.push(c);
                continue;
            }
            let error = |message: String| EnvError {
                line: line_index as u32 + 1,
                column: line[..offset].chars().count() as u32 + 1,
                message,
            };
            match chars.peek() {
                Some((_, '$')) => {
                    chars.next();
                    out.push('$');
                }
                Some((_, '{')) => {
                    chars.next();
                    let rest = &line[offset + 2..];
                    let Some(close) = rest.find('}') else {
                        errors.push(error("`${` is not closed by `}`".to_owned()));
                        break;
                    };
                    let (name, default) = match rest[..close].split_once(":-") {
                        Some((name, default)) => (name, Some(default)),
                        None => (&rest[..close], None),
                    };
                    for _ in 0..=close {
                        chars.next();
                    }
                    if !is_var_name(name) {
                        errors.push(error(format!(
                            "`${{{name}}}` is not a valid environment variable reference"
                        )));
                        continue;
                    }
                    let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
                    match value.or_else(|| default.map(str::to_owned)) {
                        Some(value) if value.contains('\n') => errors.push(error(format!(
                            "environment variable {name} contains a newline; \
                             use a *_file setting for multi-line values"
                        ))),
                        Some(value) => out.push_str(&value),
                        None => {
                            errors.push(error(format!("environment variable {name} is not set")))
                        }
                    }
                }
                _ => out.push('$'),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Enough of YAML's lexing to tell a comment from a `#` inside a quoted value.
/// A quote opens a quoted scalar only where a scalar can start (`key: "..."`,
/// `- '...'`, `["..."]`); elsewhere, as in `don't`, it is an ordinary character.
#[derive(Default)]
struct LineScan {
    quote: Option<char>,
    escaped: bool,
    previous: Option<char>,
    in_comment: bool,
}

impl LineScan {
    fn see(&mut self, c: char) {
        let at_token_start = self
            .previous
            .is_none_or(|p| p.is_whitespace() || "[{,".contains(p));
        match self.quote {
            Some('"') if self.escaped => self.escaped = false,
            Some('"') if c == '\\' => self.escaped = true,
            Some(q) if c == q => self.quote = None,
            Some(_) => {}
            None if c == '#' && at_token_start => self.in_comment = true,
            None if (c == '"' || c == '\'') && at_token_start => self.quote = Some(c),
            None => {}
        }
        self.previous = Some(c);
    }
}
