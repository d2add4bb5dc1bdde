//! Every relative link and `#anchor` in README.md, ARCHITECTURE.md and `docs/` resolves,
//! and so does every alert's `runbook_url`: a page that moves or a heading that is renamed
//! fails here, not in a reader's browser. Anchors follow GitHub's rules (lower case,
//! punctuation other than `-` and `_` dropped, letters of any script kept, spaces to `-`,
//! `-1`, `-2` … for repeats). Fenced code and code spans hold no links. Other sites are
//! not fetched, but a link to this repository on GitHub (as a `runbook_url` is) must name
//! a file and a heading here. Each page of `docs/` lists its `##` sections in its contents.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

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

/// A link that does not resolve, as a failure lists it: `file:line: link (why)`.
#[derive(Debug, PartialEq)]
struct Broken {
    file: String,
    line: usize,
    link: String,
    why: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} ({})",
            self.file, self.line, self.link, self.why
        )
    }
}

/// What a markdown file holds for this check.
#[derive(Default)]
struct Page {
    /// (line, destination) of every link, image and reference definition.
    links: Vec<(usize, String)>,
    /// (level, anchor) of every heading, in order.
    headings: Vec<(usize, String)>,
    /// Every anchor: the headings' and those of HTML `id`/`name` attributes.
    anchors: HashSet<String>,
}

/// GitHub's anchor for a heading's text, before repeats are numbered.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text a reader sees in a heading's markdown: code spans kept as written, link
/// destinations and HTML tags left out.
fn heading_text(markdown: &str) -> String {
    let chars: Vec<char> = markdown.chars().collect();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|&&c| c == '`').count();
            if let Some(end) = closing_backticks(&chars, i + run, run) {
                text.extend(&chars[i + run..end]);
                i = end + run;
                continue;
            }
            i += run;
        } else if chars[i] == ']' && chars.get(i + 1) == Some(&'(') {
            let close = chars[i..].iter().position(|&c| c == ')');
            i += close.map_or(1, |close| close + 1);
        } else if chars[i] == '<'
            && chars
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '/')
        {
            let close = chars[i..].iter().position(|&c| c == '>');
            i += close.map_or(1, |close| close + 1);
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    text.trim().to_owned()
}

/// Where the run of exactly `run` backticks that closes a code span starts, if any.
fn closing_backticks(chars: &[char], from: usize, run: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let here = chars[i..].iter().take_while(|&&c| c == '`').count();
            if here == run {
                return Some(i);
            }
            i += here;
        } else {
            i += 1;
        }
    }
    None
}

/// The opening fence of a fenced code block: its character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let line = line.trim_start();
    let c = line.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let run = line.chars().take_while(|&x| x == c).count();
    let info = &line[run..];
    (run >= 3 && !(c == '`' && info.contains('`'))).then_some((c, run))
}

/// An ATX heading's level and markdown text.
fn atx_heading(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let line = &line[indent..];
    let level = line.chars().take_while(|&c| c == '#').count();
    let rest = &line[level..];
    if indent > 3
        || !(1..=6).contains(&level)
        || !(rest.is_empty() || rest.starts_with([' ', '\t']))
    {
        return None;
    }
    let rest = rest.trim();
    let without_closing = rest.trim_end_matches('#');
    let text = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing
    } else {
        rest
    };
    Some((level, text.trim()))
}

/// Whether a paragraph that starts with `line` can be a setext heading's text.
fn starts_a_plain_paragraph(line: &str) -> bool {
    let t = line.trim_start();
    let numbered = t.split_once(['.', ')']).is_some_and(|(n, rest)| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && rest.starts_with(' ')
    });
    !(numbered
        || t.starts_with(['#', '>', '|', '<'])
        || t.starts_with("- ")
        || t.starts_with("* ")
        || t.starts_with("+ ")
        || line.starts_with("    "))
}

