//! The documentation is run, as rustdoc runs doc examples: every fenced
//! block of README.md, of the book (`docs/src/`) and of the files the book
//! includes (SECURITY.md, BENCHMARKS.md) is executed or loaded, by what its
//! info string says it is, and every link of the built book leads to a page
//! and an anchor that exist. An indented block, or a fenced one without an
//! info string this file knows, fails: nothing is shown that no test reads
//! unless it says so (`text`, `norun`), and there are few of those.
//!
//! | info string | what is done with the block |
//! |---|---|
//! | `console` | each `$ anneval …` command is parsed by the binary's own parser; each `$ scripts/…` names an executable script |
//! | `console run` | and each command runs, from a scratch folder linking the repository's folders, and must succeed (`exit=N`: exit with N) |
//! | `console usage` | a synopsis: each `--option` in it is one of its subcommand's |
//! | `rust kernel`, `cpp kernel`, `c kernel` | compiled and scored on both engines; recall at ef 10 at least 0.9 |
//! | `cpp prepend` | put before the C++ reference kernel, which must then compile and score |
//! | `toml file=PATH` | is the file at PATH, which a test loads |
//! | `json` | parses as JSON |
//! | `yaml workflow` | parses as YAML (PyYAML in `.venv`), and each `anneval` command in it parses |
//! | `LANG trainer=NAME` | read by `python/trainer_tests` through `book_block(PAGE, INFO)` and loaded there by the trainer's own code |
//! | `text` | shown, not run: a program's output, a layout, a formula |
//! | `LANG norun` | not run: the text around it says why |

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anneval::Verdict;
use anneval::compile::Language;
use anneval::evaluator::{Engine, Quiet};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// Blocks shown and not run, at most: each is output, a layout or a
/// formula, or says why it is not run.
const MAX_NOT_RUN: usize = 16;

struct Block {
    /// The file, relative to the repository, and the block's first line.
    at: String,
    /// The page, relative to `docs/src/` (for book pages).
    page: Option<String>,
    /// `None` for an indented block.
    info: Option<String>,
    text: String,
}

impl Block {
    fn language(&self) -> &str {
        self.info
            .as_deref()
            .and_then(|i| i.split_whitespace().next())
            .unwrap_or("")
    }

    /// Whether the info string holds the word `attribute`.
    fn has(&self, attribute: &str) -> bool {
        self.info
            .as_deref()
            .is_some_and(|i| i.split_whitespace().skip(1).any(|a| a == attribute))
    }

    /// The value of `name=value` in the info string.
    fn attribute(&self, name: &str) -> Option<&str> {
        self.info
            .as_deref()?
            .split_whitespace()
            .skip(1)
            .find_map(|a| {
                a.split_once('=')
                    .filter(|(k, _)| *k == name)
                    .map(|(_, v)| v)
            })
    }
}

/// What became of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Executed: commands run, kernels compiled and scored.
    Run,
    /// Loaded by what reads it: a parser, a trainer's loader, a file it is.
    Loaded,
    /// Shown, not run.
    NotRun,
}

/// The markdown files: README, the book's pages, and what they include.
fn documents() -> Vec<(PathBuf, Option<String>)> {
    let root = common::repo_root();
    let mut files: Vec<(PathBuf, Option<String>)> = ["README.md", "SECURITY.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| (root.join(f), None))
        .collect();
    let book = root.join("docs/src");
    for path in files_under(&book, "md") {
        let page = path.strip_prefix(&book).unwrap().display().to_string();
        files.push((path, Some(page)));
    }
    files
}

/// The files under `dir`, at any depth, whose extension is `extension`,
/// sorted.
fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn blocks_of(path: &Path, page: Option<String>) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let rel = path
        .strip_prefix(common::repo_root())
        .unwrap()
        .display()
        .to_string();
    let mut out = Vec::new();
    let mut open: Option<(usize, Option<String>, String)> = None;
    for (event, range) in Parser::new_ext(&text, Options::all()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => Some(info.trim().to_string()),
                    CodeBlockKind::Indented => None,
                };
                open = Some((range.start, info, String::new()));
            }
            Event::Text(t) if open.is_some() => open.as_mut().unwrap().2.push_str(&t),
            Event::End(TagEnd::CodeBlock) => {
                let (start, info, body) = open.take().unwrap();
                let line = text[..start].matches('\n').count() + 1;
                out.push(Block {
                    at: format!("{rel}:{line}"),
                    page: page.clone(),
                    info,
                    text: body,
                });
            }
            _ => {}
        }
    }
    out
}

