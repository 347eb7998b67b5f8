//! Side checks off the consensus path: a bounded queue and a few worker threads run a
//! validator's [`SideChecker`] and hand each result back to the driver, so that a slow check
//! (later, a root-chain lookup) never stalls consensus.

use bttc_engine::{
    delivery::{
        host::{SideCheck, SideCheckResult},
        side_tx::SideTxResult,
    },
    env::{SideChecker, SideChecks},
};
use crossbeam::channel::{self, Sender, TrySendError};
use std::{
    collections::BTreeSet,
    io::Read,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// Largest side-facts file read.
const FACTS_FILE_BYTES_MAX: u64 = 1 << 20;

/// Runs side checks on worker threads; the workers stop when the pool is dropped.
pub struct SideCheckPool {
    queue: Sender<SideCheck>,
    /// Checks dropped because the queue was full (their transactions get a Skip).
    pub dropped: Arc<AtomicU64>,
}

impl SideCheckPool {
    /// `workers` threads taking checks from a queue of at most `queue_len`; each result goes
    /// to `deliver`.
    pub fn start(
        workers: usize,
        queue_len: usize,
        checker: Arc<dyn SideChecker>,
        deliver: impl Fn(SideCheckResult) + Send + Sync + 'static,
    ) -> Self {
        let (queue, work) = channel::bounded::<SideCheck>(queue_len);
        let deliver = Arc::new(deliver);
        for i in 0..workers {
            let work = work.clone();
            let checker = checker.clone();
            let deliver = deliver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("side-check-{i}"))
                .spawn(move || {
                    for check in work {
                        let (result, data) = checker.check(&check.payload);
                        deliver(SideCheckResult {
                            height: check.height,
                            tx_hash: check.tx_hash,
                            result,
                            data,
                        });
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a side-check worker");
            }
        }
        Self {
            queue,
            dropped: Arc::default(),
        }
    }
}

impl SideChecks for SideCheckPool {
    fn submit(&mut self, check: SideCheck) {
        match self.queue.try_send(check) {
            Ok(()) => {}
            Err(TrySendError::Full(check)) | Err(TrySendError::Disconnected(check)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tx = %check.tx_hash, "side-check queue full: this validator skips the transaction");
            }
        }
    }
}

/// The demo application's outside view: one hex payload per line in a file of the
/// validator's data directory. Listed means Yes, otherwise No; the payload is what is signed.
pub struct FactsChecker {
    path: PathBuf,
}

impl FactsChecker {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn facts(&self) -> BTreeSet<Vec<u8>> {
        let Ok(file) = std::fs::File::open(&self.path) else {
            return BTreeSet::new();
        };
        let mut text = String::new();
        if file
            .take(FACTS_FILE_BYTES_MAX)
            .read_to_string(&mut text)
            .is_err()
        {
            return BTreeSet::new();
        }
        text.lines()
            .filter_map(|l| hex::decode(l.trim().trim_start_matches("0x")).ok())
            .collect()
    }
}

impl SideChecker for FactsChecker {
    fn check(&self, payload: &[u8]) -> (SideTxResult, Vec<u8>) {
        let result = if self.facts().contains(payload) {
            SideTxResult::Yes
        } else {
            SideTxResult::No
        };
        (result, payload.to_vec())
    }
}

/// A network validator's checks: a span proposal against its own BTTC head, anything else
/// against its facts file.
pub struct NodeChecker {
    pub facts: FactsChecker,
    pub bttc_head: Arc<crate::network::ChainShared>,
}

impl SideChecker for NodeChecker {
    fn check(&self, payload: &[u8]) -> (SideTxResult, Vec<u8>) {
        let head = self.bttc_head.head.load(Ordering::Acquire);
        bttc_engine::delivery::app::span::check_span_payload(payload, head)
            .unwrap_or_else(|| self.facts.check(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{B256, Bytes};
    use bttc_engine::primitives::DeliveryHeight;
    use std::sync::{Condvar, Mutex};

    /// A checker that blocks until released: a slow root-chain lookup.
    struct Slow(Arc<(Mutex<bool>, Condvar)>);

    impl SideChecker for Slow {
        fn check(&self, payload: &[u8]) -> (SideTxResult, Vec<u8>) {
            let (lock, cond) = &*self.0;
            let mut go = lock.lock().unwrap();
            while !*go {
                go = cond.wait(go).unwrap();
            }
            (SideTxResult::Yes, payload.to_vec())
        }
    }

    fn check(i: u8) -> SideCheck {
        SideCheck {
            height: DeliveryHeight(1),
            tx_hash: B256::repeat_byte(i),
            payload: Bytes::from(vec![i]),
        }
    }

    /// Submitting never waits for a slow check: beyond the queue, checks are dropped and
    /// counted; once the checker answers, every queued check's result comes back.
    #[test]
    fn a_slow_checker_never_blocks_submission() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (results_tx, results) = std::sync::mpsc::channel();
        let mut pool = SideCheckPool::start(1, 4, Arc::new(Slow(gate.clone())), move |r| {
            let _ = results_tx.send(r);
        });
        for i in 0..20 {
            pool.submit(check(i));
        }
        // One check is held by the worker, four wait in the queue, the rest were dropped.
        let dropped = pool.dropped.load(Ordering::Relaxed);
        assert!((15..=16).contains(&dropped), "dropped {dropped}");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let answered: Vec<SideCheckResult> =
            (0..20 - dropped).map(|_| results.recv().unwrap()).collect();
        assert!(answered.iter().all(|r| r.result == SideTxResult::Yes));
        assert_eq!(answered[0].tx_hash, B256::repeat_byte(0));
    }
}