/// Reads a markdown file's headings, anchors and links.
fn parse(text: &str) -> Page {
    let mut page = Page::default();
    // Prose lines with their numbers; a line of code is None, and ends a paragraph.
    let mut lines: Vec<Option<&str>> = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        match open {
            Some((c, run)) => {
                let t = line.trim();
                if t.len() >= run && t.chars().all(|x| x == c) {
                    open = None;
                }
                lines.push(None);
            }
            None => {
                open = fence(line);
                lines.push(if open.is_some() { None } else { Some(line) });
            }
        }
    }

    let mut occurrences: HashMap<String, usize> = HashMap::new();
    let mut add_heading = |page: &mut Page, level: usize, markdown: &str| {
        let base = slug(&heading_text(markdown));
        let mut anchor = base.clone();
        while occurrences.contains_key(&anchor) {
            let n = occurrences.entry(base.clone()).or_default();
            *n += 1;
            anchor = format!("{base}-{n}");
        }
        occurrences.insert(anchor.clone(), 0);
        page.anchors.insert(anchor.clone());
        page.headings.push((level, anchor));
    };
    for (i, line) in lines.iter().enumerate() {
        let Some(line) = line else { continue };
        if let Some((level, markdown)) = atx_heading(line) {
            add_heading(&mut page, level, markdown);
            continue;
        }
        let underline = line.trim();
        let setext = match underline.chars().next() {
            Some(c @ ('=' | '-')) if underline.chars().all(|x| x == c) => {
                Some(if c == '=' { 1 } else { 2 })
            }
            _ => None,
        };
        if let Some(level) = setext {
            // The paragraph right above, if there is one, is the heading's text.
            let start = lines[..i]
                .iter()
                .rposition(|l| l.is_none_or(|l| l.trim().is_empty() || atx_heading(l).is_some()))
                .map_or(0, |p| p + 1);
            let paragraph: Vec<&str> = lines[start..i].iter().flatten().map(|l| l.trim()).collect();
            if !paragraph.is_empty() && starts_a_plain_paragraph(lines[start].unwrap_or_default()) {
                add_heading(&mut page, level, &paragraph.join(" "));
            }
        }
    }

    // Links, block by block: code spans may run over line ends within a paragraph.
    let mut block = String::new();
    let mut first_line = 1;
    for (i, line) in lines.iter().chain([&None]).enumerate() {
        match line {
            Some(line) if !line.trim().is_empty() => {
                if block.is_empty() {
                    first_line = i + 1;
                }
                block.push_str(line);
                block.push('\n');
            }
            _ => {
                read_links(&block, first_line, &mut page);
                block.clear();
            }
        }
    }
    page
}

/// Collects the links of one block of prose, whose first line is `first_line`.
fn read_links(block: &str, first_line: usize, page: &mut Page) {
    // Code spans become spaces, so nothing inside them is read and offsets keep their lines.
    let chars: Vec<char> = block.chars().collect();
    let mut prose = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|&&c| c == '`').count();
            if let Some(end) = closing_backticks(&chars, i + run, run) {
                for c in &mut prose[i..end + run] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = end + run;
                continue;
            }
            i += run;
        } else {
            i += 1;
        }
    }
    let line_of = |at: usize| first_line + prose[..at].iter().filter(|&&c| c == '\n').count();
    let text: String = prose.iter().collect();

    // Reference definitions: `[label]: destination` at the start of a line.
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if line.len() - t.len() <= 3
            && t.starts_with('[')
            && !t.starts_with("[^")
            && let Some((_, rest)) = t.split_once("]:")
            && let Some(target) = rest.split_whitespace().next()
        {
            let target = target.trim_start_matches('<').trim_end_matches('>');
            page.links
                .push((line_of(text[..at].chars().count()), target.to_owned()));
        }
        at += line.len();
    }

    // Inline links and images: `](destination)`.
    for (start, _) in text.match_indices("](") {
        let rest = text[start + 2..].trim_start();
        let target: String = if let Some(quoted) = rest.strip_prefix('<') {
            quoted.split('>').next().unwrap_or_default().to_owned()
        } else {
            let mut depth = 0;
            rest.chars()
                .take_while(|&c| {
                    match c {
                        '(' => depth += 1,
                        ')' if depth == 0 => return false,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    !c.is_whitespace()
                })
                .collect()
        };
        page.links
            .push((line_of(text[..start].chars().count()), target));
    }

    // HTML: `<img src="…">`, `<a href="…">`, and anchors made with `id` or `name`.
    for (start, _) in text.match_indices('<') {
        let tag = &text[start
            ..text[start..]
                .find('>')
                .map_or(text.len(), |end| start + end)];
        for attribute in ["src", "href", "id", "name"] {
            for quote in ['"', '\''] {
                let key = format!(" {attribute}={quote}");
                if let Some(value) = tag
                    .split_once(&key)
                    .and_then(|(_, v)| v.split(quote).next())
                {
                    if matches!(attribute, "id" | "name") {
                        page.anchors.insert(value.to_owned());
                    } else {
                        page.links
                            .push((line_of(text[..start].chars().count()), value.to_owned()));
                    }
                }
            }
        }
    }
}

