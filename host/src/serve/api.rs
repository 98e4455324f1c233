//! The service's requests and answers (JSON), their validation, and the
//! content hash that keys the ledger's cache. Documented in `openapi.yaml`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codebase::{Codebase, Codebases};
use crate::compile::Language;
use crate::dataset::registry;
use crate::dataset::split::QuerySet;
use crate::evaluation::Evaluation;
use crate::evaluator::{Candidate, Engine, ScoreOptions};
use crate::measure::sweep::{FULL_EFS, Sweep};
use crate::template::{self, hex};

/// A candidate as a request carries it: exactly one of the four.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateSpec {
    /// A kernel's source, in `language`.
    pub source: Option<String>,
    /// A C or C++ kernel of several files: relative path → text, the
    /// kernel in `kernel.cpp` or `kernel.c` (see [`crate::bundle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<std::collections::BTreeMap<String, String>>,
    /// A WebAssembly component, base64.
    pub wasm_base64: Option<String>,
    /// `true` for the reference kernel (of `language`).
    pub reference: Option<bool>,
    /// `rust` (the default), `c` or `cpp`: the language of `source`, or of
    /// the reference kernel.
    pub language: Option<Language>,
}

/// Options every scoring request shares (all optional).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Options {
    pub dataset: Option<String>,
    pub k: Option<usize>,
    /// Exactly these efs (otherwise the `sweep`).
    pub ef: Option<Vec<usize>>,
    /// `band` (default: the efs that decide the reward, found per kernel)
    /// or `full` (CRINN's 30 efs from 1 to 700); ignored when `ef` is given.
    pub sweep: Option<SweepName>,
    pub runs: Option<usize>,
    pub params: Option<BTreeMap<String, String>>,
    pub band: Option<[f64; 2]>,
    pub max_base: Option<usize>,
    pub max_queries: Option<usize>,
    /// `dev` (default), `holdout` or `all`.
    pub queries: Option<QuerySet>,
    /// `wasm` (default) or `native`.
    pub engine: Option<Engine>,
    /// Whether to count instructions (default true).
    pub fuel: Option<bool>,
    /// Answer at once with the id (202) instead of waiting for the result.
    pub wait: Option<bool>,
    /// A codebase the service was started with (`serve --template DIR`):
    /// candidates are the files they change, and its reference is the
    /// codebase as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A sweep by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepName {
    Band,
    Full,
}

impl SweepName {
    /// The sweep, or the listed efs when given.
    pub fn sweep(name: Option<SweepName>, efs: Option<Vec<usize>>) -> Sweep {
        match (efs, name) {
            (Some(mut efs), _) => {
                efs.sort_unstable();
                efs.dedup();
                Sweep::Efs(efs)
            }
            (None, Some(SweepName::Full)) => Sweep::Efs(FULL_EFS.to_vec()),
            (None, _) => Sweep::Band,
        }
    }
}

const OPTION_FIELDS: &[&str] = &[
    "dataset",
    "k",
    "ef",
    "sweep",
    "runs",
    "params",
    "band",
    "max_base",
    "max_queries",
    "queries",
    "engine",
    "fuel",
    "wait",
    "template",
];

