//! Signed consensus votes: a canonical encoding, secp256k1 signatures, and batch verification.

use super::tendermint::{DeliveryHeight, Vote, VoteKind};
use crate::crypto::{recover_hash_signer, sign_hash_recoverable};
use alloy_primitives::{Address, B256, keccak256};
use rayon::prelude::*;
use secp256k1::{SECP256K1, SecretKey};

/// Domain separation: a vote signature can never be mistaken for a transaction or checkpoint
/// signature.
const VOTE_DOMAIN: &[u8] = b"bttc/delivery/vote/v1";
/// Length of [`vote_sign_bytes`].
pub const VOTE_SIGN_BYTES_LEN: usize = VOTE_DOMAIN.len() + 8 + 1 + 8 + 4 + 1 + 32 + 20;
/// Votes per rayon task: a recovery costs ~40 µs, so small chunks already pay for themselves.
const VERIFY_CHUNK_LEN: usize = 8;

/// A vote with its signer's 65-byte recoverable signature (r ‖ s ‖ recovery id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: [u8; 65],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VoteSignatureError {
    #[error("vote signature is malformed")]
    Malformed,
    #[error("vote signature recovers to {recovered}, not the voter {claimed}")]
    WrongSigner {
        claimed: Address,
        recovered: Address,
    },
}

/// The canonical bytes a vote's signature covers:
/// `domain ‖ chain_id(8) ‖ kind(1) ‖ height(8) ‖ round(4) ‖ has_value(1) ‖ value(32) ‖ voter(20)`.
pub fn vote_sign_bytes(chain_id: u64, vote: &Vote) -> [u8; VOTE_SIGN_BYTES_LEN] {
    let mut out = [0u8; VOTE_SIGN_BYTES_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(VOTE_DOMAIN);
    put(&chain_id.to_be_bytes());
    put(&[match vote.kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    }]);
    put(&vote.height.0.to_be_bytes());
    put(&vote.round.to_be_bytes());
    put(&[u8::from(vote.value.is_some())]);
    put(vote.value.unwrap_or_default().as_slice());
    put(vote.validator.as_slice());
    out
}

fn vote_hash(chain_id: u64, vote: &Vote) -> B256 {
    keccak256(vote_sign_bytes(chain_id, vote))
}

/// The address of a secp256k1 key.
pub fn key_address(key: &SecretKey) -> Address {
    let public = key.public_key(SECP256K1).serialize_uncompressed();
    Address::from_raw_public_key(&public[1..])
}

/// Signs `vote` (whose `validator` must be the key's address).
pub fn sign_vote(chain_id: u64, key: &SecretKey, vote: Vote) -> SignedVote {
    debug_assert_eq!(
        key_address(key),
        vote.validator,
        "a validator signs its own votes"
    );
    let signature = sign_hash_recoverable(key, &vote_hash(chain_id, &vote));
    SignedVote { vote, signature }
}

/// Checks one vote's signature against its claimed voter.
pub fn verify_vote(chain_id: u64, signed: &SignedVote) -> Result<(), VoteSignatureError> {
    let recovered = recover_hash_signer(&vote_hash(chain_id, &signed.vote), &signed.signature)
        .ok_or(VoteSignatureError::Malformed)?;
    if recovered == signed.vote.validator {
        Ok(())
    } else {
        Err(VoteSignatureError::WrongSigner {
            claimed: signed.vote.validator,
            recovered,
        })
    }
}

/// Checks votes that arrived together, in parallel; result `i` belongs to `votes[i]`.
pub fn verify_votes(chain_id: u64, votes: &[SignedVote]) -> Vec<Result<(), VoteSignatureError>> {
    let mut out = Vec::with_capacity(votes.len());
    votes
        .par_iter()
        .with_min_len(VERIFY_CHUNK_LEN)
        .map(|v| verify_vote(chain_id, v))
        .collect_into_vec(&mut out);
    out
}

/// Encoded length of a [`SignedVote`].
pub const SIGNED_VOTE_LEN: usize = 1 + 8 + 4 + 1 + 32 + 20 + 65;

