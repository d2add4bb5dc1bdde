//! The validation state every part of the config is checked with: [`Checker`] collects
//! errors with their `file:line:column` positions instead of stopping at the first, and
//! offers the checks the parts share (a value, a key, a positive duration, a file, a
//! credential inline or in a file). What is checked lives beside it: the whole file in
//! `check.rs`, robots in `robots.rs`, strategies in `strategies.rs`, and so on, each as
//! an `impl Checker`.

use std::path::PathBuf;
use std::time::Duration;

use super::values::duration;
use super::{ConfigError, Path, Segment, SourceMap};

/// Validation state: collects errors with their positions while building the validated types.
pub(super) struct Checker {
    pub(super) file: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) map: SourceMap,
    pub(super) errors: Vec<ConfigError>,
}

impl Checker {
    pub(super) fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            position: self.map.position(path),
            message: message.into(),
        });
    }

    /// Records `result`'s error at `path`, passing its value on.
    pub(super) fn check<T>(&mut self, path: &Path, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(path, message)).ok()
    }

    /// The duration `text` at `path`, which must be longer than zero.
    pub(super) fn positive_duration(&mut self, path: &Path, text: &str) -> Option<Duration> {
        let parsed = self.check(path, duration(text))?;
        if parsed.is_zero() {
            self.error(path, format!("{path} must be longer than 0s"));
            return None;
        }
        Some(parsed)
    }

    pub(super) fn unknown_key(&mut self, path: &Path) {
        let (parent, key) = match path.0.split_last() {
            Some((Segment::Key(key), parent)) => (Path(parent.to_vec()), key.clone()),
            _ => (Path::default(), path.to_string()),
        };
        let within = if parent.0.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {parent}")
        };
        self.error(path, format!("unknown key `{key}` {within}"));
    }

    /// An empty keyword is "contained" in every text, so it would let messages out
    /// without a real one.
    pub(super) fn check_keywords(&mut self, at: &Path, keywords: &[String]) {
        if keywords.iter().any(|k| k.trim().is_empty()) {
            self.error(at, "keywords must not be empty strings");
        }
    }

    pub(super) fn resolve(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub(super) fn read_file(&mut self, at: &Path, file: &str) -> Option<String> {
        let full = self.resolve(file);
        let read = std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read {}: {e}", full.display()));
        self.check(at, read)
    }

    /// A credential given inline as `key` or in the file named by `key_file` (the two
    /// values of `given`), trimmed, with where it was given. `None` when neither is given,
    /// or both (an error, reported for `owner`).
    pub(super) fn inline_or_file(
        &mut self,
        at: &Path,
        owner: &str,
        key: &str,
        given: (Option<String>, Option<String>),
    ) -> Option<(Path, String)> {
        let file_key = format!("{key}_file");
        match given {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    format!("{owner} has both `{key}` and `{file_key}`; keep one"),
                );
                None
            }
            (Some(value), None) => Some((at.key(key), value.trim().to_owned())),
            (None, Some(file)) => {
                let at = at.key(&file_key);
                let value = self.read_file(&at, &file)?;
                Some((at, value.trim().to_owned()))
            }
        }
    }
}