/// Options given as URL query parameters (`POST /get_reward?dataset=...`,
/// `GET /v1/exemplars?...`), as the JSON object a body would hold: `ef=10,40`
/// and `band=0.85,0.95` are lists, `param.NAME=VALUE` sets a kernel
/// parameter. `extra` names the endpoint's own parameters (kept as
/// strings). Anything else is refused, so a typo is an error.
pub fn query_options(
    pairs: &[(String, String)],
    extra: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, BadRequest> {
    use serde_json::Value;
    let number = |key: &str, text: &str| -> Result<Value, BadRequest> {
        text.trim()
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .map_err(|_| bad(format!("{key}={text:?} is not a number")))
    };
    let mut options = serde_json::Map::new();
    let mut params = serde_json::Map::new();
    for (key, text) in pairs {
        let value = match key.as_str() {
            "ef" | "band" => Value::Array(
                text.split(',')
                    .map(|part| number(key, part))
                    .collect::<Result<_, _>>()?,
            ),
            "k" | "runs" | "max_base" | "max_queries" => number(key, text)?,
            "fuel" | "wait" => match text.as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(bad(format!("{key}={text:?} must be true or false"))),
            },
            "dataset" | "sweep" | "queries" | "engine" | "template" => Value::String(text.clone()),
            _ if extra.contains(&key.as_str()) => Value::String(text.clone()),
            _ => match key.strip_prefix("param.") {
                Some(name) => {
                    params.insert(name.to_string(), Value::String(text.clone()));
                    continue;
                }
                None => {
                    let mut known: Vec<&str> = OPTION_FIELDS
                        .iter()
                        .chain(extra)
                        .copied()
                        .filter(|k| *k != "params")
                        .collect();
                    known.push("param.NAME");
                    known.sort();
                    return Err(bad(format!(
                        "unknown query parameter {key:?}; the parameters are: {}",
                        known.join(", ")
                    )));
                }
            },
        };
        options.insert(key.clone(), value);
    }
    if !params.is_empty() {
        options.insert("params".into(), Value::Object(params));
    }
    Ok(options)
}

/// Options from a JSON object (query parameters, perhaps with a sample's
/// overrides), refusing unknown fields.
pub fn options_from(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<Options, BadRequest> {
    let value = serde_json::Value::Object(object);
    check_fields(&value, &[])?;
    serde_json::from_value(value).map_err(|e| bad(format!("invalid options: {e}")))
}

/// `POST /v1/score`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ScoreRequest {
    pub candidate: CandidateSpec,
    #[serde(flatten)]
    pub options: Options,
}

/// `POST /v1/score/batch`: one group of candidates (a GRPO group) with
/// shared options, measured in one run together with the reference kernel.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BatchRequest {
    pub candidates: Vec<CandidateSpec>,
    #[serde(flatten)]
    pub options: Options,
}

/// A refused request: the HTTP status and a message saying what to change.
#[derive(Debug)]
pub struct BadRequest(pub u16, pub String);

fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest(400, message.into())
}

