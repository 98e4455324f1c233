//! Normalised rewards for callers that send one candidate at a time
//! (`POST /v1/reward`, `POST /get_reward`): verl's Reward Loop, OpenRLHF,
//! verifiers.
//!
//! A normalised reward is only as good as its reference: the machine's speed
//! moves by several times over seconds, so the reference must be measured in
//! the same interleaved run as the candidate, never remembered. Each request
//! therefore joins a *gathering*: the candidates with the same options that
//! are waiting for a worker. The first one opens it and queues one job; the
//! others join it until a worker takes the job, which closes it and measures
//! all of them in one run together with the reference kernel, as a batch is
//! measured. Under load the runs fill up (up to a batch's limit) and the
//! reference's cost is shared; an idle service measures a lone candidate
//! with the reference beside it, which about doubles that request's time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::api::MAX_BATCH;
use super::workers::Reply;
use crate::evaluator::Candidate;

/// One waiting request.
pub struct Member {
    /// Its ledger id.
    pub id: String,
    pub candidate: Candidate,
    pub reply: oneshot::Sender<Reply>,
}

/// The candidates waiting together; closed once a worker takes them.
pub struct Gathering {
    members: Mutex<Option<Vec<Member>>>,
}

impl Gathering {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Member>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `member` unless the gathering is closed or full.
    fn join(&self, member: Member) -> Result<(), Member> {
        match self.lock().as_mut() {
            Some(members) if members.len() < MAX_BATCH => {
                members.push(member);
                Ok(())
            }
            _ => Err(member),
        }
    }

    /// Closes the gathering and takes its members (none if already closed).
    pub fn close(&self) -> Vec<Member> {
        self.lock().take().unwrap_or_default()
    }
}

/// The open gathering of each options digest.
#[derive(Default)]
pub struct Gatherer {
    open: Mutex<HashMap<String, Arc<Gathering>>>,
}

impl Gatherer {
    /// Adds `members` to the open gathering for `key` while it has room,
    /// and opens new gatherings for the rest (a batch's limit each), handing
    /// each to `queue`, which fails when the queue is full: then the members
    /// not queued are given back. One request's members are added under one
    /// lock, so they stay together; holding it while queueing means no one
    /// joins a gathering that is never queued.
    pub fn join(
        &self,
        key: &str,
        members: Vec<Member>,
        mut queue: impl FnMut(Arc<Gathering>) -> bool,
    ) -> Result<(), Vec<Member>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Closed gatherings are dropped as they are met.
        open.retain(|_, g| g.lock().is_some());
        let mut rest = members.into_iter();
        let mut waiting: Vec<Member> = Vec::new();
        if let Some(gathering) = open.get(key) {
            for member in rest.by_ref() {
                if let Err(member) = gathering.join(member) {
                    waiting.push(member);
                    break;
                }
            }
        }
        waiting.extend(rest);
        while !waiting.is_empty() {
            let chunk: Vec<Member> = waiting.drain(..waiting.len().min(MAX_BATCH)).collect();
            let gathering = Arc::new(Gathering {
                members: Mutex::new(Some(chunk)),
            });
            if !queue(gathering.clone()) {
                let mut back = gathering.close();
                back.append(&mut waiting);
                return Err(back);
            }
            open.insert(key.to_string(), gathering);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> (Member, oneshot::Receiver<Reply>) {
        let (reply, receiver) = oneshot::channel();
        let member = Member {
            id: id.into(),
            candidate: Candidate::Reference,
            reply,
        };
        (member, receiver)
    }

    #[test]
    fn requests_join_until_a_worker_closes_the_gathering() {
        let gatherer = Gatherer::default();
        let queued = std::cell::RefCell::new(Vec::new());
        let queue = |g: Arc<Gathering>| {
            queued.borrow_mut().push(g);
            true
        };
        assert!(gatherer.join("a", vec![member("1").0], &queue).is_ok());
        assert!(gatherer.join("a", vec![member("2").0], &queue).is_ok());
        assert!(gatherer.join("b", vec![member("3").0], &queue).is_ok());
        assert_eq!(queued.borrow().len(), 2, "one job per options");
        let ids: Vec<String> = queued.borrow()[0]
            .close()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["1", "2"]);
        // Closed: the next request opens (and queues) a new gathering.
        assert!(gatherer.join("a", vec![member("4").0], &queue).is_ok());
        assert_eq!(queued.borrow().len(), 3);
        assert!(queued.borrow()[0].close().is_empty(), "closed once");
        // One request of more than a batch: full gatherings, then the rest.
        let many = (0..MAX_BATCH + 5)
            .map(|i| member(&format!("c{i}")).0)
            .collect();
        assert!(gatherer.join("c", many, &queue).is_ok());
        assert_eq!(queued.borrow().len(), 5);
        assert!(gatherer.join("c", vec![member("late").0], &queue).is_ok());
        assert_eq!(queued.borrow().len(), 5, "joins the open one with room");
        assert_eq!(queued.borrow()[3].close().len(), MAX_BATCH);
        let last: Vec<String> = queued.borrow()[4]
            .close()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(last.len(), 6);
        assert_eq!(last[0], "c64");
        assert_eq!(last[5], "late");
    }

    #[test]
    fn a_refused_queue_gives_the_members_back() {
        let gatherer = Gatherer::default();
        let members = vec![member("1").0, member("2").0];
        let back = gatherer.join("a", members, |_| false).unwrap_err();
        let ids: Vec<String> = back.into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["1", "2"]);
        // Nothing was left open to join.
        let mut queued = 0;
        let _ = gatherer.join("a", vec![member("3").0], |_| {
            queued += 1;
            true
        });
        assert_eq!(queued, 1);
    }
}
