//! The service's ledger: every request and result in SQLite, keyed by id and
//! by a content hash of what was asked (candidate, dataset, options, anneval
//! version). An identical request is answered from it, results survive
//! restarts, and work that was queued or running when the process died is
//! marked `interrupted` when it starts again: nothing is silently lost.
//!
//! Beside the evaluations, the ledger keeps the exemplar pool: every
//! candidate measured against the reference (a batch member or a gathered
//! reward), keyed by the options it was measured with, so a trainer can ask
//! for the best distinct kernels so far (CRINN's contrastive prompts).

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Where an evaluation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Done,
    /// The process stopped before the work finished; submit it again.
    Interrupted,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "done" => Status::Done,
            _ => Status::Interrupted,
        }
    }
}

/// One row of the ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub status: Status,
    pub hash: String,
    pub request: serde_json::Value,
    /// The result, once done.
    pub result: Option<serde_json::Value>,
    pub created: f64,
    pub finished: Option<f64>,
}

/// One measurement for the exemplar pool.
pub struct Measured {
    /// The evaluation's id.
    pub id: String,
    /// The digest of the options it was measured with.
    pub options: String,
    /// The digest of the candidate's source, whitespace collapsed.
    pub candidate: String,
    pub language: String,
    pub source: String,
    pub normalized: f64,
    pub reward: f64,
    /// What the curve looked like (see `Exemplar::summary`).
    pub summary: serde_json::Value,
}

/// A distinct candidate of the pool.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exemplar {
    /// The evaluation whose figures are shown (the median measurement).
    pub id: String,
    /// The digest of its source, whitespace collapsed.
    pub candidate: String,
    pub language: String,
    pub source: String,
    /// The median over its measurements of reward / the reference's reward
    /// in the same run.
    pub normalized_reward: f64,
    /// The raw reward of the median measurement.
    pub reward: f64,
    pub measurements: usize,
    pub best_normalized_reward: f64,
    /// The median measurement's curve: max recall, QPS at recall 0.9 /
    /// 0.95 / 0.99, the Pareto frontier, build seconds, index bytes, reward
    /// CV.
    pub summary: serde_json::Value,
}

