//! The side-transaction pipeline across heights (spec §6.2): side transactions of block H are
//! checked by every validator after H executes; the results ride on the validator's votes at
//! H+1; block H+2 tallies them and applies each transaction's outcome.

use super::{
    side_tx::{SideTxResult, SideTxVote, sign_side_tx, tally},
    validators::ValidatorSet,
};
use alloy_primitives::{Address, B256, Bytes, keccak256};
use secp256k1::SecretKey;
use std::collections::BTreeMap;

/// Side transactions one block may carry (bounds the work and the vote size).
pub const SIDE_TXS_PER_BLOCK_MAX: usize = 256;

/// A side transaction in a Delivery block: what must be checked outside the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTx {
    pub payload: Bytes,
}

impl SideTx {
    pub fn hash(&self) -> B256 {
        keccak256(&self.payload)
    }
}

/// The application's outside check (a root-chain RPC, the BTTC chain, ...). It returns the
/// verdict and the data validators sign (empty when there is nothing to sign).
pub trait SideTxChecker {
    fn check(&self, tx: &SideTx) -> (SideTxResult, Vec<u8>);
}

/// What one block decided for the side transactions of two heights before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTxOutcome {
    pub tx_hash: B256,
    pub result: SideTxResult,
    /// The Yes votes (as received), for collecting signatures afterwards.
    pub votes: Vec<SideTxVote>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SidePipelineError {
    #[error("block {height} carries {count} side transactions, more than {SIDE_TXS_PER_BLOCK_MAX}")]
    TooMany { height: u64, count: usize },
}

/// One validator's view of the pipeline.
#[derive(Debug, Default)]
pub struct SidePipeline {
    /// Side transactions of each executed height awaiting their tally, in block order.
    pending: BTreeMap<u64, Vec<B256>>,
    /// This validator's results for the last executed height, to attach to its votes.
    my_results: Vec<SideTxVote>,
}

impl SidePipeline {
    /// After block `height` executed: check its side transactions and keep this validator's
    /// signed results for its votes at `height + 1`.
    pub fn on_block_executed(
        &mut self,
        height: u64,
        side_txs: &[SideTx],
        checker: &dyn SideTxChecker,
        key: &SecretKey,
        me: Address,
    ) -> Result<(), SidePipelineError> {
        if side_txs.len() > SIDE_TXS_PER_BLOCK_MAX {
            return Err(SidePipelineError::TooMany {
                height,
                count: side_txs.len(),
            });
        }
        self.my_results = side_txs
            .iter()
            .map(|tx| {
                let (result, data) = checker.check(tx);
                SideTxVote {
                    tx_hash: tx.hash(),
                    validator: me,
                    result,
                    signature: sign_side_tx(key, result, &data),
                }
            })
            .collect();
        self.pending
            .insert(height, side_txs.iter().map(SideTx::hash).collect());
        Ok(())
    }

    /// Results to attach to this validator's prevotes and precommits at the next height.
    pub fn results_for_votes(&self) -> &[SideTxVote] {
        &self.my_results
    }

