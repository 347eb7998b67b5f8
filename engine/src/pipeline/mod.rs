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
#[derive(Debug)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxLegacy};
    use alloy_primitives::{B256, Signature, TxKind, U256};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    fn signed(seed: u8, nonce: u64) -> (TxEnvelope, alloy_primitives::Address) {
        let key = PrivateKeySigner::from_bytes(&B256::with_last_byte(seed)).unwrap();
        let tx = TxLegacy {
            chain_id: Some(1337),
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(Default::default()),
            ..Default::default()
        };
        let sig = key.sign_hash_sync(&tx.signature_hash()).unwrap();
        (TxEnvelope::from(tx.into_signed(sig)), key.address())
    }

    #[test]
    fn batches_come_out_in_input_order_with_senders() {
        let stage = SenderRecoveryStage::new(1_000, 300);
        let mut expected = Vec::new();
        for i in 0..700u64 {
            let (tx, sender) = signed((i % 50) as u8 + 1, i);
            stage.push(tx, i).unwrap();
            expected.push((i, sender));
        }
        let mut out = Vec::new();
        loop {
            let batch = stage.run_batch();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 300);
            out.extend(batch.into_iter().map(|(tx, ctx)| (ctx, tx.unwrap().sender)));
        }
        assert_eq!(out, expected);
        assert_eq!(stage.queue_depth(), 0);
    }

    #[test]
    fn full_queue_hands_the_transaction_back() {
        let stage = SenderRecoveryStage::new(2, 8);
        stage.push(signed(1, 0).0, 0).unwrap();
        stage.push(signed(1, 1).0, 1).unwrap();
        let refused = stage.push(signed(1, 2).0, 2).unwrap_err();
        assert_eq!(refused.0.context, 2);
        assert_eq!(stage.queue_depth(), 2);
    }

    #[test]
    fn bad_signatures_are_errors_in_place() {
        let stage = SenderRecoveryStage::new(8, 8);
        let (good, sender) = signed(3, 0);
        let (bad, _) = signed(3, 1);
        let TxEnvelope::Legacy(signed_tx) = bad else {
            unreachable!()
        };
        let sig = signed_tx.signature();
        // s above n/2 is refused (EIP-2).
        let high_s = Signature::new(sig.r(), U256::MAX - sig.s(), sig.v());
        let bad = TxEnvelope::from(signed_tx.tx().clone().into_signed(high_s));
        stage.push(good, "good").unwrap();
        stage.push(bad, "bad").unwrap();
        let out = stage.run_batch();
        assert_eq!(out[0].0.as_ref().unwrap().sender, sender);
        assert_eq!(out[1].0, Err(RecoverError::HighS));
        assert_eq!(out[1].1, "bad");
    }
}
