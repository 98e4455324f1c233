//! Finding the candidate kernel in a model's text, for callers that send
//! text rather than a candidate (`POST /get_reward`, OpenRLHF's remote
//! reward). The rules are the Python client's (`python/anneval/extract.py`);
//! both are checked against the same cases (`tests/data/extraction.json`).
//!
//! A block is a fenced one: three backticks, a tag of letters, digits and
//! `_+-`, optionally spaces and a file name (letters, digits and `_.+/-`),
//! optional spaces, a newline, the code, three backticks. A C or C++ kernel
//! of several files: when blocks of the language (or tagged `h`/`hpp`) name
//! files, one of them the kernel's (`kernel.cpp`, `kernel.c`) and another
//! any other, the kernel is those named blocks (the last block of each name
//! wins). Otherwise the last block tagged with the language wins; failing
//! that, the last block that looks like a kernel of that language. Code the prompt already holds is
//! never credited: the text after the prompt is searched when the prompt is
//! found in it, and otherwise blocks found verbatim in the prompt are
//! skipped. For a template's codebase (`template` in the options), a
//! completion is the named C or C++ blocks: the files it changes.

use std::collections::BTreeMap;

use crate::compile::Language;

/// A kernel found in a text.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Source(String),
    /// A C or C++ kernel of several files, by name.
    Files(BTreeMap<String, String>),
}

/// For a language with bundles: the kernel's file, and the extra tags a
/// named block (a header) may have.
fn bundle_entry(language: Language) -> Option<(&'static str, &'static [&'static str])> {
    match language {
        Language::Rust => None,
        Language::Cpp => Some(("kernel.cpp", &["h", "hpp"])),
        Language::C => Some(("kernel.c", &["h"])),
    }
}

/// The fence tags of a language's blocks, and what an untagged kernel in it
/// contains.
fn tags_and_marker(language: Language) -> (&'static [&'static str], &'static str) {
    match language {
        Language::Rust => (&["rust", "rs"], "impl Kernel for Index"),
        Language::Cpp => (&["cpp", "c++", "cc", "cxx"], "struct Index"),
        Language::C => (&["c"], "kernel_build("),
    }
}

const FENCE: &str = "```";

/// A fenced block: its tag, file name (or empty) and code.
struct Block<'a> {
    tag: &'a str,
    name: &'a str,
    code: &'a str,
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+-".contains(c)
}

/// Every fenced block of `text`, in order.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find(FENCE) {
        let open = at + offset;
        let after = &text[open + FENCE.len()..];
        let tag_len = after.find(|c: char| !is_tag_char(c)).unwrap_or(after.len());
        let spaced = after[tag_len..].trim_start_matches([' ', '\t']);
        let name_len = spaced
            .find(|c: char| !(is_tag_char(c) || "./".contains(c)))
            .unwrap_or(spaced.len());
        // A name follows the tag after a space.
        let named = tag_len > 0 && spaced.len() < after.len() - tag_len;
        if name_len > 0 && !named {
            at = open + 1;
            continue;
        }
        let name = &spaced[..name_len];
        let rest = spaced[name_len..].trim_start_matches([' ', '\t']);
        let Some(code) = rest.strip_prefix('\n') else {
            at = open + 1;
            continue;
        };
        let Some(close) = code.find(FENCE) else {
            at = open + 1;
            continue;
        };
        found.push(Block {
            tag: &after[..tag_len],
            name,
            code: &code[..close],
        });
        let code_start = text.len() - code.len();
        at = code_start + close + FENCE.len();
    }
    found
}

/// The blocks of `text` credited to the model: after the prompt, or not
/// found verbatim in it; empty blocks left out.
fn credited<'a>(text: &'a str, prompt: Option<&str>) -> Vec<Block<'a>> {
    let prompt = prompt.filter(|p| !p.trim().is_empty());
    let (searched, skip_prompt_code) = match prompt {
        Some(p) => match text.rfind(p) {
            Some(at) => (&text[at + p.len()..], None),
            None => (text, Some(p)),
        },
        None => (text, None),
    };
    blocks(searched)
        .into_iter()
        .filter(|b| !b.code.trim().is_empty())
        .filter(|b| skip_prompt_code.is_none_or(|p| !p.contains(b.code.trim())))
        .collect()
}

