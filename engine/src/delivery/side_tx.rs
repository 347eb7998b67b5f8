//! Side transactions (spec §6.2) and their results (§1.4): every validator checks the side
//! transactions of block H after committing it, its results signed over
//! `keccak256(result_byte ‖ sign_data)` ride on its precommits at H+1, block H+2 tallies them by
//! power (`app::AppState::apply`), and the Yes signatures are collected sorted by signer for the
//! root-chain contracts.

use super::validators::ValidatorSet;
use crate::crypto::{recover_hash_signer, sign_hash_recoverable};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use secp256k1::SecretKey;

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

/// A validator's verdict on a side transaction (peppermint's abci enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SideTxResult {
    Skip = 0,
    Yes = 1,
    No = 2,
}

/// One validator's result for one side transaction, as attached to its votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideTxVote {
    pub tx_hash: B256,
    pub validator: Address,
    pub result: SideTxResult,
    /// Present for Yes/No results of transactions with sign data.
    pub signature: Option<[u8; 65]>,
}

/// What validators sign: `keccak256(result_byte ‖ data)`.
pub fn side_tx_sign_hash(result: SideTxResult, data: &[u8]) -> B256 {
    let mut bytes = Vec::with_capacity(1 + data.len());
    bytes.push(result as u8);
    bytes.extend_from_slice(data);
    keccak256(bytes)
}

/// Signs a result as `ethCrypto.Sign` does: 65 bytes `r ‖ s ‖ v` with `v ∈ {0, 1}`. Skip
/// results and transactions without sign data carry no signature.
pub fn sign_side_tx(key: &SecretKey, result: SideTxResult, data: &[u8]) -> Option<[u8; 65]> {
    if result == SideTxResult::Skip || data.is_empty() {
        return None;
    }
    Some(sign_hash_recoverable(key, &side_tx_sign_hash(result, data)))
}

/// The outcome of a side transaction from the votes of one height (§6.2 step 4): Yes if Yes
/// votes hold at least `total * 2 / 3 + 1` power, else No if No votes do, else Skip. Each
/// validator counts once (its first vote); non-validators do not count.
pub fn tally(validators: &ValidatorSet, votes: &[SideTxVote]) -> SideTxResult {
    let mut counted = std::collections::BTreeSet::new();
    let (mut yes, mut no) = (0i64, 0i64);
    for v in votes {
        if !counted.insert(v.validator) {
            continue;
        }
        let power = validators.power_of(&v.validator);
        match v.result {
            SideTxResult::Yes => yes += power,
            SideTxResult::No => no += power,
            SideTxResult::Skip => {}
        }
    }
    let quorum = validators.quorum_power();
    if yes >= quorum {
        SideTxResult::Yes
    } else if no >= quorum {
        SideTxResult::No
    } else {
        SideTxResult::Skip
    }
}

/// The Yes signatures over `data`, each checked to recover to its voter, sorted by signer
/// address ascending and converted to the contracts' `uint256[3]` form `[r, s, v + 27]`
/// (spec §1.4: the contract stops counting at the first out-of-order signature).
pub fn collect_yes_signatures(votes: &[SideTxVote], data: &[u8]) -> Vec<(Address, [U256; 3])> {
    let hash = side_tx_sign_hash(SideTxResult::Yes, data);
    let mut out: Vec<(Address, [U256; 3])> = votes
        .iter()
        .filter(|v| v.result == SideTxResult::Yes)
        .filter_map(|v| {
            let sig = v.signature?;
            (recover_hash_signer(&hash, &sig)? == v.validator).then(|| {
                let r = U256::from_be_slice(&sig[..32]);
                let s = U256::from_be_slice(&sig[32..64]);
                (v.validator, [r, s, U256::from(u64::from(sig[64]) + 27)])
            })
        })
        .collect();
    out.sort_by_key(|(a, _)| *a);
    out.dedup_by_key(|(a, _)| *a);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signing::key_address;

    fn keys(n: u8) -> Vec<SecretKey> {
        (1..=n)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect()
    }

    fn votes(keys: &[SecretKey], results: &[SideTxResult], data: &[u8]) -> Vec<SideTxVote> {
        keys.iter()
            .zip(results)
            .map(|(k, r)| SideTxVote {
                tx_hash: B256::repeat_byte(0xaa),
                validator: key_address(k),
                result: *r,
                signature: sign_side_tx(k, *r, data),
            })
            .collect()
    }

    #[test]
    fn sign_hash_is_result_byte_then_data() {
        let data = [7u8; 224];
        let mut expected = vec![1u8];
        expected.extend_from_slice(&data);
        assert_eq!(
            side_tx_sign_hash(SideTxResult::Yes, &data),
            keccak256(&expected)
        );
        assert_ne!(
            side_tx_sign_hash(SideTxResult::No, &data),
            side_tx_sign_hash(SideTxResult::Yes, &data)
        );
    }

    #[test]
    fn tally_needs_more_than_two_thirds_and_validators_may_disagree() {
        use SideTxResult::{No, Skip, Yes};
        let keys = keys(7);
        let set = ValidatorSet::equal(keys.iter().map(key_address));
        assert_eq!(set.quorum_power(), 5);
        let data = [1u8; 32];
        assert_eq!(
            tally(
                &set,
                &votes(&keys, &[Yes, Yes, Yes, Yes, Yes, No, Skip], &data)
            ),
            Yes
        );
        assert_eq!(
            tally(
                &set,
                &votes(&keys, &[Yes, Yes, Yes, Yes, No, No, Skip], &data)
            ),
            Skip
        );
        assert_eq!(
            tally(&set, &votes(&keys, &[No, No, No, No, No, Yes, Yes], &data)),
            No
        );
        // A validator voting twice counts once.
        let mut twice = votes(&keys, &[Yes, Yes, Yes, Yes, No, No, No], &data);
        twice.push(twice[0]);
        assert_eq!(tally(&set, &twice), Skip);
        // Votes from outside the set count for nothing.
        let outsiders = votes(&self::keys(12)[7..], &[Yes; 5], &data);
        assert_eq!(tally(&set, &outsiders), Skip);
    }

    #[test]
    fn yes_signatures_are_checked_and_sorted_by_signer() {
        use SideTxResult::{No, Yes};
        let keys = keys(6);
        let data = [9u8; 224];
        let mut v = votes(&keys, &[Yes, Yes, No, Yes, Yes, Yes], &data);
        v[4].signature.as_mut().unwrap()[0] ^= 1; // damaged: dropped
        v[5].validator = Address::ZERO; // claims another signer: dropped
        v.reverse();
        let sigs = collect_yes_signatures(&v, &data);
        let signers: Vec<Address> = sigs.iter().map(|s| s.0).collect();
        let mut expected: Vec<Address> = [0, 1, 3].iter().map(|&i| key_address(&keys[i])).collect();
        expected.sort();
        assert_eq!(signers, expected);
        assert!(
            sigs.iter()
                .all(|(_, [_, _, v])| *v == U256::from(27) || *v == U256::from(28))
        );
        // Skip carries no signature; a transaction without data neither.
        assert!(sign_side_tx(&keys[0], SideTxResult::Skip, &data).is_none());
        assert!(sign_side_tx(&keys[0], SideTxResult::Yes, &[]).is_none());
    }
}
