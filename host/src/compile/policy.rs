//! What a kernel never needs, refused before the compiler runs (verdict
//! `rejected`, naming the construct and its line).
//!
//! A kernel is one self-contained file of computation. It has no reason to
//! read files or the environment at compile time (`include_str!`, `env!`,
//! `#[path]`), to reach unstable or raised compiler limits (`#![feature]`,
//! `#![recursion_limit]`), to link or export symbols (`extern`,
//! `#[no_mangle]`, `#[link]`, inline assembly), or to use the operating
//! system (`std::fs`, `std::net`, `std::process`, `std::env`, `std::time`,
//! `std::thread`, `std::os`), and no out-of-line `mod x;`.
//!
//! This is a first line only: the source is lexed with `proc-macro2` (comments
//! and strings cannot trigger it), but a determined macro can assemble what a
//! token scan does not see. The OS sandbox around the compiler is what makes
//! such a construct harmless; this filter makes the common case fail fast,
//! with a message an author can act on.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// A refused construct, in any language's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The source's file name (`kernel.rs`, `kernel.cpp`, `kernel.c`, or
    /// a bundle's file).
    pub file: String,
    pub line: usize,
    pub construct: String,
    pub reason: &'static str,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} line {}: `{}` is not allowed: {}",
            self.file, self.line, self.construct, self.reason
        )
    }
}

const READS_FILES: &str =
    "it reads files or the environment at compile time; a kernel is one self-contained file";
const LINKS: &str = "kernels do not link, export or import symbols";
const ASSEMBLY: &str = "kernels do not use inline assembly; use the SDK's SIMD";
const LIMITS: &str = "kernels do not raise compiler limits or use unstable features";
const OS: &str = "kernels have no files, network, processes, environment, clock or threads";
const ONE_FILE: &str = "a kernel is one file; write the module inline (`mod name { ... }`)";

fn macro_reason(name: &str) -> Option<&'static str> {
    match name {
        "include" | "include_str" | "include_bytes" | "env" | "option_env" => Some(READS_FILES),
        "asm" | "global_asm" | "naked_asm" => Some(ASSEMBLY),
        "concat_idents" => Some(LIMITS),
        _ => None,
    }
}

fn attribute_reason(name: &str) -> Option<&'static str> {
    match name {
        "path" => Some(READS_FILES),
        "feature" | "recursion_limit" | "type_length_limit" | "no_std" | "no_main" | "no_core"
        | "no_builtins" | "crate_type" | "crate_name" => Some(LIMITS),
        "no_mangle" | "export_name" | "link" | "link_name" | "link_section" | "link_ordinal"
        | "used" | "naked" => Some(LINKS),
        _ => None,
    }
}

const OS_MODULES: &[&str] = &["fs", "net", "process", "env", "time", "thread", "os"];

/// A token flattened with its nesting.
#[derive(Debug)]
enum Tok {
    Ident(String, usize),
    Punct(char, usize),
    Open(Delimiter),
    Close,
    Other,
}

fn flatten(stream: TokenStream, out: &mut Vec<Tok>) {
    for tree in stream {
        match tree {
            TokenTree::Ident(i) => {
                let name = i.to_string();
                let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
                out.push(Tok::Ident(name, i.span().start().line));
            }
            TokenTree::Punct(p) => out.push(Tok::Punct(p.as_char(), p.span().start().line)),
            TokenTree::Group(g) => {
                out.push(Tok::Open(g.delimiter()));
                flatten(g.stream(), out);
                out.push(Tok::Close);
            }
            TokenTree::Literal(_) => out.push(Tok::Other),
        }
    }
}