pub struct Ledger {
    db: Mutex<Connection>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` and marks work left queued or
    /// running by a previous process as interrupted. Returns the ledger and
    /// how many entries were marked.
    pub fn open(path: &Path) -> Result<(Ledger, usize)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::paths::ensure_dir(dir)?;
        }
        let db = Connection::open(path)
            .with_context(|| format!("opening the ledger {}", path.display()))?;
        // WAL with normal sync survives a killed process without losing
        // committed rows.
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS evaluations (
                 id TEXT PRIMARY KEY,
                 hash TEXT NOT NULL,
                 status TEXT NOT NULL,
                 request TEXT NOT NULL,
                 result TEXT,
                 created REAL NOT NULL,
                 started REAL,
                 finished REAL
             );
             CREATE INDEX IF NOT EXISTS evaluations_by_hash ON evaluations (hash, status);
             CREATE TABLE IF NOT EXISTS exemplars (
                 id TEXT PRIMARY KEY,
                 options TEXT NOT NULL,
                 candidate TEXT NOT NULL,
                 language TEXT NOT NULL,
                 source TEXT NOT NULL,
                 normalized REAL NOT NULL,
                 reward REAL NOT NULL,
                 summary TEXT NOT NULL,
                 finished REAL NOT NULL
             );
             CREATE INDEX IF NOT EXISTS exemplars_by_options ON exemplars (options, language);",
        )
        .with_context(|| format!("preparing the ledger {}", path.display()))?;
        let interrupted = db.execute(
            "UPDATE evaluations SET status = 'interrupted', finished = ?1 WHERE status IN ('queued', 'running')",
            params![now()],
        )?;
        Ok((Ledger { db: Mutex::new(db) }, interrupted))
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock would be a bug; the connection
        // itself stays consistent, so carry on with it.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new request.
    pub fn insert(&self, id: &str, hash: &str, request: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "INSERT INTO evaluations (id, hash, status, request, created) VALUES (?1, ?2, 'queued', ?3, ?4)",
            params![id, hash, request.to_string(), now()],
        )?;
        Ok(())
    }

    /// Removes a request that was never queued (the queue was full).
    pub fn forget(&self, id: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM evaluations WHERE id = ?1", params![id])?;
        Ok(())
    }

    pub fn set_status(&self, id: &str, status: Status) -> Result<()> {
        let column = if status == Status::Running {
            "started"
        } else {
            "finished"
        };
        self.db().execute(
            &format!("UPDATE evaluations SET status = ?1, {column} = ?2 WHERE id = ?3"),
            params![status.as_str(), now(), id],
        )?;
        Ok(())
    }

    /// Stores a finished result.
    pub fn finish(&self, id: &str, result: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "UPDATE evaluations SET status = 'done', result = ?1, finished = ?2 WHERE id = ?3",
            params![result.to_string(), now(), id],
        )?;
        Ok(())
    }

    /// The newest finished result for `hash`, if any.
    pub fn cached(&self, hash: &str) -> Result<Option<(String, serde_json::Value)>> {
        let row: Option<(String, String)> = self
            .db()
            .query_row(
                "SELECT id, result FROM evaluations WHERE hash = ?1 AND status = 'done'
                 ORDER BY finished DESC LIMIT 1",
                params![hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((id, result)) => Some((id, serde_json::from_str(&result)?)),
            None => None,
        })
    }

    /// Adds one measurement of a candidate to the exemplar pool.
    pub fn add_exemplar(&self, e: &Measured) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO exemplars
                 (id, options, candidate, language, source, normalized, reward, summary, finished)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.id,
                e.options,
                e.candidate,
                e.language,
                e.source,
                e.normalized,
                e.reward,
                e.summary.to_string(),
                now()
            ],
        )?;
        Ok(())
    }

    /// The best `limit` distinct candidates measured with `options` (and in
    /// `language`, if given), best first. A candidate measured several
    /// times is ranked by the median of its normalised rewards, so one
    /// lucky measurement does not put it on top.
    pub fn exemplars(
        &self,
        options: &str,
        language: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Exemplar>> {
        let db = self.db();
        let mut statement = db.prepare(
            "SELECT id, candidate, language, source, normalized, reward, summary FROM exemplars
             WHERE options = ?1 AND (?2 IS NULL OR language = ?2)
             ORDER BY candidate, normalized",
        )?;
        let rows = statement.query_map(params![options, language], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, f64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        // Rows come grouped by candidate, ascending in normalised reward.
        type Row = (String, String, String, String, f64, f64, String);
        let mut groups: Vec<Vec<Row>> = Vec::new();
        for row in rows {
            let row = row?;
            match groups.last_mut() {
                Some(group) if group[0].1 == row.1 => group.push(row),
                _ => groups.push(vec![row]),
            }
        }
        let mut pool: Vec<Exemplar> = groups
            .into_iter()
            .map(|group| {
                // The median measurement (the lower one of an even count).
                let (id, candidate, language, source, normalized, reward, summary) =
                    group[(group.len() - 1) / 2].clone();
                Ok(Exemplar {
                    id,
                    candidate,
                    language,
                    source,
                    normalized_reward: normalized,
                    reward,
                    measurements: group.len(),
                    best_normalized_reward: group.last().map_or(normalized, |r| r.4),
                    summary: serde_json::from_str(&summary)?,
                })
            })
            .collect::<Result<_>>()?;
        pool.sort_by(|a, b| b.normalized_reward.total_cmp(&a.normalized_reward));
        pool.truncate(limit);
        Ok(pool)
    }

    pub fn get(&self, id: &str) -> Result<Option<Entry>> {
        let row = self
            .db()
            .query_row(
                "SELECT id, status, hash, request, result, created, finished FROM evaluations WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, f64>(5)?,
                        r.get::<_, Option<f64>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, status, hash, request, result, created, finished)) = row else {
            return Ok(None);
        };
        Ok(Some(Entry {
            id,
            status: Status::parse(&status),
            hash,
            request: serde_json::from_str(&request)?,
            result: result.map(|r| serde_json::from_str(&r)).transpose()?,
            created,
            finished,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_survive_and_unfinished_work_is_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let (ledger, marked) = Ledger::open(&path).unwrap();
            assert_eq!(marked, 0);
            let request = serde_json::json!({"dataset": "d"});
            ledger.insert("a", "h1", &request).unwrap();
            ledger.set_status("a", Status::Running).unwrap();
            ledger
                .finish("a", &serde_json::json!({"reward": 5.0}))
                .unwrap();
            ledger.insert("b", "h2", &request).unwrap();
            ledger.set_status("b", Status::Running).unwrap();
            ledger.insert("c", "h3", &request).unwrap();
            assert_eq!(ledger.cached("h1").unwrap().unwrap().1["reward"], 5.0);
            assert!(ledger.cached("h2").unwrap().is_none());
        }
        // A new process: b (running) and c (queued) were interrupted.
        let (ledger, marked) = Ledger::open(&path).unwrap();
        assert_eq!(marked, 2);
        assert_eq!(ledger.get("a").unwrap().unwrap().status, Status::Done);
        assert_eq!(
            ledger.get("b").unwrap().unwrap().status,
            Status::Interrupted
        );
        assert_eq!(
            ledger.get("c").unwrap().unwrap().status,
            Status::Interrupted
        );
        assert!(ledger.get("zzz").unwrap().is_none());
        assert_eq!(ledger.cached("h1").unwrap().unwrap().0, "a");
    }

    fn measured(id: &str, candidate: &str, normalized: f64) -> Measured {
        Measured {
            id: id.into(),
            options: "o".into(),
            candidate: candidate.into(),
            language: "rust".into(),
            source: format!("// {candidate}"),
            normalized,
            reward: normalized * 1000.0,
            summary: serde_json::json!({"max_recall": 0.99}),
        }
    }

    /// Measuring one kernel again and again until a lucky draw does not
    /// put it above a kernel that is steadily faster: the pool ranks by the
    /// median, and shows the median measurement's figures.
    #[test]
    fn exemplars_rank_by_the_median_not_the_luckiest_draw() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        for (i, value) in [1.0, 1.0, 1.6, 1.0].into_iter().enumerate() {
            ledger
                .add_exemplar(&measured(&format!("a{i}"), "lucky", value))
                .unwrap();
        }
        for (i, value) in [1.2, 1.2].into_iter().enumerate() {
            ledger
                .add_exemplar(&measured(&format!("b{i}"), "steady", value))
                .unwrap();
        }
        let mut other = measured("c", "elsewhere", 9.0);
        other.options = "other options".into();
        ledger.add_exemplar(&other).unwrap();
        let pool = ledger.exemplars("o", None, 10).unwrap();
        let ranked: Vec<(&str, f64, usize)> = pool
            .iter()
            .map(|e| (e.candidate.as_str(), e.normalized_reward, e.measurements))
            .collect();
        assert_eq!(ranked, [("steady", 1.2, 2), ("lucky", 1.0, 4)]);
        assert_eq!(pool[1].best_normalized_reward, 1.6);
        assert_eq!(pool[1].reward, 1000.0, "the median measurement's figures");
        assert_eq!(ledger.exemplars("o", None, 1).unwrap().len(), 1);
        assert!(ledger.exemplars("o", Some("cpp"), 10).unwrap().is_empty());
        assert_eq!(
            ledger.exemplars("other options", None, 10).unwrap()[0].candidate,
            "elsewhere"
        );
    }
}
