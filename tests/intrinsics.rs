//! The x86 layer of the C/C++ sandbox build, intrinsic by intrinsic
//! (`tests/intrinsics/probes.h`): each gives the native CPU's exact answer on
//! random inputs, and none is a per-lane scalar loop.
//!
//! The probes are compiled twice from one source: for wasm32 with the flags
//! and headers every candidate gets, and natively with `-march=native`. The
//! wasm build runs in wasmtime configured as the sandbox is; its outputs are
//! compared byte for byte with the native run's, for every probe this CPU
//! has. The cost of each probe is read from the compiled wasm itself: the
//! operators of its function that compute (loads, stores, locals and
//! constants aside), against the best simd128 sequence known for it.
//!
//! `ANNEVAL_INTRINSICS_TABLE=FILE` writes the table of BENCHMARKS.md
//! ("What each x86 intrinsic costs in the sandbox") to FILE;
//! `ANNEVAL_INTRINSICS_DUMP=NAME` prints the operators of probe NAME.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anneval::compile::clang::{LLVM_DIR, SIMDE, WASM_FLAGS, WASM_LINK_FLAGS};
use anneval::sandbox::{Limits, Metering, Sandbox};
use wasmparser::{BinaryReader, Name, NameSectionReader, Operator, Parser, Payload};

fn probes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/intrinsics")
}

fn clang() -> String {
    format!("{LLVM_DIR}/bin/clang")
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/setup installs clang-16)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The probes built for wasm32 the way a candidate is: its flags, the
/// template's x86 headers, SIMDe and the wasm32 sysroot.
fn wasm_probes(dir: &Path) -> Vec<u8> {
    let sysroot = dir.join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib")).unwrap();
    std::os::unix::fs::symlink("/usr/include/wasm32-wasi", sysroot.join("include")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/wasm32-wasi", sysroot.join("lib/wasm32-wasi")).unwrap();
    let simde = dir.join("simde-include");
    std::fs::create_dir_all(&simde).unwrap();
    std::os::unix::fs::symlink(SIMDE, simde.join("simde")).unwrap();
    let template_include =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-template-cpp/include");
    let output = dir.join("probes.wasm");
    let flags = WASM_FLAGS
        .iter()
        .chain(WASM_LINK_FLAGS)
        .filter(|f| **f != "-Wl,--strip-debug");
    run(
        Command::new(clang())
            .args(flags)
            .arg(format!("--sysroot={}", sysroot.display()))
            .arg(format!("-fuse-ld={LLVM_DIR}/bin/wasm-ld"))
            .arg("-isystem")
            .arg(&template_include)
            .arg("-isystem")
            .arg(&simde)
            .arg(probes_dir().join("probes.c"))
            .arg("-o")
            .arg(&output),
        "compiling the probes for wasm32",
    );
    std::fs::read(output).unwrap()
}

/// Every probe's output on every trial on this CPU: (probe, trial) → hex.
fn native_outputs(dir: &Path) -> HashMap<(String, u32), String> {
    let binary = dir.join("probes-native");
    run(
        Command::new(clang())
            .args(["-O2", "-march=native"])
            .arg(probes_dir().join("probes.c"))
            .arg("-o")
            .arg(&binary),
        "compiling the probes natively",
    );
    let stdout = run(&mut Command::new(&binary), "running the native probes");
    String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.split(' ');
            let name = fields.next().unwrap().to_string();
            let trial = fields.next().unwrap().parse().unwrap();
            ((name, trial), fields.next().unwrap().to_string())
        })
        .collect()
}

/// What a probe's compiled function does, operator by operator.
#[derive(Default, Debug)]
struct Cost {
    /// Operators that compute: all but loads, stores, locals, constants and
    /// the structure of the function.
    compute: usize,
    /// Lane extractions and insertions: how a per-lane scalar loop shows.
    lane_moves: usize,
    /// A loop or a call left in the body (a scalar helper, a lane loop).
    loops_or_calls: usize,
    /// Scalar loads: a prefetch in the sandbox is one.
    scalar_loads: usize,
}

