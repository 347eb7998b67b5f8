//! Signature recovery: one transaction at a time, or a batch in parallel (results in input order).

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use rayon::prelude::*;
use secp256k1::{
    Message, SECP256K1,
    ecdsa::{RecoverableSignature, RecoveryId},
};

/// Half the secp256k1 group order: EIP-2 forbids `s` above it.
const SECP256K1N_HALF: U256 = U256::from_be_bytes([
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
]);

/// Transactions per rayon task: large enough that scheduling costs little next to ~30 µs recoveries.
pub const RECOVERY_CHUNK_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    #[error("invalid signature: s value is above secp256k1n/2 (EIP-2)")]
    HighS,
    #[error("invalid signature: r or s is zero or out of range")]
    OutOfRange,
    #[error("invalid signature: no public key recovers from it")]
    NoKey,
}

/// Recovers the signer of `hash` from `signature` with libsecp256k1.
pub fn recover_signer(signature: &Signature, hash: &B256) -> Result<Address, RecoverError> {
    if signature.s() > SECP256K1N_HALF {
        return Err(RecoverError::HighS);
    }
    if signature.r().is_zero() || signature.s().is_zero() {
        return Err(RecoverError::OutOfRange);
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let recid = RecoveryId::try_from(signature.v() as i32).map_err(|_| RecoverError::OutOfRange)?;
    let sig = RecoverableSignature::from_compact(&compact, recid)
        .map_err(|_| RecoverError::OutOfRange)?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(hash.0), &sig)
        .map_err(|_| RecoverError::NoKey)?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}

/// Signs a 32-byte hash as Ethereum does: 65 bytes `r ‖ s ‖ v` with `v ∈ {0, 1}`.
pub fn sign_hash_recoverable(key: &secp256k1::SecretKey, hash: &B256) -> [u8; 65] {
    let (recid, compact) = SECP256K1
        .sign_ecdsa_recoverable(Message::from_digest(hash.0), key)
        .serialize_compact();
    let mut signature = [0u8; 65];
    signature[..64].copy_from_slice(&compact);
    signature[64] = i32::from(recid) as u8;
    signature
}

/// The address that signed `hash` with a 65-byte `r ‖ s ‖ v` signature (`v ∈ {0, 1}`), or
/// `None` if the signature is malformed. Consensus signatures are checked when a message
/// arrives and again inside the commits and blocks that carry it: each is recovered once and
/// kept in a bounded cache (recovery is a pure function, so the cache changes no result).
pub fn recover_hash_signer(hash: &B256, signature: &[u8; 65]) -> Option<Address> {
    SIGNERS.recover(hash, signature)
}

/// [`recover_hash_signer`] without the cache: one secp256k1 recovery every call.
pub fn recover_hash_signer_uncached(hash: &B256, signature: &[u8; 65]) -> Option<Address> {
    let recid = RecoveryId::try_from(i32::from(signature[64])).ok()?;
    let sig = RecoverableSignature::from_compact(&signature[..64], recid).ok()?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(hash.0), &sig)
        .ok()?;
    Some(Address::from_raw_public_key(
        &key.serialize_uncompressed()[1..],
    ))
}

/// Shards of the signer cache (locks are taken from parallel verification batches).
const SIGNER_CACHE_SHARDS: usize = 16;
/// Recovered signers kept per shard; a full shard starts over.
const SIGNER_CACHE_SHARD_LEN_MAX: usize = 4_096;

type SignerKey = (B256, [u8; 65]);

struct SignerCache {
    shards: [parking_lot::Mutex<std::collections::HashMap<SignerKey, Option<Address>>>;
        SIGNER_CACHE_SHARDS],
}

static SIGNERS: std::sync::LazyLock<SignerCache> = std::sync::LazyLock::new(|| SignerCache {
    shards: std::array::from_fn(|_| Default::default()),
});

impl SignerCache {
    fn recover(&self, hash: &B256, signature: &[u8; 65]) -> Option<Address> {
        let shard = &self.shards[usize::from(signature[0]) % SIGNER_CACHE_SHARDS];
        let key = (*hash, *signature);
        if let Some(found) = shard.lock().get(&key) {
            return *found;
        }
        let signer = recover_hash_signer_uncached(hash, signature);
        let mut shard = shard.lock();
        if shard.len() >= SIGNER_CACHE_SHARD_LEN_MAX {
            shard.clear();
        }
        shard.insert(key, signer);
        signer
    }
}

/// Recovers the sender of one transaction.
pub fn recover_tx_sender(tx: &TxEnvelope) -> Result<Address, RecoverError> {
    recover_signer(tx.signature(), &tx.signature_hash())
}

/// Recovers every sender of `txs` in parallel; the result at index i belongs to `txs[i]`.
pub fn recover_senders(txs: &[TxEnvelope]) -> Vec<Result<Address, RecoverError>> {
    let mut out = Vec::with_capacity(txs.len());
    txs.par_iter()
        .with_min_len(RECOVERY_CHUNK_LEN)
        .map(recover_tx_sender)
        .collect_into_vec(&mut out);
    out
}
