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
//! skipped.

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

/// The kernel of `language` in `text` (see the module's rules), if any.
pub fn kernel(text: &str, language: Language, prompt: Option<&str>) -> Option<Found> {
    let prompt = prompt.filter(|p| !p.trim().is_empty());
    let (searched, skip_prompt_code) = match prompt {
        Some(p) => match text.rfind(p) {
            Some(at) => (&text[at + p.len()..], None),
            None => (text, Some(p)),
        },
        None => (text, None),
    };
    let credited: Vec<Block> = blocks(searched)
        .into_iter()
        .filter(|b| !b.code.trim().is_empty())
        .filter(|b| skip_prompt_code.is_none_or(|p| !p.contains(b.code.trim())))
        .collect();
    let (tags, marker) = tags_and_marker(language);
    let tagged = |b: &Block, extra: &[&str]| {
        let tag = b.tag.to_ascii_lowercase();
        tags.contains(&tag.as_str()) || extra.contains(&tag.as_str())
    };
    if let Some((entry, header_tags)) = bundle_entry(language) {
        let files: BTreeMap<String, String> = credited
            .iter()
            .filter(|b| !b.name.is_empty() && tagged(b, header_tags))
            .map(|b| (b.name.to_string(), b.code.to_string()))
            .collect();
        if files.contains_key(entry) && files.len() > 1 {
            return Some(Found::Files(files));
        }
    }
    credited
        .iter()
        .rev()
        .find(|b| tagged(b, &[]))
        .or_else(|| credited.iter().rev().find(|b| b.code.contains(marker)))
        .map(|b| Found::Source(b.code.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_cases_hold() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/extraction.json");
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let language: Language = serde_json::from_value(case["language"].clone()).unwrap();
            let got = kernel(
                case["text"].as_str().unwrap(),
                language,
                case["prompt"].as_str(),
            );
            let got = match got {
                None => serde_json::Value::Null,
                Some(Found::Source(code)) => code.into(),
                Some(Found::Files(files)) => serde_json::json!(files),
            };
            assert_eq!(got, case["expect"], "case {:?}", case["name"]);
        }
    }
}