/// `kind(1) height(8) round(4) has_value(1) value(32) voter(20) signature(65)`.
pub fn encode_signed_vote(signed: &SignedVote) -> [u8; SIGNED_VOTE_LEN] {
    let v = &signed.vote;
    let mut out = [0u8; SIGNED_VOTE_LEN];
    out[0] = match v.kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    };
    out[1..9].copy_from_slice(&v.height.0.to_be_bytes());
    out[9..13].copy_from_slice(&v.round.to_be_bytes());
    out[13] = u8::from(v.value.is_some());
    out[14..46].copy_from_slice(v.value.unwrap_or_default().as_slice());
    out[46..66].copy_from_slice(v.validator.as_slice());
    out[66..].copy_from_slice(&signed.signature);
    out
}

pub fn decode_signed_vote(bytes: &[u8]) -> Option<SignedVote> {
    if bytes.len() != SIGNED_VOTE_LEN {
        return None;
    }
    let kind = match bytes[0] {
        1 => VoteKind::Prevote,
        2 => VoteKind::Precommit,
        _ => return None,
    };
    let value = match bytes[13] {
        0 => None,
        1 => Some(B256::from_slice(&bytes[14..46])),
        _ => return None,
    };
    let vote = Vote {
        kind,
        height: DeliveryHeight(u64::from_be_bytes(bytes[1..9].try_into().ok()?)),
        round: u32::from_be_bytes(bytes[9..13].try_into().ok()?),
        value,
        validator: Address::from_slice(&bytes[46..66]),
    };
    Some(SignedVote {
        vote,
        signature: bytes[66..].try_into().ok()?,
    })
}

/// A vote for tests and benches: `kind` at `height`/`round` for `value`, by `key`.
pub fn example_vote(key: &SecretKey, height: u64, round: u32, value: Option<B256>) -> Vote {
    Vote {
        kind: VoteKind::Precommit,
        height: DeliveryHeight(height),
        round,
        value,
        validator: key_address(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_byte_array([seed; 32]).unwrap()
    }

    #[test]
    fn signed_votes_verify_and_tampering_is_caught() {
        let chain_id = 199;
        let votes: Vec<SignedVote> = (1..=20u8)
            .map(|i| {
                sign_vote(
                    chain_id,
                    &key(i),
                    example_vote(&key(i), 7, 1, Some(B256::repeat_byte(i))),
                )
            })
            .collect();
        assert!(verify_votes(chain_id, &votes).iter().all(Result::is_ok));

        let mut bad = votes.clone();
        bad[3].vote.value = None; // the signature covered another value
        bad[5].signature[10] ^= 1; // a damaged signature
        bad[7].vote.validator = votes[8].vote.validator; // claims another voter
        bad[9].signature[64] = 9; // no such recovery id
        let results = verify_votes(chain_id, &bad);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), ![3, 5, 7, 9].contains(&i), "vote {i}: {r:?}");
        }
        assert_eq!(results[9], Err(VoteSignatureError::Malformed));
        // Another chain's signature does not verify here.
        assert!(verify_vote(1029, &votes[0]).is_err());
    }

    #[test]
    fn signed_votes_round_trip() {
        let k = key(4);
        for value in [None, Some(B256::repeat_byte(3))] {
            let signed = sign_vote(5, &k, example_vote(&k, 9, 2, value));
            let bytes = encode_signed_vote(&signed);
            assert_eq!(decode_signed_vote(&bytes), Some(signed));
            assert_eq!(decode_signed_vote(&bytes[1..]), None);
        }
    }

    #[test]
    fn sign_bytes_are_canonical_and_distinct() {
        let k = key(1);
        let base = example_vote(&k, 7, 1, Some(B256::ZERO));
        let variants = [
            Vote {
                kind: VoteKind::Prevote,
                ..base
            },
            Vote {
                height: DeliveryHeight(8),
                ..base
            },
            Vote { round: 2, ..base },
            Vote {
                value: None,
                ..base
            },
            Vote {
                validator: Address::ZERO,
                ..base
            },
        ];
        let base_bytes = vote_sign_bytes(199, &base);
        assert_eq!(base_bytes.len(), VOTE_SIGN_BYTES_LEN);
        for v in variants {
            assert_ne!(vote_sign_bytes(199, &v), base_bytes, "{v:?}");
        }
        assert_ne!(vote_sign_bytes(1029, &base), base_bytes);
    }
}
