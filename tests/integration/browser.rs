//! Harness that runs a script of `tests/browser/` with node: playwright-core from npm
//! driving Debian's headless Chromium (`/usr/bin/chromium`, overridable with
//! `CHROMIUM`), never a downloaded browser. A script prints what it saw as one JSON
//! object and asserts nothing; the tests check it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What `script` printed, run with `env`. Blocks: call it from `spawn_blocking`.
pub fn run(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> Value {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (or .ci/run)"
    );
    testkit::installed("CHROMIUM", "/usr/bin/chromium", "chromium");
    let output = Command::new("node")
        .arg(browser.join(script))
        .envs(env.iter().copied())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser script {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
