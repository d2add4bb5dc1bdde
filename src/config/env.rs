//! `${VAR}` expansion from the environment, done on the text before YAML parsing so that
//! it works in any value, quoted or not.
//!
//! `${VAR:-default}` uses `default` when `VAR` is unset or empty, which makes a variable
//! optional. `$$` stands for a literal `$`. Comments are left alone, so documentation in
//! the config may mention `${VAR}`; a `#` inside quotes or inside a `|`/`>` block (a
//! Markdown heading in a template) is text, not a comment. Values are inserted verbatim; a value containing a newline is
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
    // Indentation of the line that opened the block scalar we are in, if any.
    let mut block_parent: Option<usize> = None;
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        let in_block = block_parent.is_some_and(|parent| blank || indent > parent);
        if !in_block {
            block_parent = None;
        }
        let mut scan = LineScan {
            in_block,
            ..LineScan::default()
        };
        let mut chars = line.char_indices().peekable();
        while let Some((offset, c)) = chars.next() {
            let in_comment = scan.code_end.is_some();
            scan.see(offset, c);
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
        if !in_block && opens_block(&line[..scan.code_end.unwrap_or(line.len())]) {
            block_parent = Some(indent);
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

/// Whether a line's code (without its comment) ends in a block scalar indicator:
/// `key: |`, `- >-`, `text: |2`.
fn opens_block(code: &str) -> bool {
    let code = code.trim_end();
    let indicator = code.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    (indicator.ends_with('|') || indicator.ends_with('>'))
        && indicator[..indicator.len() - 1]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == ':' || c == '-')
}

/// Enough of YAML's lexing to tell a comment from a `#` inside a quoted value.
/// A quote opens a quoted scalar only where a scalar can start (`key: "..."`,
/// `- '...'`, `["..."]`); elsewhere, as in `don't`, it is an ordinary character.
/// Inside single quotes `''` is an escaped quote.
#[derive(Default)]
struct LineScan {
    /// The line is inside a block scalar: all of it is text.
    in_block: bool,
    quote: Option<char>,
    escaped: bool,
    /// A single quote just ended; a second `'` right after reopens it (`''`).
    single_just_closed: bool,
    previous: Option<char>,
    /// Where the comment starts, once one has.
    code_end: Option<usize>,
}

impl LineScan {
    fn see(&mut self, offset: usize, c: char) {
        if self.in_block || self.code_end.is_some() {
            return;
        }
        let at_token_start = self
            .previous
            .is_none_or(|p| p.is_whitespace() || "[{,".contains(p));
        let reopens_single = std::mem::take(&mut self.single_just_closed) && c == '\'';
        match self.quote {
            Some('"') if self.escaped => self.escaped = false,
            Some('"') if c == '\\' => self.escaped = true,
            Some('\'') if c == '\'' => {
                self.quote = None;
                self.single_just_closed = true;
            }
            Some(q) if c == q => self.quote = None,
            Some(_) => {}
            None if reopens_single => self.quote = Some('\''),
            None if c == '#' && at_token_start => self.code_end = Some(offset),
            None if (c == '"' || c == '\'') && at_token_start => self.quote = Some(c),
            None => {}
        }
        self.previous = Some(c);
    }
}