fn tagged(b: &Block, language: Language, extra: &[&str]) -> bool {
    let (tags, _) = tags_and_marker(language);
    let tag = b.tag.to_ascii_lowercase();
    tags.contains(&tag.as_str()) || extra.contains(&tag.as_str())
}

/// The named blocks of `language` (or its header tags) in `blocks`, by
/// name; the last block of a name wins.
fn named(blocks: &[Block], language: Language) -> BTreeMap<String, String> {
    let header_tags = bundle_entry(language).map_or(&[][..], |(_, tags)| tags);
    blocks
        .iter()
        .filter(|b| !b.name.is_empty() && tagged(b, language, header_tags))
        .map(|b| (b.name.to_string(), b.code.to_string()))
        .collect()
}

/// The kernel of `language` in `text` (see the module's rules), if any.
pub fn kernel(text: &str, language: Language, prompt: Option<&str>) -> Option<Found> {
    let credited = credited(text, prompt);
    if let Some((entry, _)) = bundle_entry(language) {
        let files = named(&credited, language);
        if files.contains_key(entry) && files.len() > 1 {
            return Some(Found::Files(files));
        }
    }
    let (_, marker) = tags_and_marker(language);
    credited
        .iter()
        .rev()
        .find(|b| tagged(b, language, &[]))
        .or_else(|| credited.iter().rev().find(|b| b.code.contains(marker)))
        .map(|b| Found::Source(b.code.to_string()))
}

/// The fence tags of a template's files: C and C++ sources and headers.
const TEMPLATE_TAGS: &[&str] = &["cpp", "c++", "cc", "cxx", "c", "h", "hpp"];

/// The files a completion changes in a template's codebase: its named
/// blocks of C or C++ (` ```cpp glass/searcher.hpp`, ` ```h util.h`), the
/// last of each name winning; `None` when it names none.
pub fn changed_files(text: &str, prompt: Option<&str>) -> Option<BTreeMap<String, String>> {
    let files: BTreeMap<String, String> = credited(text, prompt)
        .iter()
        .filter(|b| {
            !b.name.is_empty() && TEMPLATE_TAGS.contains(&b.tag.to_ascii_lowercase().as_str())
        })
        .map(|b| (b.name.to_string(), b.code.to_string()))
        .collect();
    (!files.is_empty()).then_some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_completion_is_its_named_blocks() {
        let text = "Here:\n```cpp glass/searcher.hpp\nint a;\n```\n```hpp glass/q.hpp\nint b;\n```\n```cpp glass/searcher.hpp\nint c;\n```\n```python x.py\nprint()\n```\n";
        let files = changed_files(text, None).unwrap();
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            [
                ("glass/q.hpp".to_string(), "int b;\n".to_string()),
                ("glass/searcher.hpp".to_string(), "int c;\n".to_string()),
            ]
        );
        assert_eq!(changed_files("```cpp\nint a;\n```\n", None), None);
        // What the prompt already holds is not the model's.
        let prompt = "```cpp glass/searcher.hpp\nint a;\n```\n";
        assert_eq!(changed_files(prompt, Some(prompt)), None);
    }

    #[test]
    fn the_shared_cases_hold() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/extraction.json");
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let (text, prompt) = (case["text"].as_str().unwrap(), case["prompt"].as_str());
            if case["template"] == true {
                let got = changed_files(text, prompt).map(|files| serde_json::json!(files));
                assert_eq!(
                    got.unwrap_or_default(),
                    case["expect"],
                    "case {:?}",
                    case["name"]
                );
                continue;
            }
            let language: Language = serde_json::from_value(case["language"].clone()).unwrap();
            let got = kernel(text, language, prompt);
            let got = match got {
                None => serde_json::Value::Null,
                Some(Found::Source(code)) => code.into(),
                Some(Found::Files(files)) => serde_json::json!(files),
            };
            assert_eq!(got, case["expect"], "case {:?}", case["name"]);
        }
    }
}