/// The commands of a `console` block: each line after `$ `, joined with the
/// lines a trailing `\` continues it onto.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(mut command) = line.strip_prefix("$ ").map(str::to_string) else {
            continue;
        };
        while command.ends_with('\\') {
            command.pop();
            command.push(' ');
            command.push_str(lines.next().unwrap_or("").trim());
        }
        out.push(command);
    }
    out
}

/// A command's words as a POSIX shell splits them (quotes, backslashes),
/// up to a `#` comment; no expansion.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The program and arguments of a command, after its `NAME=value`
/// assignments.
fn program(command: &str) -> Vec<String> {
    words(command)
        .into_iter()
        .skip_while(|w| {
            w.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        })
        .collect()
}

fn is_anneval(program: &str) -> bool {
    program == "anneval" || program.ends_with("/anneval")
}

/// Parses an `anneval` command line with the binary's own parser.
fn parse_anneval(args: &[String]) -> Result<(), String> {
    match anneval::cli::command().try_get_matches_from(args) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Checks a `console` block's commands, and runs them if `run`.
fn console(block: &Block, scratch: &Path) -> Result<Outcome, String> {
    let run = block.has("run");
    let list = commands(&block.text);
    if list.is_empty() {
        return Err("a console block without a `$ ` command".into());
    }
    for command in &list {
        let args = program(command);
        let Some(first) = args.first() else {
            return Err(format!("an empty command: {command:?}"));
        };
        if is_anneval(first) {
            parse_anneval(&args).map_err(|e| format!("`{command}`: {e}"))?;
        } else if let Some(script) = first.strip_prefix("scripts/") {
            let path = common::repo_root().join("scripts").join(script);
            let executable = std::fs::metadata(&path).is_ok_and(|m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            });
            if !executable {
                return Err(format!("`{command}`: no executable {}", path.display()));
            }
            if run {
                return Err(format!("`{command}`: scripts are not run from the docs"));
            }
        } else if !block.has("norun") {
            return Err(format!(
                "`{command}`: only anneval and scripts/ commands are checked; mark the block norun"
            ));
        }
    }
    if block.has("norun") {
        return Ok(Outcome::NotRun);
    }
    if !run {
        return Ok(Outcome::Loaded);
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_anneval")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let expected: i32 = block
        .attribute("exit")
        .map_or(Ok(0), str::parse)
        .map_err(|e| format!("exit=: {e}"))?;
    for command in &list {
        let out = Command::new("timeout")
            .args(["600", "bash", "-c", command])
            .current_dir(scratch)
            .env("PATH", &path)
            .env("ANNEVAL_CACHE", common::cache_dir())
            .env("ANNEVAL_DATA", scratch.join("data"))
            .env_remove("ANNEVAL_NATIVE_CPU")
            .output()
            .unwrap();
        if out.status.code() != Some(expected) {
            return Err(format!(
                "`{command}` exited with {} (the book says {expected}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(Outcome::Run)
}

/// A `console usage` synopsis: every `--option` is its subcommand's.
fn usage(block: &Block) -> Result<Outcome, String> {
    let text = block.text.replace(['[', ']', '|'], " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.first() != Some(&"anneval") {
        return Err("a usage synopsis starts with `anneval`".into());
    }
    let root = anneval::cli::command();
    let mut command = &root;
    for w in &words[1..] {
        match command.find_subcommand(w) {
            Some(sub) => command = sub,
            None => break,
        }
    }
    let known: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .chain(["--help".into(), "--version".into()])
        .collect();
    for w in words.iter().filter(|w| w.starts_with("--")) {
        if !known.contains(*w) {
            return Err(format!(
                "`{w}` is not an option of `{}`",
                command.get_name()
            ));
        }
    }
    Ok(Outcome::Loaded)
}

/// Compiles and scores a kernel on both engines.
fn kernel(block: &Block, language: Language, text: String) -> Result<Outcome, String> {
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let candidate = common::source_in(language, &block.at, text);
    let entries = [
        (candidate.clone(), Engine::Wasm),
        (candidate, Engine::Native),
    ];
    for eval in evaluator.evaluate_entries(&entries, data, &common::quick(), &Quiet) {
        if eval.verdict != Verdict::Ok {
            return Err(format!(
                "{}: {}: {}",
                eval.engine, eval.verdict, eval.message
            ));
        }
        let recall = eval.max_recall.unwrap_or(0.0);
        if recall < 0.9 {
            return Err(format!("{}: recall {recall} at ef 10", eval.engine));
        }
    }
    Ok(Outcome::Run)
}

/// A block marked `trainer=NAME` must be read by the trainer tests.
fn trainer(block: &Block, readers: &str) -> Result<Outcome, String> {
    let page = block
        .page
        .as_deref()
        .ok_or("trainer blocks live in the book")?;
    let call = format!(
        "book_block(\"{page}\", \"{}\")",
        block.info.as_deref().unwrap()
    );
    if readers.contains(&call) {
        Ok(Outcome::Loaded)
    } else {
        Err(format!(
            "no trainer test reads it: python/trainer_tests has no {call}"
        ))
    }
}

/// A GitHub Actions workflow: YAML that PyYAML loads, whose anneval
/// commands parse.
fn workflow(block: &Block) -> Result<Outcome, String> {
    let python = common::repo_root().join(".venv/bin/python");
    let mut child = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e} (scripts/setup makes it)", python.display()))?;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(block.text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "not YAML: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut runs = Vec::new();
    for job in doc["jobs"].as_object().ok_or("no jobs")?.values() {
        for step in job["steps"].as_array().ok_or("a job without steps")? {
            if let Some(run) = step["run"].as_str() {
                runs.push(run.to_string());
            }
        }
    }
    let gated: Vec<&String> = runs.iter().filter(|r| r.contains("anneval ")).collect();
    if gated.is_empty() {
        return Err("no step runs anneval".into());
    }
    for run in gated {
        let args = program(run.trim());
        if !is_anneval(&args[0]) {
            return Err(format!("`{run}`: a step runs anneval as its only command"));
        }
        parse_anneval(&args).map_err(|e| format!("`{run}`: {e}"))?;
    }
    Ok(Outcome::Loaded)
}

fn check(block: &Block, scratch: &Path, readers: &str) -> Result<Outcome, String> {
    let Some(info) = block.info.as_deref() else {
        return Err("an indented block: fence it with an info string".into());
    };
    if block.attribute("trainer").is_some() {
        return trainer(block, readers);
    }
    match block.language() {
        "console" if block.has("usage") => usage(block),
        "console" => console(block, scratch),
        "rust" if block.has("kernel") => kernel(block, Language::Rust, block.text.clone()),
        "cpp" if block.has("kernel") => kernel(block, Language::Cpp, block.text.clone()),
        "c" if block.has("kernel") => kernel(block, Language::C, block.text.clone()),
        "cpp" if block.has("prepend") => kernel(
            block,
            Language::Cpp,
            format!("{}{}", block.text, Language::Cpp.reference()),
        ),
        "toml" if block.attribute("file").is_some() => {
            let file = common::repo_root().join(block.attribute("file").unwrap());
            let on_disk =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            if on_disk != block.text {
                return Err(format!("differs from {}", file.display()));
            }
            anneval::codebase::Codebase::load(file.parent().unwrap())
                .map_err(|e| format!("{e:#}"))?;
            Ok(Outcome::Loaded)
        }
        "json" => serde_json::from_str::<serde_json::Value>(&block.text)
            .map(|_| Outcome::Loaded)
            .map_err(|e| format!("not JSON: {e}")),
        "yaml" if block.has("workflow") => workflow(block),
        "text" => Ok(Outcome::NotRun),
        _ if block.has("norun") => Ok(Outcome::NotRun),
        _ => Err(format!("no test knows what to do with ```{info}")),
    }
}

/// A scratch folder whose entries link the repository's own (but not
/// `target/` or `.git`), so commands read the repository's files and write
/// their own outputs elsewhere.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::repo_root()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("data")).unwrap();
    dir
}

#[test]
fn every_block_of_the_readme_and_the_book_is_run_or_loaded() {
    let scratch = scratch();
    let readers: String = std::fs::read_dir(common::repo_root().join("python/trainer_tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let blocks: Vec<Block> = documents()
        .into_iter()
        .flat_map(|(path, page)| blocks_of(&path, page))
        .collect();
    let count = blocks.len();
    // Two at a time: the commands and kernels run are most of this test's
    // time, and each measurement claims a core of its own.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(block) = blocks.get(i) else { break };
                    let started = std::time::Instant::now();
                    let result = check(block, scratch.path(), &readers);
                    let seconds = started.elapsed().as_secs_f64();
                    results.lock().unwrap().push((i, result, seconds));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, ..)| *i);
    let mut failures = Vec::new();
    let mut outcomes: BTreeMap<Outcome, Vec<String>> = BTreeMap::new();
    for (i, result, seconds) in results {
        let block = &blocks[i];
        let label = format!(
            "{} ```{}",
            block.at,
            block.info.as_deref().unwrap_or("(indented)")
        );
        match result {
            Ok(Outcome::Run) => outcomes
                .entry(Outcome::Run)
                .or_default()
                .push(format!("{label} ({seconds:.1} s)")),
            Ok(outcome) => outcomes.entry(outcome).or_default().push(label),
            Err(e) => failures.push(format!("{label}: {e}")),
        }
    }
    for (outcome, labels) in &outcomes {
        eprintln!("{outcome:?}: {}", labels.len());
        for label in labels {
            eprintln!("  {label}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(count > 0);
    let not_run = outcomes.get(&Outcome::NotRun).map_or(0, Vec::len);
    assert!(
        not_run <= MAX_NOT_RUN,
        "{not_run} blocks are not run (at most {MAX_NOT_RUN}): {:?}",
        outcomes.get(&Outcome::NotRun)
    );
}

/// Every `href` and `src` of the built book that stays inside it leads to a
/// file that exists and, with a `#fragment`, to an element of that id; the
/// README's relative links lead to files that exist. The book is built by
/// mdBook into `$ANNEVAL_BOOK_DIR` (scripts/docs) or a scratch folder.
#[test]
fn the_books_links_lead_to_pages_and_anchors_that_exist() {
    let root = common::repo_root();
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os("ANNEVAL_BOOK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.path().join("book"));
    let built = Command::new("mdbook")
        .arg("build")
        .arg(root.join("docs"))
        .arg("--dest-dir")
        .arg(&out)
        .output()
        .expect("mdbook is not installed: run scripts/setup");
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "mdbook build failed:\n{log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "mdbook build warned:\n{log}"
    );
    let pages = files_under(&out, "html");
    let ids = |path: &Path| -> BTreeSet<String> {
        let html = std::fs::read_to_string(path).unwrap_or_default();
        html.split(" id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(String::from)
            .collect()
    };
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        for attribute in [" href=\"", " src=\""] {
            for link in html
                .split(attribute)
                .skip(1)
                .filter_map(|s| s.split('"').next())
            {
                // Outside the book, or the site's root (404.html's home link).
                if link.contains("://")
                    || link.starts_with("mailto:")
                    || link.starts_with('/')
                    || link.is_empty()
                {
                    continue;
                }
                let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
                let file = file.split('?').next().unwrap();
                let target = if file.is_empty() {
                    page.clone()
                } else {
                    let t = page.parent().unwrap().join(file);
                    if t.is_dir() { t.join("index.html") } else { t }
                };
                checked += 1;
                let at = page.strip_prefix(&out).unwrap().display().to_string();
                if !target.exists() {
                    broken.push(format!("{at}: {link}: no such file"));
                } else if !fragment.is_empty()
                    && target.extension().is_some_and(|e| e == "html")
                    && !ids(&target).contains(fragment)
                {
                    broken.push(format!("{at}: {link}: no element with id {fragment:?}"));
                }
            }
        }
    }
    // The README is read on GitHub, beside the files it names.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (event, _) in Parser::new_ext(&readme, Options::all()).into_offset_iter() {
        if let Event::Start(Tag::Link { dest_url, .. }) = event {
            if dest_url.contains("://") {
                continue;
            }
            let file = dest_url.split('#').next().unwrap();
            checked += 1;
            if !file.is_empty() && !root.join(file).exists() {
                broken.push(format!("README.md: {dest_url}: no such file"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        pages.len() > 20 && checked > 100,
        "{} pages, {checked} links",
        pages.len()
    );
}
