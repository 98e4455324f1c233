//! What a C or C++ kernel never needs, refused before clang runs (verdict
//! `rejected`, naming the construct and its line): the C/C++ counterpart of
//! [`super::policy`].
//!
//! A kernel is one self-contained file of computation against the SDK. It
//! includes the SDK (`"anneval.hpp"`, `"anneval.h"`) and system headers by
//! name (`<vector>`, `<immintrin.h>`), never a file by path or a computed
//! name; it declares no imports or exports of its own (`import_module`,
//! `import_name`, `export_name`) and does not replace the WASI answers of
//! the template (`__imported_wasi_*`).
//!
//! The scan reads the text as the compiler's first phases leave it: line
//! splices (a backslash at the end of a line, also before trailing blanks,
//! as clang accepts) are joined first, and the digraph `%:` counts as `#`.
//! Trigraphs and digraphs are also switched off in the compiler itself
//! (`-fno-trigraphs -fno-digraphs`), so `??=include` and `%:include` do not
//! compile at all. Like the Rust policy this is a first line only: comments
//! and string literals cannot trigger it, but macros can paste together an
//! identifier a scan does not see. The compile jail is what makes such a
//! construct harmless: the compiler sees no host file to include, and a
//! module that imports anything but the kernel world's log is refused when
//! it is wrapped as a component.
//!
//! Inline assembly is judged on what the compiler compiles, not on the
//! text: each compile first writes the kernel's translation unit as LLVM IR
//! (after the preprocessor, before any optimisation), and
//! [`check_compiled`] refuses it if any function or the file scope holds
//! inline assembly. So `asm` in a branch the target never compiles
//! (`#ifdef __x86_64__` in the sandbox, `#if 0` anywhere) passes, and `asm`
//! that a macro pastes together, or that a macro defined before an
//! `#include` injects into a header, is refused. An asm label on a
//! declaration (`int f() __asm__("name");`, which renames a symbol) is not
//! assembly and passes.

pub use super::policy::Violation;

const READS_FILES: &str = "a kernel includes the SDK (\"anneval.hpp\" or \"anneval.h\") and \
     system headers by name (<vector>); it reads no other file";
const ASSEMBLY: &str = "kernels do not use inline assembly; use the SDK's SIMD or intrinsics";
const HEADER_UNITS: &str = "kernels include headers with #include; a C++20 header unit \
     (`import <vector>;`) is not built for them";
const CARRIAGE_RETURN: &str = "a kernel's lines end in \\n or \\r\\n; a carriage return on its own \
     ends a line for the compiler but not for this check";
const LINKS: &str = "kernels do not declare imports or exports; the template's glue does";

/// The SDK headers a kernel may include with quotes.
const SDK_HEADERS: &[&str] = &["anneval.hpp", "anneval.h", "anneval_quant.h"];

fn identifier_reason(name: &str) -> Option<&'static str> {
    match name {
        "import_module" | "import_name" | "export_name" | "__import_module__"
        | "__import_name__" | "__export_name__" => Some(LINKS),
        _ if name.starts_with("__imported_") => Some(LINKS),
        _ => None,
    }
}

/// The source with comments removed (`text`, strings kept, for directives)
/// and with string and character literals emptied too (`code`, for
/// identifiers). Both keep every newline, so line numbers hold.
struct Stripped {
    text: String,
    code: String,
}

fn strip(source: &str) -> Stripped {
    #[derive(PartialEq)]
    enum State {
        Normal,
        Line,
        Block,
        Quoted(char),
    }
    let mut text = String::with_capacity(source.len());
    let mut code = String::with_capacity(source.len());
    let mut state = State::Normal;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Normal => match c {
                '/' if chars.peek() == Some(&'/') => {
                    chars.next();
                    state = State::Line;
                    text.push(' ');
                    code.push(' ');
                }
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    state = State::Block;
                    text.push(' ');
                    code.push(' ');
                }
                '"' | '\'' => {
                    state = State::Quoted(c);
                    text.push(c);
                    code.push(c);
                }
                _ => {
                    text.push(c);
                    code.push(c);
                }
            },
            State::Line => {
                if c == '\n' {
                    state = State::Normal;
                    text.push('\n');
                    code.push('\n');
                }
            }
            State::Block => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = State::Normal;
                } else if c == '\n' {
                    text.push('\n');
                    code.push('\n');
                }
            }
            State::Quoted(q) => {
                text.push(c);
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        text.push(next);
                        if next == '\n' {
                            code.push('\n');
                        }
                    }
                } else if c == q {
                    state = State::Normal;
                    code.push(c);
                } else if c == '\n' {
                    // An unterminated literal ends at the line; clang will say so.
                    state = State::Normal;
                    code.push('\n');
                }
            }
        }
    }
    Stripped { text, code }
}