    /// At block `height`: tally the side results carried by the precommits of `height - 1`
    /// (every validator's, as they reached the commit) for the side transactions of
    /// `height - 2`. Transactions nobody voted on are skipped. Returns outcomes in block order.
    pub fn on_block_begin(
        &mut self,
        height: u64,
        validators: &ValidatorSet,
        commit_results: &[SideTxVote],
    ) -> Vec<SideTxOutcome> {
        let Some(txs) = height.checked_sub(2).and_then(|h| self.pending.remove(&h)) else {
            return Vec::new();
        };
        // Heights older than the one tallied are settled (or skipped) for good.
        self.pending.retain(|h, _| *h + 2 > height);
        txs.into_iter()
            .map(|tx_hash| {
                let votes: Vec<SideTxVote> = commit_results
                    .iter()
                    .filter(|v| v.tx_hash == tx_hash)
                    .copied()
                    .collect();
                let result = tally(validators, &votes);
                let votes = votes.into_iter().filter(|v| v.result == result).collect();
                SideTxOutcome {
                    tx_hash,
                    result,
                    votes,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{side_tx::collect_yes_signatures, signing::key_address};
    use std::collections::BTreeSet;

    /// An outside check that reads this validator's own view of a root chain: which deposits
    /// it has seen. Validators may disagree.
    struct DepositView {
        seen: BTreeSet<u8>,
    }

    impl SideTxChecker for DepositView {
        fn check(&self, tx: &SideTx) -> (SideTxResult, Vec<u8>) {
            let deposit = tx.payload[0];
            let data = [deposit; 32].to_vec();
            if tx.payload.len() != 1 {
                return (SideTxResult::Skip, Vec::new());
            }
            if self.seen.contains(&deposit) {
                (SideTxResult::Yes, data)
            } else {
                (SideTxResult::No, data)
            }
        }
    }

    #[test]
    fn validators_that_disagree_are_tallied_two_heights_later() {
        let keys: Vec<SecretKey> = (1..=4)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect();
        let addresses: Vec<Address> = keys.iter().map(key_address).collect();
        let set = ValidatorSet::equal(addresses.iter().copied());
        // Deposit 1: seen by all; 2: seen by three; 3: seen by two; 4: seen by none.
        let views = [vec![1, 2, 3], vec![1, 2, 3], vec![1, 2], vec![1]];
        let txs: Vec<SideTx> = (1..=4u8)
            .map(|d| SideTx {
                payload: Bytes::from(vec![d]),
            })
            .collect();
        let mut pipelines: Vec<SidePipeline> = (0..4).map(|_| SidePipeline::default()).collect();

        // Height 10 carries the side transactions; each validator checks after executing it.
        for (i, p) in pipelines.iter_mut().enumerate() {
            let view = DepositView {
                seen: views[i].iter().copied().collect(),
            };
            p.on_block_executed(10, &txs, &view, &keys[i], addresses[i])
                .unwrap();
        }
        // Height 11: the results ride on every validator's precommits.
        let commit: Vec<SideTxVote> = pipelines
            .iter()
            .flat_map(|p| p.results_for_votes().to_vec())
            .collect();
        // Height 11 begins: nothing to tally yet (height 9 had no side transactions).
        assert!(pipelines[0].on_block_begin(11, &set, &[]).is_empty());
        // Height 12 tallies the side transactions of height 10.
        let outcomes = pipelines[0].on_block_begin(12, &set, &commit);
        let results: Vec<SideTxResult> = outcomes.iter().map(|o| o.result).collect();
        assert_eq!(
            results,
            vec![
                SideTxResult::Yes,
                SideTxResult::Yes,
                SideTxResult::Skip,
                SideTxResult::No
            ]
        );
        // The Yes signatures of deposit 2 come from the three validators that saw it, sorted.
        let data = [2u8; 32];
        let sigs = collect_yes_signatures(&outcomes[1].votes, &data);
        let mut expected = addresses[..3].to_vec();
        expected.sort();
        assert_eq!(sigs.iter().map(|s| s.0).collect::<Vec<_>>(), expected);
        // Tallied once: a second tally at the same height finds nothing.
        assert!(pipelines[0].on_block_begin(12, &set, &commit).is_empty());
    }

    #[test]
    fn a_side_tx_without_votes_is_skipped_and_bounds_hold() {
        let key = SecretKey::from_byte_array([1; 32]).unwrap();
        let me = key_address(&key);
        let set = ValidatorSet::equal([me]);
        let view = DepositView {
            seen: BTreeSet::new(),
        };
        let mut p = SidePipeline::default();
        let tx = SideTx {
            payload: Bytes::from(vec![9]),
        };
        p.on_block_executed(5, std::slice::from_ref(&tx), &view, &key, me)
            .unwrap();
        let outcomes = p.on_block_begin(7, &set, &[]);
        assert_eq!(outcomes[0].result, SideTxResult::Skip);
        let too_many = vec![tx; SIDE_TXS_PER_BLOCK_MAX + 1];
        assert_eq!(
            p.on_block_executed(8, &too_many, &view, &key, me),
            Err(SidePipelineError::TooMany {
                height: 8,
                count: SIDE_TXS_PER_BLOCK_MAX + 1
            })
        );
    }
}
