//! Pipeline stages and the bounded lock-free queues between them.
//!
//! A stage is a pure batch function; its driver (a thread owned by the binary) calls
//! [`SenderRecoveryStage::run_batch`] in a loop. Queues never grow: a full queue refuses the
//! item and the producer decides (the RPC ingest answers "busy").

use crate::{
    crypto::{RecoverError, recover_senders},
    primitives::RecoveredTx,
};
use alloy_consensus::TxEnvelope;
use crossbeam::queue::ArrayQueue;

/// A transaction waiting for its sender, with the caller's context (e.g. a reply handle).
pub struct Pending<C> {
    pub envelope: TxEnvelope,
    pub context: C,
}

/// Sender recovery as a pipeline stage: a bounded lock-free queue in, rayon batches, results out
/// in input order with the sender cached on each transaction.
pub struct SenderRecoveryStage<C> {
    input: ArrayQueue<Pending<C>>,
    batch_len_max: usize,
}

/// Returned when the input queue is full; carries the item back to its producer.
#[derive(Debug)]
pub struct QueueFull<T>(pub T);

impl<C: Send> SenderRecoveryStage<C> {
    /// `queue_len_max` bounds the waiting transactions, `batch_len_max` one recovery batch.
    pub fn new(queue_len_max: usize, batch_len_max: usize) -> Self {
        assert!(queue_len_max > 0 && batch_len_max > 0);
        Self {
            input: ArrayQueue::new(queue_len_max),
            batch_len_max,
        }
    }

    /// Offers a transaction; fails without blocking when the queue is full, handing the
    /// transaction back (boxed: a pending transaction is large).
    pub fn push(&self, envelope: TxEnvelope, context: C) -> Result<(), Box<QueueFull<Pending<C>>>> {
        self.input
            .push(Pending { envelope, context })
            .map_err(|p| Box::new(QueueFull(p)))
    }

    pub fn queue_depth(&self) -> usize {
        self.input.len()
    }

    /// Takes up to `batch_len_max` queued transactions, recovers their senders in parallel and
    /// returns them in the order they were queued. Returns an empty vector when idle.
    #[allow(clippy::type_complexity)]
    pub fn run_batch(&self) -> Vec<(Result<RecoveredTx, RecoverError>, C)> {
        let mut envelopes = Vec::new();
        let mut contexts = Vec::new();
        while envelopes.len() < self.batch_len_max {
            let Some(p) = self.input.pop() else { break };
            envelopes.push(p.envelope);
            contexts.push(p.context);
        }
        if envelopes.is_empty() {
            return Vec::new();
        }
        let senders = recover_senders(&envelopes);
        envelopes
            .into_iter()
            .zip(senders)
            .zip(contexts)
            .map(|((envelope, sender), context)| {
                (
                    sender.map(|s| RecoveredTx::new_unchecked(envelope, s)),
                    context,
                )
            })
            .collect()
    }
}