/// `%XX` escapes decoded, as a browser does before it looks for a file or an anchor.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a link names a scheme (`https:`, `mailto:` …) or a host (`//host`).
fn is_absolute(target: &str) -> bool {
    let scheme = target.split(':').next().unwrap_or_default();
    target.starts_with("//")
        || (target.contains(':')
            && scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
}

/// Resolves links of the files under `root`, reading each markdown target once.
struct Checker {
    root: PathBuf,
    pages: HashMap<PathBuf, Page>,
}

impl Checker {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            pages: HashMap::new(),
        }
    }

    /// The parsed markdown file at `path` (relative to the root).
    fn page(&mut self, path: &Path) -> &Page {
        let full = self.root.join(path);
        self.pages
            .entry(path.to_owned())
            .or_insert_with(|| parse(&std::fs::read_to_string(full).unwrap_or_default()))
    }

    /// Every broken link of the markdown file at `file` (relative to the root).
    fn check_page(&mut self, file: &Path) -> Vec<Broken> {
        let links = self.page(file).links.clone();
        let mut broken = Vec::new();
        for (line, link) in links {
            if let Err(why) = self.resolve(file, &link) {
                broken.push(Broken {
                    file: file.display().to_string(),
                    line,
                    link,
                    why,
                });
            }
        }
        broken
    }

    /// Checks one link found in `from` (relative to the root).
    fn resolve(&mut self, from: &Path, link: &str) -> Result<(), String> {
        if link.is_empty() {
            return Err("empty link".to_owned());
        }
        let (base, target) = match REPOSITORY_URLS
            .iter()
            .find_map(|url| link.strip_prefix(url))
        {
            Some(path) => (PathBuf::new(), path),
            None if is_absolute(link) => return Ok(()),
            None => match link.strip_prefix('/') {
                Some(from_root) => (PathBuf::new(), from_root),
                None => (from.parent().unwrap_or(Path::new("")).to_owned(), link),
            },
        };
        let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
        let path = percent_decode(path.split('?').next().unwrap_or_default());
        let anchor = percent_decode(anchor);
        let file = if path.is_empty() {
            from.to_owned()
        } else {
            normalize(&base.join(&path))?
        };
        let full = self.root.join(&file);
        if !full.exists() {
            return Err(format!("{} does not exist", file.display()));
        }
        if anchor.is_empty() {
            return Ok(());
        }
        let markdown = full
            .extension()
            .is_some_and(|e| e == "md" || e == "markdown");
        let line_anchor = anchor.strip_prefix('L').is_some_and(|l| {
            l.split("-L")
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        if full.is_dir() || !markdown {
            return if line_anchor && full.is_file() {
                Ok(())
            } else {
                Err(format!("#{anchor}: {} has no headings", file.display()))
            };
        }
        let anchor = anchor.strip_prefix("user-content-").unwrap_or(&anchor);
        if self.page(&file).anchors.contains(anchor) {
            Ok(())
        } else {
            Err(format!(
                "no heading of {} has the anchor #{anchor}",
                file.display()
            ))
        }
    }

    /// Every `runbook_url` of the rule file at `file` that names no section here.
    fn check_runbook_urls(&mut self, file: &Path) -> Vec<Broken> {
        let text = std::fs::read_to_string(self.root.join(file)).unwrap_or_default();
        let mut broken = Vec::new();
        let mut found = false;
        for (i, line) in text.lines().enumerate() {
            let Some((_, url)) = line.split_once("runbook_url:") else {
                continue;
            };
            found = true;
            let url = url.trim().trim_matches(['"', '\'']);
            let result = if REPOSITORY_URLS.iter().any(|prefix| url.starts_with(prefix)) {
                self.resolve(file, url)
            } else {
                Err("not a page of this repository on GitHub".to_owned())
            };
            if let Err(why) = result {
                let file = file.display().to_string();
                broken.push(Broken {
                    file,
                    line: i + 1,
                    link: url.to_owned(),
                    why,
                });
            }
        }
        if !found {
            let file = file.display().to_string();
            let why = "no runbook_url found".to_owned();
            broken.push(Broken {
                file,
                line: 0,
                link: String::new(),
                why,
            });
        }
        broken
    }
}

/// `path` without `.` and `..`, or an error if it leaves the repository.
fn normalize(path: &Path) -> Result<PathBuf, String> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !normal.pop() {
                    return Err(format!("{} leaves the repository", path.display()));
                }
            }
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// README.md, ARCHITECTURE.md and every markdown file under `docs/`, relative to `root`.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten() {
            let path = dir.join(entry.unwrap().file_name());
            if root.join(&path).is_dir() {
                walk(root, &path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    walk(root, Path::new("docs"), &mut files);
    files.sort();
    files
}

/// Every broken link of the documentation and the rule files under `root`.
fn broken_links(root: &Path, rule_files: &[&str]) -> Vec<Broken> {
    let mut checker = Checker::new(root);
    let mut broken = Vec::new();
    for file in markdown_files(root) {
        if !root.join(&file).is_file() {
            let why = "missing".to_owned();
            broken.push(Broken {
                file: file.display().to_string(),
                line: 0,
                link: String::new(),
                why,
            });
            continue;
        }
        broken.extend(checker.check_page(&file));
    }
    for file in rule_files {
        broken.extend(checker.check_runbook_urls(Path::new(file)));
    }
    broken
}

fn report(broken: &[Broken]) -> String {
    broken.iter().map(|b| format!("\n  {b}")).collect()
}

#[test]
fn every_link_in_the_docs_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    assert!(
        files.contains(&PathBuf::from("docs/runbook.md")),
        "{files:?}"
    );
    let broken = broken_links(&root, &RULE_FILES);
    assert!(
        broken.is_empty(),
        "{} links do not resolve:{}",
        broken.len(),
        report(&broken)
    );
}

