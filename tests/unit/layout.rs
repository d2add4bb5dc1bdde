//! The shape of `src/` that ARCHITECTURE.md promises: modules depend on their siblings
//! without cycles, at the top (the one-way flow) and inside every module, and no file grows
//! past 400 lines unless its `//!` says why. Imports are read from the source text
//! (`crate::` and `super::` paths), so an import through a parent's re-export counts as an
//! import of the parent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    (root, files)
}

/// The module path of a file: `src/queue/durable/mod.rs` → `["queue", "durable"]`,
/// `src/config/check.rs` → `["config", "check"]`, `src/lib.rs` → `[]`.
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// The module paths `text` (the source of module `this`) refers to, as written after
/// `crate::` or `super::` and in `{…}` groups after them, comments left out: `crate::a::B`
/// gives `["a", "B"]`, `super::c::D` in `x::y` gives `["x", "c", "D"]`. Items are kept as
/// the last segments; [`target`] finds the module among them.
fn references(this: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = next_anchor(rest) {
        let (base, after) = anchor_base(this, &rest[at..]);
        rest = after;
        paths(&base, rest, &mut found);
    }
    found
}

/// Where the next `crate::` or `super::` starts that is not part of a longer name.
fn next_anchor(text: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = ["crate::", "super::"]
            .iter()
            .filter_map(|anchor| text[from..].find(anchor).map(|i| i + from))
            .min()?;
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            from = at + 1;
            continue;
        }
        return Some(at);
    }
}

/// The module a path starting at `text` (`crate::…` or `super::super::…`) is relative to,
/// and the text after the anchor.
fn anchor_base<'t>(this: &[String], text: &'t str) -> (Vec<String>, &'t str) {
    if let Some(rest) = text.strip_prefix("crate::") {
        return (Vec::new(), rest);
    }
    let mut base = this.to_vec();
    let mut rest = text;
    while let Some(after) = rest.strip_prefix("super::") {
        base.pop();
        rest = after;
    }
    (base, rest)
}

/// Adds to `found` the paths written at the start of `text` below `base`: one path, or
/// one per item of a `{…}` group (nested groups too).
fn paths(base: &[String], text: &str, found: &mut BTreeSet<Vec<String>>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    paths(base, &group[item_start..i], found);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    paths(base, &group[item_start..i], found);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let segment: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if segment.is_empty() || segment == "self" {
        if !base.is_empty() {
            found.insert(base.to_vec());
        }
        return;
    }
    let mut path = base.to_vec();
    path.push(segment.clone());
    match text[segment.len()..].strip_prefix("::") {
        Some(rest) => paths(&path, rest, found),
        None => {
            found.insert(path);
        }
    }
}

/// The deepest module of `modules` that `path` names: `["queue", "Envelope"]` →
/// `["queue"]`.
fn target(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

#[test]
fn references_are_found_in_paths_and_groups() {
    let this = ["a".to_owned(), "b".to_owned()];
    let text = "use crate::a::X;\nuse crate::{b, c::{D, e::F}};\n// crate::g\nlet x = crate::h::y();\n\
                use super::{c, d::E};\nuse super::super::f::G;\nmy_crate::i::J;";
    let found: Vec<String> = references(&this, text)
        .into_iter()
        .map(|path| path.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "a::X", "a::c", "a::d::E", "b", "c::D", "c::e::F", "f::G", "h::y"
        ]
    );
}

/// Every sibling module each module imports from, at every depth: an import from `a::b`
/// (in `src/a/b.rs` or below) of `a::c::X` is the edge `b → c` in the graph of `a`'s
/// children; an import of `d::Y` from there is `a → d` at the top. A module importing its
/// own parent or child adds no edge: parents declare and re-export their children.
fn graphs() -> BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> {
    let (root, files) = src();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&root, f)).collect();
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_path(&root, file);
        // The binary only calls into the library.
        if file.ends_with("main.rs") && from.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        if let Some((last, parent)) = from.split_last() {
            graphs
                .entry(parent.to_vec())
                .or_default()
                .entry(last.clone())
                .or_default();
        }
        for path in references(&from, &text) {
            let to = target(&modules, &path);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
                continue;
            };
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(a.clone())
                .or_default()
                .insert(b.clone());
        }
    }
    graphs
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back_at_any_depth() {
    let graphs = graphs();
    let top = &graphs[&Vec::new()];
    assert!(top.len() > 10, "modules found: {:?}", top.keys());
    assert!(
        top["server"].contains("accept"),
        "the scan sees imports: {top:?}"
    );
    let config = &graphs[&vec!["config".to_owned()]];
    assert!(
        config["robots"].contains("checker"),
        "the scan sees imports between submodules: {config:?}"
    );
    for (parent, graph) in &graphs {
        if let Some(cycle) = cycle(graph) {
            panic!(
                "modules of crate::{} import each other: {}",
                parent.join("::"),
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("app", &["deliver"][..]),
        ("deliver", &["queue", "app"][..]),
        ("queue", &[][..]),
    ]
    .into_iter()
    .map(|(m, uses)| (m.to_owned(), uses.iter().map(|u| (*u).to_owned()).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap(), ["app", "deliver", "app"]);
}

#[test]
fn no_file_is_longer_than_400_lines_without_saying_why() {
    let (_, files) = src();
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            let lines = text.lines().count();
            let says_why = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .any(|l| l.contains("400 lines"));
            (lines > MAX_LINES && !says_why).then(|| format!("{}: {lines}", file.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines: {too_long:#?}"
    );
}