/// Checks one preprocessor directive line (without its `#`).
fn check_directive(rest: &str) -> Option<(String, &'static str)> {
    let rest = rest.trim_start();
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, target) = (&rest[..name_len], rest[name_len..].trim());
    match name {
        "include_next" | "import" | "embed" => Some((format!("#{name}"), READS_FILES)),
        "include" => {
            let allowed = if let Some(quoted) = target.strip_prefix('"') {
                let file = quoted.split('"').next().unwrap_or("");
                SDK_HEADERS.contains(&file)
            } else if let Some(angled) = target.strip_prefix('<') {
                let file = angled.split('>').next().unwrap_or("");
                !file.starts_with('/') && !file.split('/').any(|part| part == "..")
            } else {
                // A computed include: a macro naming the file.
                false
            };
            (!allowed).then(|| (format!("#include {target}"), READS_FILES))
        }
        _ => None,
    }
}

/// The header a C++20 `import <name>;` or `import "name";` line (also after
/// `export`) names: a header unit, which reads a file as `#include` does.
fn header_import(line: &str) -> Option<&str> {
    let line = line
        .strip_prefix("export")
        .filter(|r| r.starts_with(char::is_whitespace))
        .map_or(line, str::trim_start);
    let target = line
        .strip_prefix("import")
        .filter(|r| r.starts_with(char::is_whitespace) || r.starts_with(['<', '"']))?
        .trim_start();
    target
        .starts_with(['<', '"'])
        .then(|| target.trim_end().trim_end_matches(';').trim_end())
}