#[test]
fn every_docs_page_lists_its_sections() {
    let root = repo_root();
    let mut missing = Vec::new();
    for file in markdown_files(&root)
        .into_iter()
        .filter(|f| f.starts_with("docs"))
    {
        let page = parse(&std::fs::read_to_string(root.join(&file)).unwrap());
        let linked: HashSet<&str> = page
            .links
            .iter()
            .filter_map(|(_, l)| l.strip_prefix('#'))
            .collect();
        for (_, anchor) in page.headings.iter().filter(|(level, _)| *level == 2) {
            if !linked.contains(anchor.as_str()) {
                missing.push(format!("\n  {}: #{anchor}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "sections missing from their page's contents:{}",
        missing.concat()
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let check = |heading: &str, expected: &str| {
        assert_eq!(slug(&heading_text(heading)), expected, "{heading}");
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
}

#[test]
fn repeated_headings_are_numbered_and_code_is_not_read() {
    let page = parse(
        "# A\n## A\n### A\n## A-1\n\nSetext\n======\n\n```md\n# Not a heading [x](fenced.md)\n```\n\n\
         Text with `[code](span.md)` and ``a [multi-line\ncode](span.md) span``, then [real](b.md#c).\n\
         [ref]: <d.md>\n<img src=\"e.png\"> <a id=\"custom\"></a>\n",
    );
    let mut anchors: Vec<&str> = page.anchors.iter().map(String::as_str).collect();
    anchors.sort_unstable();
    assert_eq!(anchors, ["a", "a-1", "a-1-1", "a-2", "custom", "setext"]);
    let links: Vec<(usize, &str)> = page.links.iter().map(|(l, t)| (*l, t.as_str())).collect();
    assert_eq!(links, [(15, "d.md"), (14, "b.md#c"), (16, "e.png")]);
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
         [up](../outside.md)\n\n[def]: docs/gone-too.md\n",
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
    let broken: Vec<String> = broken_links(&root, &["deploy/rules.yaml"])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        broken,
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