/// Checks `source`; the first violation found is returned. Source that does
/// not even lex passes, so the compiler reports the real syntax error.
pub fn check(source: &str) -> Result<(), Violation> {
    let Ok(stream) = source.parse::<TokenStream>() else {
        return Ok(());
    };
    let mut toks = Vec::new();
    flatten(stream, &mut toks);
    let violation = |line: usize, construct: String, reason: &'static str| {
        Err(Violation {
            file: "kernel.rs".to_string(),
            line,
            construct,
            reason,
        })
    };
    let ident_at = |i: usize| match toks.get(i) {
        Some(Tok::Ident(name, _)) => Some(name.as_str()),
        _ => None,
    };
    let punct_at = |i: usize, c: char| matches!(toks.get(i), Some(Tok::Punct(p, _)) if *p == c);

    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Ident(name, line) => {
                let line = *line;
                if punct_at(i + 1, '!')
                    && let Some(reason) = macro_reason(name)
                {
                    return violation(line, format!("{name}!"), reason);
                }
                if name == "include_str" || name == "include_bytes" {
                    return violation(line, name.clone(), READS_FILES);
                }
                if name == "extern" {
                    let what = match ident_at(i + 1) {
                        Some("crate") => "extern crate",
                        _ => "extern",
                    };
                    return violation(line, what.into(), LINKS);
                }
                if name == "mod" && ident_at(i + 1).is_some() && punct_at(i + 2, ';') {
                    let module = ident_at(i + 1).unwrap_or_default();
                    return violation(line, format!("mod {module};"), ONE_FILE);
                }
                if name == "std" && punct_at(i + 1, ':') && punct_at(i + 2, ':') {
                    if let Some(module) = ident_at(i + 3).filter(|m| OS_MODULES.contains(m)) {
                        return violation(line, format!("std::{module}"), OS);
                    }
                    // `std::{fs, ...}`: look inside the braces.
                    if let Some(Tok::Open(Delimiter::Brace)) = toks.get(i + 3) {
                        let mut depth = 0usize;
                        for t in &toks[i + 3..] {
                            match t {
                                Tok::Open(_) => depth += 1,
                                Tok::Close => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                Tok::Ident(m, l)
                                    if depth == 1 && OS_MODULES.contains(&m.as_str()) =>
                                {
                                    return violation(*l, format!("std::{m}"), OS);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            Tok::Punct('#', line) => {
                // `#[name ...]`, `#![name ...]`, `#[unsafe(name ...)]`
                let open = if punct_at(i + 1, '!') { i + 2 } else { i + 1 };
                if let Some(Tok::Open(Delimiter::Bracket)) = toks.get(open) {
                    let mut name = ident_at(open + 1);
                    if name == Some("unsafe")
                        && let Some(Tok::Open(Delimiter::Parenthesis)) = toks.get(open + 2)
                    {
                        name = ident_at(open + 3);
                    }
                    if let Some(name) = name
                        && let Some(reason) = attribute_reason(name)
                    {
                        let bang = if open == i + 2 { "!" } else { "" };
                        return violation(*line, format!("#{bang}[{name}]"), reason);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(src: &str) -> Violation {
        check(src).expect_err(src)
    }

    #[test]
    fn refuses_what_a_kernel_never_needs_naming_construct_and_line() {
        let cases = [
            (
                "fn f() {\n  let s = include_str!(\"/etc/passwd\");\n}",
                2,
                "include_str!",
            ),
            (
                "const B: &[u8] = include_bytes!(\"x\");",
                1,
                "include_bytes!",
            ),
            ("include!(\"other.rs\");", 1, "include!"),
            ("fn f() -> &'static str { env!(\"HOME\") }", 1, "env!"),
            (
                "fn f() { let _ = option_env!(\"PATH\"); }",
                1,
                "option_env!",
            ),
            ("\n\n#[path = \"/etc/passwd\"]\nmod x;", 3, "#[path]"),
            ("#![feature(core_intrinsics)]", 1, "#![feature]"),
            ("#![recursion_limit = \"100000\"]", 1, "#![recursion_limit]"),
            ("#![type_length_limit = \"1\"]", 1, "#![type_length_limit]"),
            ("extern crate std as s;", 1, "extern crate"),
            ("unsafe extern \"C\" { fn open(); }", 1, "extern"),
            ("#[unsafe(no_mangle)] pub fn malloc() {}", 1, "#[no_mangle]"),
            ("#[no_mangle] pub fn f() {}", 1, "#[no_mangle]"),
            ("#[export_name = \"x\"] pub fn f() {}", 1, "#[export_name]"),
            ("fn f() { unsafe { core::arch::asm!(\"nop\") } }", 1, "asm!"),
            (
                "fn f() { let _ = std::fs::read(\"/etc/passwd\"); }",
                1,
                "std::fs",
            ),
            (
                "use std::{collections::HashMap, net::TcpStream};",
                1,
                "std::net",
            ),
            ("fn f() { std::process::exit(0) }", 1, "std::process"),
            (
                "fn f() { let _ = std::time::Instant::now(); }",
                1,
                "std::time",
            ),
            ("mod helper;", 1, "mod helper;"),
            ("fn f() { r#include_str!(\"x\"); }", 1, "include_str!"),
            (
                "macro_rules! m { ($i:ident) => { $i!(\"/x\") } }\nm!(include_str);",
                2,
                "include_str",
            ),
        ];
        for (src, line, construct) in cases {
            let v = refused(src);
            assert_eq!((v.line, v.construct.as_str()), (line, construct), "{src}");
        }
    }

    #[test]
    fn ordinary_kernels_pass() {
        let src = concat!(
            "// include_str!(\"/etc/passwd\") in a comment is fine\n",
            "use crate::sdk::*;\n",
            "use std::collections::HashMap;\n",
            "use std::cell::RefCell;\n",
            "/// env! in docs is fine too\n",
            "#[inline(always)] #[allow(dead_code)]\n",
            "fn f(include: usize, env: &str) -> String { format!(\"{include} {env} std::fs\") }\n",
            "mod inline { pub fn g() {} }\n",
        );
        assert_eq!(check(src), Ok(()));
        assert_eq!(
            check(include_str!("../../../guest-template/src/kernel.rs")),
            Ok(())
        );
    }

    #[test]
    fn unlexable_source_is_left_to_the_compiler() {
        assert_eq!(check("fn f( {"), Ok(()));
    }
}