/// The source with its line splices joined, as the compiler's second phase
/// joins them: each backslash followed by blanks and a newline is removed,
/// and the newlines it removed are put back at the end of the logical line,
/// so every line after it keeps its number.
fn splice(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut owed = 0;
    let mut rest = source;
    while let Some(at) = rest.find(['\\', '\n']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix('\n') {
            out.push('\n');
            out.extend(std::iter::repeat_n('\n', owed));
            owed = 0;
            rest = after;
            continue;
        }
        let blanks = tail[1..]
            .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\x0c' | '\x0b'))
            .map_or(tail.len(), |n| n + 1);
        if tail[blanks..].starts_with('\n') {
            owed += 1;
            rest = &tail[blanks + 1..];
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out.extend(std::iter::repeat_n('\n', owed));
    out
}

/// The file and line each line of `text` is, as the compiler counts them:
/// from `file` line 1, and as each `#line N "name"` marker says (a bundle's
/// files are inlined between such markers, see [`crate::bundle`]).
fn locations(text: &str, file: &str) -> Vec<(String, usize)> {
    let mut current = (file.to_string(), 1);
    let mut out = Vec::new();
    for line in text.lines() {
        out.push(current.clone());
        current.1 += 1;
        let rest = line.trim_start();
        let Some(rest) = rest.strip_prefix('#').or_else(|| rest.strip_prefix("%:")) else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("line") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        if let Some(Ok(number)) = words.next().map(str::parse::<usize>) {
            current.1 = number;
            if let Some(name) = words
                .next()
                .and_then(|w| w.strip_prefix('"')?.strip_suffix('"'))
            {
                current.0 = name.to_string();
            }
        }
    }
    out
}

/// Refuses the first construct a kernel never needs; `file` names the source
/// in the message (`kernel.cpp`, `kernel.c`).
pub fn check(source: &str, file: &'static str) -> Result<(), Violation> {
    let stripped = strip(&splice(source));
    let locations = locations(&stripped.text, file);
    // clang ends a line (a directive, a `//` comment) at a lone `\r`; the
    // scan below reads lines as `\n` ends them, so such a line is refused.
    if let Some(at) = source
        .match_indices('\r')
        .map(|(at, _)| at)
        .find(|&at| source.as_bytes().get(at + 1) != Some(&b'\n'))
    {
        let line = source[..at].matches('\n').count() + 1;
        let (file, line) = locations
            .get(line - 1)
            .cloned()
            .unwrap_or((file.to_string(), line));
        return Err(Violation {
            file,
            line,
            construct: "a carriage return without a newline".into(),
            reason: CARRIAGE_RETURN,
        });
    }
    let violation = |line: usize, construct: String, reason| {
        let (file, line) = locations
            .get(line - 1)
            .cloned()
            .unwrap_or((file.to_string(), line));
        Violation {
            file,
            line,
            construct,
            reason,
        }
    };
    for (i, line) in stripped.text.lines().enumerate() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix('#').or_else(|| line.strip_prefix("%:"))
            && let Some((construct, reason)) = check_directive(rest)
        {
            return Err(violation(i + 1, construct, reason));
        }
        if let Some(target) = header_import(line) {
            return Err(violation(i + 1, format!("import {target}"), HEADER_UNITS));
        }
    }
    if let Some((i, word, reason)) = identifiers(&stripped.code)
        .find_map(|(i, word)| identifier_reason(word).map(|reason| (i, word, reason)))
    {
        return Err(violation(i + 1, word.to_string(), reason));
    }
    Ok(())
}

/// Each identifier of `code` (comments and literals already emptied) with
/// the index of its line.
fn identifiers(code: &str) -> impl Iterator<Item = (usize, &str)> {
    code.lines().enumerate().flat_map(|(i, line)| {
        let mut words = Vec::new();
        let mut rest = line;
        while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let tail = &rest[start..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            // Part of a number (1e5f, 0x1f) is not an identifier.
            let in_number = rest[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_digit() || c == '.');
            if !in_number {
                words.push((i, &tail[..len]));
            }
            rest = &tail[len..];
        }
        words
    })
}

/// The first inline assembly in `ir` (a translation unit as textual LLVM
/// IR, as `clang -S -emit-llvm` writes it): the function that holds it
/// (`None` at file scope) and its template. In textual IR a string's `"`
/// is written `\22`, so `asm "` (with its optional keywords) occurs only
/// where an instruction calls inline assembly, and `module asm "` only at
/// file scope.
pub fn assembly_in(ir: &str) -> Option<(Option<String>, String)> {
    let mut function = None;
    for line in ir.lines() {
        if let Some(rest) = line.strip_prefix("define ") {
            function = rest
                .find('@')
                .map(|at| &rest[at + 1..])
                .map(|name| match name.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next().unwrap_or(""),
                    None => name.split('(').next().unwrap_or(""),
                })
                .map(str::to_string);
            continue;
        }
        if line.starts_with('}') {
            function = None;
            continue;
        }
        if let Some(template) = line.strip_prefix("module asm \"") {
            return Some((None, quoted(template)));
        }
        let mut rest = line;
        while let Some(at) = rest.find("asm ") {
            let before = rest[..at].chars().next_back();
            let mut after = &rest[at + 4..];
            for keyword in ["sideeffect ", "alignstack ", "inteldialect ", "unwind "] {
                after = after.strip_prefix(keyword).unwrap_or(after);
            }
            if matches!(before, Some(' ' | '(' | ',' | '='))
                && let Some(template) = after.strip_prefix('"')
            {
                return Some((function.clone(), quoted(template)));
            }
            rest = &rest[at + 4..];
        }
    }
    None
}

