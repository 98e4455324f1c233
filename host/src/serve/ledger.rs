//! The service's ledger: every request and result in SQLite, keyed by id and
//! by a content hash of what was asked (candidate, dataset, options, anneval
//! version). An identical request is answered from it, results survive
//! restarts, and work that was queued or running when the process died is
//! marked `interrupted` when it starts again: nothing is silently lost.

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
             CREATE INDEX IF NOT EXISTS evaluations_by_hash ON evaluations (hash, status);",
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
}