/// Refuses fields the request type does not know (`serde(flatten)` cannot),
/// so a typo is an error rather than a silent default.
pub fn check_fields(body: &serde_json::Value, own: &[&str]) -> Result<(), BadRequest> {
    let Some(object) = body.as_object() else {
        return Err(bad("the request body must be a JSON object"));
    };
    for key in object.keys() {
        if !own.contains(&key.as_str()) && !OPTION_FIELDS.contains(&key.as_str()) {
            let mut known: Vec<&str> = own.iter().chain(OPTION_FIELDS).copied().collect();
            known.sort();
            return Err(bad(format!(
                "unknown field {key:?}; the fields are: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// The most candidates one batch may hold.
pub const MAX_BATCH: usize = 64;

/// A validated request, ready for a worker.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub dataset: DatasetKey,
    pub opts: ScoreOptions,
    pub engine: Engine,
    pub wait: bool,
    /// The template the candidates are changes to, if any.
    pub codebase: Option<std::sync::Arc<Codebase>>,
}

impl Resolved {
    /// The kernel normalised rewards divide by: the template's codebase as
    /// it is, else the Rust reference.
    pub fn reference(&self) -> Candidate {
        self.codebase
            .as_ref()
            .map_or(Candidate::Reference, |c| c.reference())
    }
}

/// Which dataset, and how much of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatasetKey {
    pub name: String,
    pub queries: QuerySet,
    pub max_base: Option<usize>,
    pub max_queries: Option<usize>,
}

impl Options {
    /// Validates the options (everything but what needs the dataset itself)
    /// against the service's `codebases`.
    pub fn resolve(&self, codebases: &Codebases) -> Result<Resolved, BadRequest> {
        let codebase = match &self.template {
            None => None,
            Some(name) => Some(codebases.get(name).cloned().ok_or_else(|| {
                let names = codebases.names();
                bad(if names.is_empty() {
                    format!(
                        "unknown template {name:?}: this service was started without \
                         templates (anneval serve --template DIR)"
                    )
                } else {
                    format!(
                        "unknown template {name:?}; this service has: {}",
                        names.join(", ")
                    )
                })
            })?),
        };
        let name = self
            .dataset
            .clone()
            .unwrap_or_else(|| registry::DEFAULT_DATASET.into());
        // Only registered names: a remote client must not name server files.
        if registry::lookup(&name).is_none() {
            return Err(bad(format!(
                "unknown dataset {name:?}; GET /v1/datasets lists the registered ones"
            )));
        }
        if self.max_base == Some(0) || self.max_queries == Some(0) {
            return Err(bad("max_base and max_queries must be at least 1"));
        }
        let defaults = ScoreOptions::default();
        if self.ef.as_ref().is_some_and(|efs| efs.len() > 100) {
            return Err(bad("at most 100 ef values"));
        }
        let runs = self.runs.unwrap_or(defaults.runs);
        if runs > 20 {
            return Err(bad("runs must be at most 20"));
        }
        let sweep = SweepName::sweep(self.sweep, self.ef.clone());
        let opts = ScoreOptions {
            k: self.k.unwrap_or(defaults.k),
            sweep,
            runs,
            params: self
                .params
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            band: self.band.map_or(defaults.band, |[lo, hi]| (lo, hi)),
            fuel: self.fuel.unwrap_or(true),
            ..defaults
        };
        // What can be checked without the dataset's depth and size.
        let (lo, hi) = opts.band;
        if !((0.0..1.0).contains(&lo) && lo < hi && hi <= 1.0) {
            return Err(bad(format!(
                "band [{lo}, {hi}] must satisfy 0 <= lo < hi <= 1"
            )));
        }
        let bad_efs = matches!(&opts.sweep, Sweep::Efs(efs) if efs.is_empty() || efs.contains(&0));
        if opts.k == 0 || opts.runs == 0 || bad_efs {
            return Err(bad(
                "k, runs and every ef must be positive, with at least one ef",
            ));
        }
        Ok(Resolved {
            dataset: DatasetKey {
                name,
                queries: self.queries.unwrap_or_default(),
                max_base: self.max_base,
                max_queries: self.max_queries,
            },
            opts,
            engine: self.engine.unwrap_or(Engine::Wasm),
            wait: self.wait.unwrap_or(true),
            codebase,
        })
    }
}

const ONE_CANDIDATE: &str = "a candidate is exactly one of {\"source\": ...}, {\"files\": {path: text, ...}}, \
     {\"wasm_base64\": ...} or {\"reference\": true}";

impl CandidateSpec {
    /// The candidate, with an origin naming how it arrived: with a
    /// template, the files it changes in `codebase` (or its reference).
    pub fn candidate(
        &self,
        max_bytes: usize,
        codebase: Option<&Codebase>,
    ) -> Result<Candidate, BadRequest> {
        if let Some(codebase) = codebase {
            return self.in_codebase(max_bytes, codebase);
        }
        let language = self.language.unwrap_or(Language::Rust);
        if self.language.is_some() && self.wasm_base64.is_some() {
            return Err(bad(
                "language is for source and reference candidates; a component has none",
            ));
        }
        if let Some(files) = &self.files {
            if self.source.is_some() || self.wasm_base64.is_some() || self.reference.is_some() {
                return Err(bad(ONE_CANDIDATE));
            }
            let bundle = crate::bundle::Bundle::from_files(files.clone(), max_bytes)
                .map_err(|e| bad(format!("files: {e}")))?;
            let (text, language) = bundle.flatten().map_err(|e| bad(format!("files: {e}")))?;
            if self.language.is_some_and(|l| l != language) {
                return Err(bad(format!(
                    "files: the kernel's file says {language}, the request's language says otherwise"
                )));
            }
            return Ok(Candidate::Source {
                origin: format!("files:{}", &hex(&Sha256::digest(text.as_bytes()))[..12]),
                text,
                language,
            });
        }
        match (&self.source, &self.wasm_base64, self.reference) {
            (Some(text), None, None | Some(false)) => {
                if text.len() > max_bytes {
                    return Err(BadRequest(
                        413,
                        format!("the source is over {max_bytes} bytes"),
                    ));
                }
                Ok(Candidate::Source {
                    origin: format!("source:{}", &hex(&Sha256::digest(text.as_bytes()))[..12]),
                    text: text.clone(),
                    language,
                })
            }
            (None, Some(b64), None | Some(false)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| bad(format!("wasm_base64 is not valid base64: {e}")))?;
                Ok(Candidate::Component {
                    origin: format!("component:{}", &hex(&Sha256::digest(&bytes))[..12]),
                    bytes,
                })
            }
            (None, None, Some(true)) => match language {
                Language::Rust => Ok(Candidate::Reference),
                _ => Ok(Candidate::Source {
                    origin: format!("reference-{language}"),
                    text: language.reference().to_string(),
                    language,
                }),
            },
            _ => Err(bad(ONE_CANDIDATE)),
        }
    }
}

impl CandidateSpec {
    fn in_codebase(&self, max_bytes: usize, codebase: &Codebase) -> Result<Candidate, BadRequest> {
        if self.language.is_some_and(|l| l != codebase.language) {
            return Err(bad(format!(
                "template {} is {}; the request's language says otherwise",
                codebase.name, codebase.language
            )));
        }
        match (&self.files, &self.source, &self.wasm_base64, self.reference) {
            (Some(files), None, None, None | Some(false)) => {
                let mut size = 0usize;
                for text in files.values() {
                    size += text.len();
                }
                if size > max_bytes {
                    return Err(BadRequest(
                        413,
                        format!("the files are over {max_bytes} bytes"),
                    ));
                }
                codebase
                    .candidate(files.clone(), max_bytes)
                    .map_err(|e| bad(format!("files: {e}")))
            }
            (None, None, None, Some(true)) => Ok(codebase.reference()),
            _ => Err(bad(format!(
                "a candidate of template {} is {{\"files\": {{path: text, ...}}}} (the files it \
                 changes) or {{\"reference\": true}} (the codebase as it is)",
                codebase.name
            ))),
        }
    }
}

/// The digest of what a candidate is.
fn candidate_digest(candidate: &Candidate) -> String {
    match candidate {
        Candidate::Reference => format!(
            "reference:{}",
            hex(&Sha256::digest(template::reference_kernel()))
        ),
        // Rust keys predate the other languages and stay as they were.
        Candidate::Source {
            text,
            language: Language::Rust,
            ..
        } => format!("source:{}", hex(&Sha256::digest(text.as_bytes()))),
        Candidate::Source { text, language, .. } => {
            format!(
                "source-{language}:{}",
                hex(&Sha256::digest(text.as_bytes()))
            )
        }
        Candidate::Component { bytes, .. } => format!("component:{}", hex(&Sha256::digest(bytes))),
    }
}

/// What a measurement was asked to be, candidates aside: dataset, engine,
/// options, anneval version.
fn canonical_options(r: &Resolved) -> serde_json::Value {
    let mut canonical = serde_json::json!({
        "anneval": env!("CARGO_PKG_VERSION"),
        "dataset": r.dataset,
        "engine": r.engine,
        "k": r.opts.k,
        "sweep": r.opts.sweep,
        "min_pass_seconds": r.opts.min_pass_seconds,
        "runs": r.opts.runs,
        "params": r.opts.params,
        "band": [r.opts.band.0, r.opts.band.1],
        "fuel": r.opts.fuel,
    });
    // Runs against different references never gather; without a template
    // the digests are as they always were.
    if let Some(codebase) = &r.codebase {
        canonical["template"] = format!("{}:{}", codebase.name, codebase.digest()).into();
    }
    canonical
}

/// The ledger key of a request: what was measured, on what, how, by which
/// anneval. An identical request gets the stored answer.
pub fn content_hash(kind: &str, candidates: &[Candidate], r: &Resolved) -> String {
    let mut canonical = canonical_options(r);
    canonical["kind"] = kind.into();
    canonical["candidates"] = candidates.iter().map(candidate_digest).collect();
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// The digest of the options alone: measurements with equal digests are
/// comparable (they gather into one run; they share an exemplar pool).
pub fn options_digest(r: &Resolved) -> String {
    hex(&Sha256::digest(canonical_options(r).to_string().as_bytes()))
}

/// A source candidate's language, source, and the digest of what it does:
/// its source without comments, whitespace collapsed (reformatting or
/// commenting a kernel does not make it distinct).
pub fn source_identity(candidate: &Candidate) -> Option<(Language, &str, String)> {
    let Candidate::Source { text, language, .. } = candidate else {
        return None;
    };
    let code = without_comments(text);
    let collapsed = code.split_whitespace().collect::<Vec<_>>().join(" ");
    let digest = hex(&Sha256::digest(
        format!("{language}:{collapsed}").as_bytes(),
    ));
    Some((*language, text, digest))
}

/// `text` without `//` and `/* */` comments (the same in Rust, C and C++),
/// leaving double-quoted strings alone; each comment becomes a space.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The answer to `POST /v1/score`: the evaluation, its id, whether it came
/// from the ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoreResponse {
    pub id: String,
    pub cached: bool,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// One candidate's part of a batch answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResult {
    pub id: String,
    /// reward / the reference's reward in the same run (null if the
    /// reference's is 0).
    pub normalized_reward: Option<f64>,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// The answer to `POST /v1/score/batch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    pub id: String,
    pub cached: bool,
    pub reference: Evaluation,
    /// In the order the candidates were given.
    pub results: Vec<BatchResult>,
}

/// The answer to `POST /v1/reward`: one candidate measured in a run
/// together with the reference kernel (and whatever other candidates with
/// the same options arrived while it waited for a worker).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RewardResponse {
    pub id: String,
    pub cached: bool,
    /// reward / the reference's reward in the same run (null unless the
    /// reference is `ok` with a positive reward).
    pub normalized_reward: Option<f64>,
    /// The reference's reward in that run.
    pub reference_reward: f64,
    /// The run's ledger id, and how many candidates it measured.
    pub run: String,
    pub run_size: usize,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// The curve of an evaluation in a few figures, for the exemplar pool.
pub fn curve_summary(e: &Evaluation) -> serde_json::Value {
    serde_json::json!({
        "max_recall": e.max_recall,
        "qps_at_recall": e.qps_at_recall,
        "frontier": e.frontier,
        "reward_cv": e.reward_cv,
        "build_seconds": e.build_seconds,
        "index_bytes": e.index_bytes,
    })
}

/// The most exemplars one request may ask for.
pub const MAX_EXEMPLARS: usize = 64;

/// A fresh evaluation id.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated_with_messages() {
        let ok: ScoreRequest = serde_json::from_str(
            r#"{"candidate": {"reference": true}, "ef": [40, 10, 10], "params": {"m": "8"}}"#,
        )
        .unwrap();
        let r = ok.options.resolve(&Codebases::default()).unwrap();
        assert_eq!(r.opts.sweep, Sweep::Efs(vec![10, 40]));
        assert_eq!(r.dataset.name, registry::DEFAULT_DATASET);
        assert!(r.wait);
        assert!(matches!(
            ok.candidate.candidate(1000, None).unwrap(),
            Candidate::Reference
        ));

        let unknown = Options {
            dataset: Some("../../etc/passwd".into()),
            ..Options::default()
        };
        assert!(
            unknown
                .resolve(&Codebases::default())
                .unwrap_err()
                .1
                .contains("unknown dataset")
        );
        let bad_band = Options {
            band: Some([0.9, 0.8]),
            ..Options::default()
        };
        assert!(
            bad_band
                .resolve(&Codebases::default())
                .unwrap_err()
                .1
                .contains("band")
        );
        let two = CandidateSpec {
            source: Some("x".into()),
            reference: Some(true),
            ..Default::default()
        };
        assert!(
            two.candidate(1000, None)
                .unwrap_err()
                .1
                .contains("exactly one")
        );
        let big = CandidateSpec {
            source: Some("x".repeat(2000)),
            ..Default::default()
        };
        assert_eq!(big.candidate(1000, None).unwrap_err().0, 413);
        let files = |pairs: &[(&str, &str)]| CandidateSpec {
            files: Some(
                pairs
                    .iter()
                    .map(|(p, t)| (p.to_string(), t.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        let bundle = files(&[("kernel.c", "#include \"a.h\"\n"), ("a.h", "int a;\n")]);
        let Ok(Candidate::Source { text, language, .. }) = bundle.candidate(1000, None) else {
            panic!("a bundle is a source candidate");
        };
        assert_eq!(language, Language::C);
        assert!(text.contains("#line 1 \"a.h\"\nint a;\n"), "{text}");
        let escapes = files(&[("kernel.c", ""), ("../a.h", "")]);
        assert!(
            escapes
                .candidate(1000, None)
                .unwrap_err()
                .1
                .contains("no `..`")
        );
        let both = CandidateSpec {
            source: Some("x".into()),
            ..files(&[("kernel.c", "")])
        };
        assert!(
            both.candidate(1000, None)
                .unwrap_err()
                .1
                .contains("exactly one")
        );
        let body = serde_json::json!({"candidate": {}, "efs": [1]});
        assert!(
            check_fields(&body, &["candidate"])
                .unwrap_err()
                .1
                .contains("unknown field \"efs\"")
        );
    }

    #[test]
    fn query_parameters_become_options() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut object = query_options(
            &pairs(&[
                ("dataset", "random-xs-20-euclidean"),
                ("ef", "40,10"),
                ("band", "0.8,0.9"),
                ("fuel", "false"),
                ("max_queries", "100"),
                ("param.m", "8"),
                ("penalty", "-2"),
            ]),
            &["penalty"],
        )
        .unwrap();
        assert_eq!(object.remove("penalty").unwrap(), "-2");
        let r = options_from(object)
            .unwrap()
            .resolve(&Codebases::default())
            .unwrap();
        assert_eq!(r.opts.sweep, Sweep::Efs(vec![10, 40]));
        assert_eq!(r.opts.band, (0.8, 0.9));
        assert!(!r.opts.fuel);
        assert_eq!(r.dataset.max_queries, Some(100));
        assert_eq!(r.opts.params, [("m".to_string(), "8".to_string())]);
        let typo = query_options(&pairs(&[("efs", "1")]), &[]).unwrap_err();
        assert!(
            typo.1.contains("unknown query parameter \"efs\""),
            "{}",
            typo.1
        );
        let nan = query_options(&pairs(&[("k", "ten")]), &[]).unwrap_err();
        assert!(nan.1.contains("not a number"));
        let ef = query_options(&pairs(&[("ef", "10,x")]), &[]).unwrap_err();
        assert!(ef.1.contains("not a number"));
    }

    #[test]
    fn reformatting_or_commenting_a_kernel_keeps_its_identity() {
        let source = |text: &str| Candidate::Source {
            origin: "x".into(),
            text: text.into(),
            language: Language::Rust,
        };
        let id = |text: &str| source_identity(&source(text)).unwrap().2;
        let base = id("fn a() { let s = \"//not a comment\"; x + 1 }");
        assert_eq!(
            base,
            id("// tuned\nfn a() {\n    let s = \"//not a comment\"; /* why */ x + 1\n}\n")
        );
        assert_ne!(base, id("fn a() { let s = \"//other\"; x + 1 }"));
        assert_ne!(base, id("fn a() { let s = \"//not a comment\"; x + 2 }"));
        let cpp = Candidate::Source {
            origin: "x".into(),
            text: "fn a() { let s = \"//not a comment\"; x + 1 }".into(),
            language: Language::Cpp,
        };
        assert_ne!(base, source_identity(&cpp).unwrap().2);
        assert!(source_identity(&Candidate::Reference).is_none());
    }

    #[test]
    fn the_hash_changes_with_what_is_measured_only() {
        let r = Options::default().resolve(&Codebases::default()).unwrap();
        let source = |origin: &str, text: &str, language| Candidate::Source {
            origin: origin.into(),
            text: text.into(),
            language,
        };
        let a = source("a", "fn a() {}", Language::Rust);
        let renamed = source("elsewhere", "fn a() {}", Language::Rust);
        let other = source("a", "fn b() {}", Language::Rust);
        let as_cpp = source("a", "fn a() {}", Language::Cpp);
        let h = content_hash("score", std::slice::from_ref(&a), &r);
        assert_eq!(h, content_hash("score", &[renamed], &r));
        assert_ne!(h, content_hash("score", &[other], &r));
        assert_ne!(h, content_hash("score", &[as_cpp], &r));
        let mut more_runs = r.clone();
        more_runs.opts.runs += 1;
        assert_ne!(h, content_hash("score", &[a], &more_runs));
    }
}
