//! Every relative link and `#anchor` in README.md, ARCHITECTURE.md and `docs/` resolves,
//! and so does every alert's `runbook_url`: a page that moves or a heading that is renamed
//! fails here, not in a reader's browser. pulldown-cmark reads the markdown (so code holds
//! no links); anchors follow GitHub's rules (lower case, punctuation other than `-` and `_`
//! dropped, letters of any script kept, spaces to `-`, `-1`, `-2` … for repeats). Other
//! sites are not fetched, but a link to this repository on GitHub (as a `runbook_url` is)
//! must name a file and a heading here. Each page of `docs/` lists its `##` sections in its
//! contents.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};

/// Links to this repository on GitHub: the rest of such a URL is a path from its root.
const REPOSITORY_URLS: [&str; 2] = [
    "https://github.com/alertmanager-dingtalk/alertmanager-dingtalk/blob/main/",
    "https://github.com/alertmanager-dingtalk/alertmanager-dingtalk/tree/main/",
];

/// The alerting rules whose `runbook_url`s must name a section of the runbook.
const RULE_FILES: [&str; 3] = [
    "deploy/prometheus/rules.yaml",
    "deploy/prometheus/rules.test.yaml",
    "deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml",
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a markdown file holds for this check.
#[derive(Default)]
struct Page {
    /// (line, destination) of every link, image and reference definition, by line.
    links: Vec<(usize, String)>,
    /// (level, anchor) of every heading, in order.
    headings: Vec<(HeadingLevel, String)>,
    /// Every anchor: the headings' and those of HTML `id`/`name` attributes.
    anchors: HashSet<String>,
}

/// GitHub's anchor for a heading's text, before repeats are numbered.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Reads a markdown file's links, headings and anchors, with GitHub's extensions (but not
/// heading attributes, which GitHub shows as text).
fn parse(text: &str) -> Page {
    let line = |at: usize| text[..at].matches('\n').count() + 1;
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM;
    let events = Parser::new_ext(text, options).into_offset_iter();
    let mut page = Page::default();
    // A reference link's destination is its definition's, checked once where it is defined.
    for (_, definition) in events.reference_definitions().iter() {
        let destination = definition.dest.to_string();
        page.links.push((line(definition.span.start), destination));
    }
    let mut heading: Option<String> = None;
    let mut occurrences: HashMap<String, usize> = HashMap::new();
    for (event, range) in events {
        match event {
            Event::Start(
                Tag::Link {
                    link_type: LinkType::Inline,
                    dest_url,
                    ..
                }
                | Tag::Image {
                    link_type: LinkType::Inline,
                    dest_url,
                    ..
                },
            ) => page.links.push((line(range.start), dest_url.into_string())),
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = &mut heading {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let mut anchor = base.clone();
                while occurrences.contains_key(&anchor) {
                    let n = occurrences.entry(base.clone()).or_default();
                    *n += 1;
                    anchor = format!("{base}-{n}");
                }
                occurrences.insert(anchor.clone(), 0);
                page.anchors.insert(anchor.clone());
                page.headings.push((level, anchor));
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                for (name, value) in html_attributes(&html) {
                    match name {
                        "href" | "src" => page.links.push((line(range.start), value.to_owned())),
                        "id" | "name" => {
                            page.anchors.insert(value.to_owned());
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    page.links.sort_by_key(|(line, _)| *line);
    page
}

/// The quoted attributes of raw HTML, as (name, value): `<a id="here">` has ("id", "here").
fn html_attributes(html: &str) -> impl Iterator<Item = (&str, &str)> {
    html.match_indices('=').filter_map(|(at, _)| {
        let name = html[..at].rsplit(char::is_whitespace).next()?;
        let value = &html[at + 1..];
        let quote = value.chars().next().filter(|c| matches!(c, '"' | '\''))?;
        Some((name, value[1..].split(quote).next()?))
    })
}

/// Resolves links of the files under `root`, reading each markdown target once.
struct Checker {
    root: PathBuf,
    pages: HashMap<PathBuf, Page>,
}

impl Checker {
    /// The parsed markdown file at `path` (relative to the root).
    fn page(&mut self, path: &Path) -> &Page {
        let full = self.root.join(path);
        self.pages
            .entry(path.to_owned())
            .or_insert_with(|| parse(&std::fs::read_to_string(full).unwrap_or_default()))
    }

    /// Checks one link found in `from` (relative to the root).
    fn resolve(&mut self, from: &Path, link: &str) -> Result<(), String> {
        let relative = matches!(
            url::Url::parse(link),
            Err(url::ParseError::RelativeUrlWithoutBase)
        ) && !link.starts_with("//");
        let (base, target) = match REPOSITORY_URLS.iter().find_map(|u| link.strip_prefix(u)) {
            Some(path) => (Path::new(""), path),
            None if link.is_empty() => return Err("empty link".to_owned()),
            None if !relative => return Ok(()),
            None => match link.strip_prefix('/') {
                Some(path) => (Path::new(""), path),
                None => (from.parent().unwrap_or(Path::new("")), link),
            },
        };
        let decode = |s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
        let path = decode(path.split('?').next().unwrap_or_default());
        let anchor = decode(anchor);
        let file = if path.is_empty() {
            from.to_owned()
        } else {
            normalize(&base.join(&*path))?
        };
        let full = self.root.join(&file);
        if !full.exists() {
            return Err(format!("{} does not exist", file.display()));
        }
        if anchor.is_empty() {
            return Ok(());
        }
        if full.is_file() && full.extension().is_some_and(|e| e == "md") {
            let anchor = anchor.strip_prefix("user-content-").unwrap_or(&anchor);
            if self.page(&file).anchors.contains(anchor) {
                return Ok(());
            }
            return Err(format!(
                "no heading of {} has the anchor #{anchor}",
                file.display()
            ));
        }
        // GitHub's line anchors of other files: `#L10`, `#L10-L20`.
        let lines = anchor.strip_prefix('L').is_some_and(|l| {
            l.split("-L")
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        if full.is_file() && lines {
            Ok(())
        } else {
            Err(format!("#{anchor}: {} has no headings", file.display()))
        }
    }
}

/// `path` without `.` and `..`, or an error if it leaves the repository.
fn normalize(path: &Path) -> Result<PathBuf, String> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !normal.pop() => {
                return Err(format!("{} leaves the repository", path.display()));
            }
            Component::ParentDir => {}
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// README.md, ARCHITECTURE.md and every markdown file under `docs/`, relative to `root`.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    let mut dirs = vec![PathBuf::from("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).into_iter().flatten() {
            let path = dir.join(entry.unwrap().file_name());
            if root.join(&path).is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every broken link of the documentation and the rule files under `root`, each as
/// `file:line: link (why)`.
fn broken_links(root: &Path, rule_files: &[&str]) -> Vec<String> {
    let mut checker = Checker {
        root: root.to_owned(),
        pages: HashMap::new(),
    };
    let mut broken = Vec::new();
    for file in markdown_files(root) {
        if !root.join(&file).is_file() {
            broken.push(format!("{}: missing", file.display()));
            continue;
        }
        for (line, link) in checker.page(&file).links.clone() {
            if let Err(why) = checker.resolve(&file, &link) {
                broken.push(format!("{}:{line}: {link} ({why})", file.display()));
            }
        }
    }
    for file in rule_files.iter().map(Path::new) {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let urls: Vec<(usize, &str)> = (text.lines().enumerate())
            .filter_map(|(i, line)| Some((i + 1, line.split_once("runbook_url:")?.1)))
            .map(|(line, url)| (line, url.trim().trim_matches(['"', '\''])))
            .collect();
        if urls.is_empty() {
            broken.push(format!("{}: no runbook_url found", file.display()));
        }
        for (line, url) in urls {
            let result = if REPOSITORY_URLS.iter().any(|u| url.starts_with(u)) {
                checker.resolve(file, url)
            } else {
                Err("not a page of this repository on GitHub".to_owned())
            };
            if let Err(why) = result {
                broken.push(format!("{}:{line}: {url} ({why})", file.display()));
            }
        }
    }
    broken
}

#[test]
fn every_link_in_the_docs_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    assert!(files.contains(&"docs/runbook.md".into()), "{files:?}");
    let broken = broken_links(&root, &RULE_FILES);
    assert!(
        broken.is_empty(),
        "{} links do not resolve:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}

#[test]
fn every_docs_page_lists_its_sections() {
    let root = repo_root();
    let mut missing = Vec::new();
    for file in markdown_files(&root)
        .iter()
        .filter(|f| f.starts_with("docs"))
    {
        let page = parse(&std::fs::read_to_string(root.join(file)).unwrap());
        let linked: HashSet<&str> = (page.links.iter())
            .filter_map(|(_, link)| link.strip_prefix('#'))
            .collect();
        for (_, anchor) in page.headings.iter().filter(|(l, _)| *l == HeadingLevel::H2) {
            if !linked.contains(anchor.as_str()) {
                missing.push(format!("{}: #{anchor}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "sections missing from their page's contents:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let check = |heading: &str, expected: &str| {
        let page = parse(&format!("## {heading}\n"));
        assert_eq!(page.headings, [(HeadingLevel::H2, expected.to_owned())]);
    };
    check("Top level", "top-level");
    check("Queued or passthrough?", "queued-or-passthrough");
    check("DingTalk's answers", "dingtalks-answers");
    check("`templates.<name>`", "templatesname");
    check("`strategies[]`", "strategies");
    check(
        "Custom (webhook) robots: `errcode`",
        "custom-webhook-robots-errcode",
    );
    check(
        "What is guaranteed (queued mode with `delivery.queue_dir`)",
        "what-is-guaranteed-queued-mode-with-deliveryqueue_dir",
    );
    check(
        "Runbook: AlertmanagerDingtalkDown",
        "runbook-alertmanagerdingtalkdown",
    );
    check(
        "[告警:1] 磁盘空间不足 · 级别 严重",
        "告警1-磁盘空间不足--级别-严重",
    );
    check("Émoji 🔥 and <b>tags</b>", "émoji--and-tags");
    check("See [the runbook](docs/runbook.md)", "see-the-runbook");
    check("Not an id {#custom}", "not-an-id-custom");
}

#[test]
fn repeated_headings_are_numbered_and_code_is_not_read() {
    let page = parse(
        "# A\n## A\n### A\n## A-1\n\nSetext\n======\n\n```md\n# Not a heading [x](fenced.md)\n```\n\n\
         Text with `[code](span.md)` and ``a [multi-line\ncode](span.md) span``, then [real](b.md#c)\n\
         and [used][ref].[^1]\n\n| Table | ![image](f.png) |\n| ----- | --------------- |\n\n\
         [ref]: <d.md>\n[unused]: g.md\n[^1]: A footnote, not a link.\n\n\
         Inline <img src=\"e.png\">\n\n<a name=\"custom\"></a>\n",
    );
    let mut anchors: Vec<&str> = page.anchors.iter().map(String::as_str).collect();
    anchors.sort_unstable();
    assert_eq!(anchors, ["a", "a-1", "a-1-1", "a-2", "custom", "setext"]);
    let links: Vec<(usize, &str)> = page.links.iter().map(|(l, t)| (*l, t.as_str())).collect();
    assert_eq!(
        links,
        [
            (14, "b.md#c"),
            (17, "f.png"),
            (20, "d.md"),
            (21, "g.md"),
            (24, "e.png")
        ]
    );
}

#[test]
fn broken_links_are_reported_with_file_and_line() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("doc_links_broken");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("deploy")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(root.join(path), text).unwrap();
    write(
        "README.md",
        "# Title\n\n[fine](docs/page.md#a-section), [gone](docs/gone.md), [wrong](docs/page.md#nope).\n\
         [top](#title) [none](#missing) [site](https://example.com/x) `[code](nowhere.md)`\n\
         [up](../outside.md) [used][def]\n\n[def]: docs/gone-too.md\n",
    );
    write("ARCHITECTURE.md", "# Architecture\n");
    write(
        "docs/page.md",
        "# Page\n\n## A section\n\n[back](../README.md#title)\n",
    );
    let repo = REPOSITORY_URLS[0];
    write(
        "deploy/rules.yaml",
        &format!(
            "- runbook_url: {repo}docs/page.md#a-section\n- runbook_url: {repo}docs/page.md#gone\n\
             - runbook_url: https://example.com/runbook\n"
        ),
    );
    assert_eq!(
        broken_links(&root, &["deploy/rules.yaml"]),
        [
            "README.md:3: docs/gone.md (docs/gone.md does not exist)",
            "README.md:3: docs/page.md#nope (no heading of docs/page.md has the anchor #nope)",
            "README.md:4: #missing (no heading of README.md has the anchor #missing)",
            "README.md:5: ../outside.md (../outside.md leaves the repository)",
            "README.md:7: docs/gone-too.md (docs/gone-too.md does not exist)",
            &format!(
                "deploy/rules.yaml:2: {repo}docs/page.md#gone (no heading of docs/page.md has the anchor #gone)"
            ),
            "deploy/rules.yaml:3: https://example.com/runbook (not a page of this repository on GitHub)",
        ]
    );
    std::fs::remove_dir_all(&root).unwrap();
}