/// A string of textual IR up to its closing quote, shortened for a message.
fn quoted(text: &str) -> String {
    let text = text.split('"').next().unwrap_or("");
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Refuses a kernel whose compiled translation unit `ir` holds inline
/// assembly, naming where `source` spells it (`file` names the source, as
/// in [`check`]) or, when no line spells it (a macro pasted it together),
/// the function it is compiled into.
pub fn check_compiled(ir: &str, source: &str, file: &str) -> Result<(), String> {
    let Some((function, template)) = assembly_in(ir) else {
        return Ok(());
    };
    let place = match function {
        Some(f) => format!("in function `{f}`"),
        None => "at file scope".to_string(),
    };
    let stripped = strip(&splice(source));
    let locations = locations(&stripped.text, file);
    let spelled = identifiers(&stripped.code)
        .find(|(_, word)| matches!(*word, "asm" | "__asm" | "__asm__"))
        .map(|(i, word)| {
            let (file, line) = locations
                .get(i)
                .cloned()
                .unwrap_or((file.to_string(), i + 1));
            format!("{file} line {line}: `{word}`")
        });
    Err(match spelled {
        Some(at) => format!(
            "{at} is not allowed: {ASSEMBLY} (inline assembly \"{template}\" is compiled {place})"
        ),
        None => format!(
            "{file}: inline assembly is not allowed: {ASSEMBLY} (\"{template}\" is compiled \
             {place}; no line spells `asm`, so a macro makes it)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str) -> Violation {
        check(source, "kernel.cpp").expect_err("refused")
    }

    #[test]
    fn the_reference_kernels_pass() {
        check(crate::template::reference_cpp_kernel(), "kernel.cpp").unwrap();
        check(crate::template::reference_c_kernel(), "kernel.c").unwrap();
    }

    #[test]
    fn includes_by_path_or_computed_name_are_refused() {
        for (source, construct) in [
            ("#include \"/etc/passwd\"\n", "#include \"/etc/passwd\""),
            ("  #  include </etc/passwd>\n", "#include </etc/passwd>"),
            (
                "#include <../../etc/passwd>\n",
                "#include <../../etc/passwd>",
            ),
            ("#include \"kernel.cpp\"\n", "#include \"kernel.cpp\""),
            ("#define F \"/etc/passwd\"\n#include F\n", "#include F"),
            ("#include_next <vector>\n", "#include_next"),
            ("#embed \"x\"\n", "#embed"),
        ] {
            let v = refused(source);
            assert_eq!(v.construct, construct, "{source}");
            assert_eq!(v.reason, READS_FILES);
        }
        let v = refused("int x;\n\n#include \"/etc/passwd\"\n");
        assert_eq!(v.line, 3);
        assert!(v.to_string().starts_with("kernel.cpp line 3: "), "{v}");
    }

    #[test]
    fn a_lone_carriage_return_is_refused_and_crlf_lines_pass() {
        for source in [
            "int x;\r#include \"/proc/self/mountinfo\"\n",
            "// c\r#include </usr/include/stdio.h>\n",
            "int y;\n\n#define A \\\r#embed \"x\"\n",
        ] {
            let v = refused(source);
            assert_eq!(v.reason, CARRIAGE_RETURN, "{source:?}");
        }
        assert_eq!(refused("a;\nb;\n// c\rint z;\n").line, 3);
        check(
            "#include \"anneval.hpp\"\r\n#include <vector>\r\nint x; \\\r\n int y;\r\n",
            "kernel.cpp",
        )
        .unwrap();
    }

    #[test]
    fn cxx20_header_units_are_refused_and_the_word_import_is_not() {
        for (source, construct) in [
            ("import \"/etc/passwd\";\n", "import \"/etc/passwd\""),
            ("  export import <vector> ;\n", "import <vector>"),
            ("import\t\"anneval.hpp\";\n", "import \"anneval.hpp\""),
            ("imp\\\nort </etc/passwd>;\n", "import </etc/passwd>"),
        ] {
            let v = refused(source);
            assert_eq!(v.construct, construct, "{source}");
            assert_eq!(v.reason, HEADER_UNITS);
        }
        check(
            "int import = 1;\nint f(int module) { return import + module; }\nstruct exporter { int important; };\n",
            "kernel.cpp",
        )
        .unwrap();
    }

    #[test]
    fn sdk_and_system_headers_are_allowed() {
        check(
            "#include \"anneval.hpp\"\n#include <vector>\n#include <simde/x86/avx2.h>\n#include<queue>\n",
            "kernel.cpp",
        )
        .unwrap();
    }

    #[test]
    fn assembly_and_own_imports_are_refused() {
        assert_eq!(
            refused("__attribute__((import_module(\"env\"), import_name(\"x\"))) void x();")
                .construct,
            "import_module"
        );
        assert_eq!(
            refused("__attribute__((export_name(\"y\"))) void y() {}").reason,
            LINKS
        );
        assert_eq!(
            refused("int __imported_wasi_snapshot_preview1_fd_write(int, int, int, int);").reason,
            LINKS
        );
    }

    #[test]
    fn splices_and_digraphs_are_read_as_the_compiler_reads_them() {
        for (source, construct, line) in [
            (
                "#inc\\\nlude \"/etc/passwd\"\n",
                "#include \"/etc/passwd\"",
                1,
            ),
            (
                "int x;\n#\\  \r\n include </etc/\\\npasswd>\n",
                "#include </etc/passwd>",
                2,
            ),
            ("%:include \"/etc/passwd\"\n", "#include \"/etc/passwd\"", 1),
            ("  %: include_next <vector>\n", "#include_next", 1),
            (
                "__attribute__((export_\\\nname(\"y\"))) void y() {}\n",
                "export_name",
                1,
            ),
            ("\n\nint __im\\\n\\\nported_\\\nx();\n", "__imported_x", 3),
            // A comment continued onto the next line hides nothing there.
            (
                "// a comment \\\n#include \"/etc/passwd\"\n#include \"/x\"\n",
                "#include \"/x\"",
                3,
            ),
        ] {
            let v = refused(source);
            assert_eq!(
                (v.construct.as_str(), v.line),
                (construct, line),
                "{source:?}"
            );
        }
        // Lines after a splice keep their numbers.
        assert_eq!(
            refused("#define A 1 \\\n  + 2\nint x;\nint __imported_y;\n").line,
            4
        );
        // A backslash that splices nothing is kept.
        check(
            "const char* s = \"a\\\\b\"; int y = 1; // x\\y\n",
            "kernel.cpp",
        )
        .unwrap();
    }

    #[test]
    fn a_bundles_line_markers_name_its_file_and_line() {
        let flat = "#include \"anneval.hpp\"\n#line 1 \"glass/a.hpp\"\nint a;\n\nint __imported_a;\n#line 2 \"kernel.cpp\"\n";
        let v = refused(flat);
        assert_eq!((v.file.as_str(), v.line), ("glass/a.hpp", 3));
        let v = refused("#line 1 \"x.hpp\"\n#line 7 \"kernel.cpp\"\n#include \"/etc/passwd\"\n");
        assert_eq!((v.file.as_str(), v.line), ("kernel.cpp", 7));
    }

    /// A translation unit as `clang -S -emit-llvm` writes it, with inline
    /// assembly in a function.
    const IR_WITH_ASM: &str = "define hidden void @_Z1fv() #0 {\n  call void asm sideeffect \"nop\", \"~{dirflag}\"() #1, !srcloc !5\n  ret void\n}\n";

    #[test]
    fn inline_assembly_is_found_where_the_ir_calls_it() {
        assert_eq!(
            assembly_in(IR_WITH_ASM),
            Some((Some("_Z1fv".into()), "nop".into()))
        );
        assert_eq!(
            assembly_in("module asm \"\\09.globl x\"\ndefine void @g() {\n}\n"),
            Some((None, "\\09.globl x".into()))
        );
        let ir = "define i32 @\"weird name\"(i32 %0) {\n  %2 = call i32 asm \"bswap $0\", \"=r,0\"(i32 %0)\n  ret i32 %2\n}\n";
        assert_eq!(
            assembly_in(ir),
            Some((Some("weird name".into()), "bswap $0".into()))
        );
        // Strings, names and asm labels (renamed symbols) are not assembly.
        for ir in [
            "@.str = private constant [9 x i8] c\"asm \\22nop\\00\"\n",
            "declare i32 @\"\\01__isoc99_fscanf\"(ptr, ptr, ...)\n",
            "define void @my_asm_count() {\n  %x = load i32, ptr @asm_total\n}\n",
        ] {
            assert_eq!(assembly_in(ir), None, "{ir}");
        }
    }

    #[test]
    fn compiled_assembly_is_refused_where_it_is_spelled() {
        let said = check_compiled(
            IR_WITH_ASM,
            "int x;\nvoid f() { asm(\"nop\"); }\n",
            "kernel.cpp",
        )
        .unwrap_err();
        assert!(
            said.starts_with("kernel.cpp line 2: `asm` is not allowed: kernels do not use inline"),
            "{said}"
        );
        assert!(said.contains("compiled in function `_Z1fv`"), "{said}");
        let bundle = "#line 1 \"glass/a.hpp\"\nint a;\n__asm__(\"\");\n#line 2 \"kernel.cpp\"\n";
        let said = check_compiled(IR_WITH_ASM, bundle, "kernel.cpp").unwrap_err();
        assert!(said.starts_with("glass/a.hpp line 2: `__asm__`"), "{said}");
        let pasted = "#define CAT(a, b) a##b\nvoid f() { CAT(__as, m__)(\"nop\"); }\n";
        let said = check_compiled(IR_WITH_ASM, pasted, "kernel.cpp").unwrap_err();
        assert!(
            said.starts_with("kernel.cpp: inline assembly is not allowed")
                && said.contains("a macro makes it"),
            "{said}"
        );
        // The text alone decides nothing: `asm` the compiler never compiled passes.
        check_compiled(
            "define void @f() {\n  ret void\n}\n",
            "#if 0\nasm(\"nop\");\n#endif\n",
            "kernel.cpp",
        )
        .unwrap();
        check(
            "#ifdef __x86_64__\nvoid f() { asm(\"pause\"); }\n#endif\n",
            "kernel.cpp",
        )
        .unwrap();
    }

    #[test]
    fn comments_strings_and_longer_names_do_not_trigger() {
        check(
            "// asm(\"nop\") #include \"/etc/passwd\"\n\
             /* import_module\n asm */\n\
             const char* s = \"asm import_name \\\" asm\";\n\
             char c = '\\'';\n\
             int asm_count = 0; int my_asm = 1; float f = 1e5f;\n",
            "kernel.cpp",
        )
        .unwrap();
    }
}
