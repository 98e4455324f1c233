//! The service's requests and answers (JSON), their validation, and the
//! content hash that keys the ledger's cache. Documented in `openapi.yaml`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compile::Language;
use crate::dataset::registry;
use crate::dataset::split::QuerySet;
use crate::evaluation::Evaluation;
use crate::evaluator::{Candidate, Engine, ScoreOptions};
use crate::measure::sweep::{FULL_EFS, Sweep};
use crate::template::{self, hex};

/// A candidate as a request carries it: exactly one of the three.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateSpec {
    /// A kernel's source, in `language`.
    pub source: Option<String>,
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
];

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
    /// Validates the options (everything but what needs the dataset itself).
    pub fn resolve(&self) -> Result<Resolved, BadRequest> {
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
        })
    }
}

impl CandidateSpec {
    /// The candidate, with an origin naming how it arrived.
    pub fn candidate(&self, max_bytes: usize) -> Result<Candidate, BadRequest> {
        let language = self.language.unwrap_or(Language::Rust);
        if self.language.is_some() && self.wasm_base64.is_some() {
            return Err(bad(
                "language is for source and reference candidates; a component has none",
            ));
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
            _ => Err(bad(
                "a candidate is exactly one of {\"source\": ...}, {\"wasm_base64\": ...} or {\"reference\": true}",
            )),
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

/// The ledger key of a request: what was measured, on what, how, by which
/// anneval. An identical request gets the stored answer.
pub fn content_hash(kind: &str, candidates: &[Candidate], r: &Resolved) -> String {
    let canonical = serde_json::json!({
        "anneval": env!("CARGO_PKG_VERSION"),
        "kind": kind,
        "candidates": candidates.iter().map(candidate_digest).collect::<Vec<_>>(),
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
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
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
        let r = ok.options.resolve().unwrap();
        assert_eq!(r.opts.sweep, Sweep::Efs(vec![10, 40]));
        assert_eq!(r.dataset.name, registry::DEFAULT_DATASET);
        assert!(r.wait);
        assert!(matches!(
            ok.candidate.candidate(1000).unwrap(),
            Candidate::Reference
        ));

        let unknown = Options {
            dataset: Some("../../etc/passwd".into()),
            ..Options::default()
        };
        assert!(unknown.resolve().unwrap_err().1.contains("unknown dataset"));
        let bad_band = Options {
            band: Some([0.9, 0.8]),
            ..Options::default()
        };
        assert!(bad_band.resolve().unwrap_err().1.contains("band"));
        let two = CandidateSpec {
            source: Some("x".into()),
            reference: Some(true),
            ..Default::default()
        };
        assert!(two.candidate(1000).unwrap_err().1.contains("exactly one"));
        let big = CandidateSpec {
            source: Some("x".repeat(2000)),
            ..Default::default()
        };
        assert_eq!(big.candidate(1000).unwrap_err().0, 413);
        let body = serde_json::json!({"candidate": {}, "efs": [1]});
        assert!(
            check_fields(&body, &["candidate"])
                .unwrap_err()
                .1
                .contains("unknown field \"efs\"")
        );
    }

    #[test]
    fn the_hash_changes_with_what_is_measured_only() {
        let r = Options::default().resolve().unwrap();
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
