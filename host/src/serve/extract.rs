//! Finding the candidate kernel in a model's text, for callers that send
//! text rather than a candidate (`POST /get_reward`, OpenRLHF's remote
//! reward). The rules are the Python client's (`python/anneval/extract.py`);
//! both are checked against the same cases (`tests/data/extraction.json`).
//!
//! A block is a fenced one: three backticks, a tag of letters, digits and
//! `_+-`, optional spaces, a newline, the code, three backticks. The last
//! block tagged with the language wins; failing that, the last block that
//! looks like a kernel of that language. Code the prompt already holds is
//! never credited: the text after the prompt is searched when the prompt is
//! found in it, and otherwise blocks found verbatim in the prompt are
//! skipped.

use crate::compile::Language;

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

/// Every fenced block of `text`, in order: (tag, code).
fn blocks(text: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find(FENCE) {
        let open = at + offset;
        let after = &text[open + FENCE.len()..];
        let tag_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_+-".contains(c)))
            .unwrap_or(after.len());
        let rest = after[tag_len..].trim_start_matches([' ', '\t']);
        let Some(code) = rest.strip_prefix('\n') else {
            at = open + 1;
            continue;
        };
        let Some(close) = code.find(FENCE) else {
            at = open + 1;
            continue;
        };
        found.push((&after[..tag_len], &code[..close]));
        let code_start = text.len() - code.len();
        at = code_start + close + FENCE.len();
    }
    found
}

/// The kernel of `language` in `text` (see the module's rules), if any.
pub fn kernel(text: &str, language: Language, prompt: Option<&str>) -> Option<String> {
    let prompt = prompt.filter(|p| !p.trim().is_empty());
    let (searched, skip_prompt_code) = match prompt {
        Some(p) => match text.rfind(p) {
            Some(at) => (&text[at + p.len()..], None),
            None => (text, Some(p)),
        },
        None => (text, None),
    };
    let credited: Vec<(&str, &str)> = blocks(searched)
        .into_iter()
        .filter(|(_, code)| !code.trim().is_empty())
        .filter(|(_, code)| skip_prompt_code.is_none_or(|p| !p.contains(code.trim())))
        .collect();
    let (tags, marker) = tags_and_marker(language);
    credited
        .iter()
        .rev()
        .find(|(tag, _)| tags.contains(&tag.to_ascii_lowercase().as_str()))
        .or_else(|| {
            credited
                .iter()
                .rev()
                .find(|(_, code)| code.contains(marker))
        })
        .map(|(_, code)| code.to_string())
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
            assert_eq!(
                got.as_deref(),
                case["expect"].as_str(),
                "case {:?}",
                case["name"]
            );
        }
    }
}
