//! Requests identical to one being measured wait for its answer instead of
//! being measured again. A trainer that retries after its own timeout
//! (OpenRLHF gives up on a request after 180 s and posts it again) joins
//! the measurement in flight; so do two ranks that send the same kernel.
//! Keyed by the request's content hash, as the ledger's stored answers are:
//! before a measurement ends a repeat joins it here, after it ends the
//! ledger answers it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::workers::Reply;

/// The measurements in flight, by content hash, with who waits for each.
#[derive(Default)]
pub struct InFlight {
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<Reply>>>>,
}

/// What a request does about an identical one.
pub enum Entry {
    /// None is in flight: this request is measured, and relays its answer
    /// through the [`Lead`].
    Lead(Lead),
    /// One is in flight: its answer arrives here.
    Follow(oneshot::Receiver<Reply>),
}

/// The answer of a request that was not measured after all, for those who
/// joined it.
const NOT_MEASURED: &str = "the identical request this one joined was not measured (the queue was \
                            full, its client left before it was queued, or the service is \
                            stopping): retry";

/// A measurement others may join. Dropped without [`Lead::relay`] (an early
/// error, a client that left while its request waited for room), it tells
/// those who joined that there will be no answer.
pub struct Lead {
    inflight: Arc<InFlight>,
    hash: Option<String>,
}

impl InFlight {
    pub fn enter(self: &Arc<Self>, hash: &str) -> Entry {
        let mut waiting = self.lock();
        match waiting.get_mut(hash) {
            Some(followers) => {
                let (sender, receiver) = oneshot::channel();
                followers.push(sender);
                Entry::Follow(receiver)
            }
            None => {
                waiting.insert(hash.to_string(), Vec::new());
                Entry::Lead(Lead {
                    inflight: Arc::clone(self),
                    hash: Some(hash.to_string()),
                })
            }
        }
    }

    fn finish(&self, hash: &str, reply: &Reply) {
        let followers = self.lock().remove(hash).unwrap_or_default();
        for follower in followers {
            let _ = follower.send(reply.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<Reply>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Lead {
    /// The measurement's answer, arriving on `from`, sent to everyone who
    /// joined meanwhile and to the receiver returned (the leader's). A task
    /// of its own relays it, so followers get it even when the leader's
    /// client has gone.
    pub fn relay(mut self, from: oneshot::Receiver<Reply>) -> oneshot::Receiver<Reply> {
        let (sender, receiver) = oneshot::channel();
        let inflight = Arc::clone(&self.inflight);
        let hash = self.hash.take().unwrap_or_default();
        tokio::spawn(async move {
            let reply = from
                .await
                .unwrap_or_else(|_| Err((503, NOT_MEASURED.to_string())));
            inflight.finish(&hash, &reply);
            let _ = sender.send(reply);
        });
        receiver
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if let Some(hash) = self.hash.take() {
            self.inflight
                .finish(&hash, &Err((503, NOT_MEASURED.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(entry: Entry) -> Lead {
        match entry {
            Entry::Lead(lead) => lead,
            Entry::Follow(_) => panic!("nothing identical is in flight"),
        }
    }

    fn follow(entry: Entry) -> oneshot::Receiver<Reply> {
        match entry {
            Entry::Follow(receiver) => receiver,
            Entry::Lead(_) => panic!("an identical request in flight is joined"),
        }
    }

    #[tokio::test]
    async fn a_repeat_joins_the_measurement_and_both_get_its_answer() {
        let inflight = Arc::new(InFlight::default());
        let first = lead(inflight.enter("h"));
        let repeat = follow(inflight.enter("h"));
        let _other = lead(inflight.enter("other"));
        let (worker, from) = oneshot::channel();
        let leader = first.relay(from);
        worker.send(Ok(serde_json::json!({"id": "x"}))).unwrap();
        assert_eq!(repeat.await.unwrap().unwrap()["id"], "x");
        assert_eq!(leader.await.unwrap().unwrap()["id"], "x");
        // Once answered, the next identical request leads (the ledger
        // answers it before it gets here).
        let _ = lead(inflight.enter("h"));
    }

    #[tokio::test]
    async fn followers_hear_when_the_leader_is_never_measured() {
        let inflight = Arc::new(InFlight::default());
        // The job was dropped (the queue was full).
        let first = lead(inflight.enter("h"));
        let repeat = follow(inflight.enter("h"));
        let (worker, from) = oneshot::channel::<Reply>();
        let leader = first.relay(from);
        drop(worker);
        assert_eq!(repeat.await.unwrap().unwrap_err().0, 503);
        assert_eq!(leader.await.unwrap().unwrap_err().0, 503);
        // The leader's handler ended before queueing it.
        let first = lead(inflight.enter("g"));
        let repeat = follow(inflight.enter("g"));
        drop(first);
        assert_eq!(repeat.await.unwrap().unwrap_err().0, 503);
        let _ = lead(inflight.enter("g"));
    }
}
