//! Checkpoint submission data (spec §1.4, §1.5): the seven-word data validators sign, its vote
//! hash, and the signatures in the order `RootChain.submitCheckpoint` takes them.

use crate::delivery::side_tx::{
    SideTxResult, SideTxVote, collect_yes_signatures, side_tx_sign_hash,
};
use alloy_primitives::{Address, B256, U256};

/// `MsgCheckpoint`'s side sign bytes: `abi.encode(address proposer, uint256 start, uint256
/// end, bytes32 rootHash, bytes32 accountRootHash, uint256 borChainId, uint256 epoch)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointData {
    pub proposer: Address,
    pub start: u64,
    pub end: u64,
    pub root_hash: B256,
    pub account_root_hash: B256,
    pub bor_chain_id: u64,
    pub epoch: u64,
}

/// Length of the encoded data: seven 32-byte words.
pub const CHECKPOINT_DATA_LEN: usize = 7 * 32;

impl CheckpointData {
    pub fn encode(&self) -> [u8; CHECKPOINT_DATA_LEN] {
        let mut out = [0u8; CHECKPOINT_DATA_LEN];
        out[12..32].copy_from_slice(self.proposer.as_slice());
        out[56..64].copy_from_slice(&self.start.to_be_bytes());
        out[88..96].copy_from_slice(&self.end.to_be_bytes());
        out[96..128].copy_from_slice(self.root_hash.as_slice());
        out[128..160].copy_from_slice(self.account_root_hash.as_slice());
        out[184..192].copy_from_slice(&self.bor_chain_id.to_be_bytes());
        out[216..224].copy_from_slice(&self.epoch.to_be_bytes());
        out
    }

    /// Decodes seven words, refusing values that do not fit their fields.
    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() != CHECKPOINT_DATA_LEN {
            return None;
        }
        let word = |i: usize| &data[i * 32..(i + 1) * 32];
        let small = |i: usize| -> Option<u64> {
            let w = word(i);
            w[..24]
                .iter()
                .all(|b| *b == 0)
                .then(|| u64::from_be_bytes(w[24..].try_into().expect("8 bytes")))
        };
        if word(0)[..12].iter().any(|b| *b != 0) {
            return None;
        }
        Some(Self {
            proposer: Address::from_slice(&word(0)[12..]),
            start: small(1)?,
            end: small(2)?,
            root_hash: B256::from_slice(word(3)),
            account_root_hash: B256::from_slice(word(4)),
            bor_chain_id: small(5)?,
            epoch: small(6)?,
        })
    }

    /// `keccak256(0x01 ‖ data)`: what each validator signs and the contract recovers from.
    pub fn vote_hash(&self) -> B256 {
        side_tx_sign_hash(SideTxResult::Yes, &self.encode())
    }

    /// The `uint256[3][] sigs` argument of `submitCheckpoint`: the Yes votes' signatures that
    /// recover to their voters, sorted by signer address ascending, `[r, s, v + 27]`.
    pub fn signatures(&self, votes: &[SideTxVote]) -> Vec<[U256; 3]> {
        collect_yes_signatures(votes, &self.encode())
            .into_iter()
            .map(|(_, sig)| sig)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{side_tx::sign_side_tx, signing::key_address};
    use alloy_primitives::keccak256;
    use secp256k1::SecretKey;

    fn data() -> CheckpointData {
        CheckpointData {
            proposer: Address::repeat_byte(0xab),
            start: 1000,
            end: 1255,
            root_hash: B256::repeat_byte(1),
            account_root_hash: B256::repeat_byte(2),
            bor_chain_id: 199,
            epoch: 42,
        }
    }

    #[test]
    fn seven_words_as_abi_encode_and_back() {
        let d = data();
        let bytes = d.encode();
        let abi = alloy_sol_types::SolValue::abi_encode(&(
            d.proposer,
            U256::from(d.start),
            U256::from(d.end),
            d.root_hash,
            d.account_root_hash,
            U256::from(d.bor_chain_id),
            U256::from(d.epoch),
        ));
        assert_eq!(bytes.as_slice(), abi.as_slice());
        assert_eq!(CheckpointData::decode(&bytes), Some(d));
        assert_eq!(CheckpointData::decode(&bytes[..223]), None);
        let mut dirty = bytes;
        dirty[0] = 1;
        assert_eq!(CheckpointData::decode(&dirty), None);
        assert_eq!(d.vote_hash(), keccak256([&[1u8][..], &bytes[..]].concat()));
    }

    #[test]
    fn signatures_are_sorted_by_signer_with_v_27_28() {
        let d = data();
        let keys: Vec<SecretKey> = (1..=5)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect();
        let votes: Vec<SideTxVote> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let result = if i == 4 {
                    SideTxResult::No
                } else {
                    SideTxResult::Yes
                };
                SideTxVote {
                    tx_hash: B256::ZERO,
                    validator: key_address(k),
                    result,
                    signature: sign_side_tx(k, result, &d.encode()),
                }
            })
            .collect();
        let sigs = d.signatures(&votes);
        assert_eq!(sigs.len(), 4);
        let signers: Vec<Address> = sigs
            .iter()
            .map(|s| {
                let mut sig = [0u8; 65];
                sig[..32].copy_from_slice(&s[0].to_be_bytes::<32>());
                sig[32..64].copy_from_slice(&s[1].to_be_bytes::<32>());
                let v: u8 = s[2].to::<u8>();
                assert!(v == 27 || v == 28);
                sig[64] = v - 27;
                crate::crypto::recover_hash_signer(&d.vote_hash(), &sig).unwrap()
            })
            .collect();
        assert!(signers.windows(2).all(|w| w[0] < w[1]));
        let mut expected: Vec<Address> = keys[..4].iter().map(key_address).collect();
        expected.sort();
        assert_eq!(signers, expected);
    }
}