/// The cost of each function of `wasm` named `probe_*`, by probe name.
fn probe_costs(wasm: &[u8]) -> HashMap<String, Cost> {
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut imported = 0u32;
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import.unwrap().ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body),
            Payload::CustomSection(section) if section.name() == "name" => {
                let reader = NameSectionReader::new(BinaryReader::new(section.data(), 0));
                for name in reader {
                    if let Name::Function(map) = name.unwrap() {
                        for naming in map {
                            let naming = naming.unwrap();
                            names.insert(naming.index, naming.name.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut costs = HashMap::new();
    for (i, body) in bodies.iter().enumerate() {
        let Some(name) = names.get(&(imported + i as u32)) else {
            continue;
        };
        let Some(probe) = name.strip_prefix("probe_") else {
            continue;
        };
        let mut cost = Cost::default();
        let dump = std::env::var("ANNEVAL_INTRINSICS_DUMP").is_ok_and(|d| d == probe);
        for op in body.get_operators_reader().unwrap() {
            let op = op.unwrap();
            if dump {
                eprintln!("{probe}: {op:?}");
            }
            match op {
                Operator::Loop { .. } | Operator::Call { .. } | Operator::CallIndirect { .. } => {
                    cost.loops_or_calls += 1;
                    cost.compute += 1;
                }
                _ => {
                    let text = format!("{op:?}");
                    let name = text.split([' ', '{']).next().unwrap_or("");
                    let free = name.starts_with("Local")
                        || name.starts_with("Global")
                        || name.ends_with("Const")
                        || name.contains("Load")
                        || name.contains("Store")
                        || matches!(name, "End" | "Return" | "Drop" | "Nop" | "Block");
                    if name.starts_with("I32Load") || name.starts_with("I64Load") {
                        cost.scalar_loads += 1;
                    }
                    if name.contains("ExtractLane") || name.contains("ReplaceLane") {
                        cost.lane_moves += 1;
                    }
                    if !free {
                        cost.compute += 1;
                    }
                }
            }
        }
        costs.insert(probe.to_string(), cost);
    }
    costs
}

struct Probe {
    index: u32,
    name: String,
    bound: usize,
}

fn read_c_string(memory: &[u8], at: usize) -> String {
    let end = memory[at..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8(memory[at..at + end].to_vec()).unwrap()
}

#[test]
fn every_intrinsic_is_exact_and_vectorised() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wasm_probes(dir.path());
    let native = native_outputs(dir.path());
    let costs = probe_costs(&wasm);

    let sandbox = Sandbox::new(Limits::default()).unwrap();
    let engine = sandbox.engine(Metering::Replay);
    let module = wasmtime::Module::new(engine, &wasm).unwrap();
    assert_eq!(
        module.imports().count(),
        0,
        "the probes import nothing: {:?}",
        module
            .imports()
            .map(|i| i.name().to_string())
            .collect::<Vec<_>>()
    );
    let mut store = sandbox.store(Metering::Replay);
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    macro_rules! export {
        ($name:literal, $params:ty, $results:ty) => {
            instance
                .get_typed_func::<$params, $results>(&mut store, $name)
                .unwrap()
        };
    }
    export!("_initialize", (), ()).call(&mut store, ()).unwrap();
    let count = export!("probe_count", (), u32)
        .call(&mut store, ())
        .unwrap();
    let trials = export!("probe_trials", (), u32)
        .call(&mut store, ())
        .unwrap();
    let name_of = export!("probe_name", u32, u32);
    let bound_of = export!("probe_bound", u32, i32);
    let fill = export!("probe_fill", (u32, u32), ());
    let run_probe = export!("probe_run", u32, ());
    let output = export!("probe_output", (), u32)
        .call(&mut store, ())
        .unwrap() as usize;

    let mut probes = Vec::new();
    for index in 0..count {
        let at = name_of.call(&mut store, index).unwrap() as usize;
        let name = read_c_string(memory.data(&store), at);
        let bound = bound_of.call(&mut store, index).unwrap() as usize;
        probes.push(Probe { index, name, bound });
    }
    let listed = std::fs::read_to_string(probes_dir().join("probes.h")).unwrap();
    assert_eq!(
        probes.len(),
        listed.lines().filter(|l| l.starts_with("PROBE(")).count(),
        "the wasm build has every probe: its feature macros are all defined"
    );

    let mut failures = Vec::new();
    let mut table = String::from(
        "| intrinsic | wasm instructions | simd128 lower bound | lane moves | exact on this CPU |\n\
         |---|---:|---:|---:|---|\n",
    );
    let mut checked = 0;
    for probe in &probes {
        let mut exact = None;
        for trial in 0..trials {
            fill.call(&mut store, (probe.index, trial)).unwrap();
            run_probe.call(&mut store, probe.index).unwrap();
            let bytes = &memory.data(&store)[output..output + 64];
            let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let Some(want) = native.get(&(probe.name.clone(), trial)) else {
                break;
            };
            if *want != got {
                failures.push(format!(
                    "{}: trial {trial} gives {got} in wasm, {want} natively",
                    probe.name
                ));
                exact = Some(false);
                break;
            }
            exact = Some(true);
        }
        checked += usize::from(exact.is_some());
        let cost = costs
            .get(&probe.name)
            .unwrap_or_else(|| panic!("no function probe_{} in the wasm build", probe.name));
        // Twice the best known sequence and two operators of slack: a
        // per-lane scalar loop over four or more lanes is far above it.
        if cost.compute > 2 * probe.bound + 2 || cost.loops_or_calls > 0 {
            failures.push(format!(
                "{}: {} wasm instructions ({} lane moves, {} loops or calls) \
                 against a simd128 bound of {}: a scalar loop per lane?",
                probe.name, cost.compute, cost.lane_moves, cost.loops_or_calls, probe.bound
            ));
        }
        // A prefetch must stay a load, not vanish as clang's builtin does.
        if probe.name.contains("prefetch") && cost.scalar_loads == 0 {
            failures.push(format!(
                "{}: no load left: the prefetch vanished",
                probe.name
            ));
        }
        table.push_str(&format!(
            "| `_{}` | {} | {} | {} | {} |\n",
            probe.name,
            cost.compute,
            probe.bound,
            cost.lane_moves,
            match exact {
                Some(true) => "bit-exact",
                Some(false) => "**differs**",
                None => "not on this CPU",
            }
        ));
    }
    if let Ok(path) = std::env::var("ANNEVAL_INTRINSICS_TABLE") {
        std::fs::write(&path, &table).unwrap();
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every CPU of this kind has SSE4.2, AVX2, FMA and F16C at least.
    assert!(
        checked * 2 > probes.len(),
        "only {checked} probes checked natively"
    );
}
