//! The fuzz targets' regression corpus (`fuzz/regressions/<target>/`: the inputs any fuzz
//! run found to fail, and a seed or two) through the same checks as the targets
//! (`fuzz/checks.rs`), so a fixed finding stays fixed without nightly or cargo-fuzz.

#[path = "../../fuzz/checks.rs"]
#[allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared with the fuzz targets"
)]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&input));
        assert!(outcome.is_ok(), "{} fails again", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "nothing to replay in {}", dir.display());
}

#[test]
fn the_payload_parser_regressions_pass() {
    replay("payload", checks::payload);
}

#[test]
fn the_matcher_regressions_pass() {
    replay("matcher", checks::matcher);
}

#[test]
fn the_config_loader_regressions_pass() {
    replay("config", checks::config);
}

#[test]
fn the_render_regressions_pass() {
    replay("render", checks::render);
}
