//! Core data types: recovered transactions, accounts, blocks, and the bounds they obey.

use alloy_consensus::{Receipt, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bloom, U256};
use serde::{Deserialize, Serialize};

pub use alloy_primitives::BlockNumber;

mod reader;
pub use reader::{ByteReader, DecodeError};

/// A Delivery chain height (not to be confused with a BTTC block number).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct DeliveryHeight(pub u64);

impl DeliveryHeight {
    /// The height after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Big-endian bytes: the order heights sort in, on the wire and in storage keys.
    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl std::fmt::Display for DeliveryHeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Largest encoded transaction the node accepts (geth's txMaxSize is 128 KiB).
pub const TX_ENCODED_LEN_MAX: usize = 128 * 1024;

/// A transaction whose sender has been recovered once; the sender travels with it from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredTx {
    pub envelope: TxEnvelope,
    pub sender: Address,
    pub hash: B256,
    /// Length of the EIP-2718 network encoding, counted against pool byte bounds.
    pub encoded_len: usize,
}

impl RecoveredTx {
    /// Wraps an envelope whose sender is already known (e.g. read back from storage).
    pub fn new_unchecked(envelope: TxEnvelope, sender: Address) -> Self {
        let hash = *envelope.tx_hash();
        let encoded_len = envelope.encode_2718_len();
        Self {
            envelope,
            sender,
            hash,
            encoded_len,
        }
    }
}

/// An account as stored in the state (code is referenced by hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    pub nonce: u64,
    pub balance: U256,
    /// `KECCAK_EMPTY` for accounts without code.
    pub code_hash: B256,
}

impl Account {
    pub fn has_code(&self) -> bool {
        self.code_hash != alloy_primitives::KECCAK256_EMPTY
    }
    /// EIP-161 emptiness: no nonce, no balance, no code.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance.is_zero() && !self.has_code()
    }
}

/// A receipt as stored: what the consensus encoding needs, nothing derivable (bloom, gas used by
/// this transaction alone, contract address and price are derived when read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// EIP-2718 type byte (0 legacy, 1 EIP-2930, 2 EIP-1559, ...).
    pub tx_type: u8,
    pub receipt: Receipt,
}

impl StoredReceipt {
    pub fn logs_bloom(&self) -> Bloom {
        alloy_primitives::logs_bloom(self.receipt.logs.iter())
    }
}

/// Receipts root of a block, as Ethereum computes it (EIP-2718 typed receipt encodings).
pub fn receipts_root(receipts: &[StoredReceipt]) -> B256 {
    let envelopes: Vec<alloy_consensus::ReceiptEnvelope> = receipts
        .iter()
        .map(|r| {
            let ty = alloy_consensus::TxType::try_from(r.tx_type)
                .unwrap_or(alloy_consensus::TxType::Legacy);
            alloy_consensus::ReceiptEnvelope::from_typed(ty, r.receipt.clone())
        })
        .collect();
    alloy_consensus::proofs::calculate_receipt_root(&envelopes)
}

/// Logs bloom of a block: the union of its receipts' blooms.
pub fn block_logs_bloom(receipts: &[StoredReceipt]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for r in receipts {
        for log in &r.receipt.logs {
            bloom.accrue_log(log);
        }
    }
    bloom
}
