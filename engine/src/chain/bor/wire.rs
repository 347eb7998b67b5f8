//! What BTTC nodes say to each other about blocks: a block pushed whole, an announcement of a
//! head, a request for one block by hash or for a range of canonical blocks, and a node's
//! status. Every decoded length is bounded; transactions travel as EIP-2718 bytes and their
//! senders are recovered by the receiver (in parallel batches), never trusted.

use super::host::WireBlock;
use crate::chain::builder::BLOCK_TXS_MAX;
use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::B256;
use alloy_rlp::{Decodable, Encodable};

/// Bytes of one chain message (a full block of transfers fits many times over).
pub const CHAIN_MESSAGE_BYTES_MAX: usize = 32 << 20;
/// Blocks one range request may ask for.
pub const RANGE_BLOCKS_MAX: u64 = 128;

const TAG_BLOCK: u8 = 1;
const TAG_ANNOUNCE: u8 = 2;
const TAG_GET_BLOCK: u8 = 3;
const TAG_GET_RANGE: u8 = 4;
const TAG_STATUS: u8 = 5;
const TAG_TXS: u8 = 6;

/// Transactions one gossip message carries.
pub const GOSSIP_TXS_MAX: usize = 1_024;

/// A block as it arrives: header and transactions, senders not yet recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlock {
    pub header: Header,
    pub txs: Vec<TxEnvelope>,
}

impl From<&WireBlock> for RawBlock {
    fn from(block: &WireBlock) -> Self {
        Self {
            header: block.header.clone(),
            txs: block.txs.iter().map(|t| t.envelope.clone()).collect(),
        }
    }
}

/// One message between BTTC nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainMessage {
    /// A block, pushed to some peers when sealed or imported, or answering a request.
    Block(Box<RawBlock>),
    /// A new head, announced to the peers the block was not pushed to.
    Announce {
        number: u64,
        hash: B256,
    },
    GetBlock {
        hash: B256,
    },
    /// Canonical blocks `from..from + count`.
    GetRange {
        from: u64,
        count: u64,
    },
    /// The sender's head and last milestone, sent when peers meet and now and then.
    Status {
        head: u64,
        head_hash: B256,
        milestone: u64,
    },
    /// Transactions a node admitted to its pool, passed on so that they reach the producers.
    Txs(Vec<TxEnvelope>),
}

/// Why a chain message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainWireError {
    #[error("a chain message of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("an empty chain message")]
    Empty,
    #[error("unknown chain message tag {0}")]
    Tag(u8),
    #[error("malformed RLP: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    #[error("transaction {index} does not decode")]
    Tx { index: usize },
    #[error("{0} transactions in one block")]
    TooManyTxs(usize),
    #[error("a range of {0} blocks (at most 128)")]
    Range(u64),
    #[error("{0} bytes left after the message")]
    Trailing(usize),
}

impl ChainMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Block(block) => {
                out.push(TAG_BLOCK);
                block.header.encode(&mut out);
                encode_txs(&block.txs, &mut out);
            }
            Self::Txs(txs) => {
                out.push(TAG_TXS);
                encode_txs(txs, &mut out);
            }
            Self::Announce { number, hash } => {
                out.push(TAG_ANNOUNCE);
                number.encode(&mut out);
                hash.encode(&mut out);
            }
            Self::GetBlock { hash } => {
                out.push(TAG_GET_BLOCK);
                hash.encode(&mut out);
            }
            Self::GetRange { from, count } => {
                out.push(TAG_GET_RANGE);
                from.encode(&mut out);
                count.encode(&mut out);
            }
            Self::Status {
                head,
                head_hash,
                milestone,
            } => {
                out.push(TAG_STATUS);
                head.encode(&mut out);
                head_hash.encode(&mut out);
                milestone.encode(&mut out);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ChainWireError> {
        if bytes.len() > CHAIN_MESSAGE_BYTES_MAX {
            return Err(ChainWireError::TooLarge(bytes.len()));
        }
        let (&tag, mut rest) = bytes.split_first().ok_or(ChainWireError::Empty)?;
        let buf = &mut rest;
        let message = match tag {
            TAG_BLOCK => {
                let header = Header::decode(buf)?;
                let txs = decode_txs(buf, BLOCK_TXS_MAX)?;
                Self::Block(Box::new(RawBlock { header, txs }))
            }
            TAG_TXS => Self::Txs(decode_txs(buf, GOSSIP_TXS_MAX)?),
            TAG_ANNOUNCE => Self::Announce {
                number: u64::decode(buf)?,
                hash: B256::decode(buf)?,
            },
            TAG_GET_BLOCK => Self::GetBlock {
                hash: B256::decode(buf)?,
            },
            TAG_GET_RANGE => {
                let from = u64::decode(buf)?;
                let count = u64::decode(buf)?;
                if count == 0 || count > RANGE_BLOCKS_MAX {
                    return Err(ChainWireError::Range(count));
                }
                Self::GetRange { from, count }
            }
            TAG_STATUS => Self::Status {
                head: u64::decode(buf)?,
                head_hash: B256::decode(buf)?,
                milestone: u64::decode(buf)?,
            },
            other => return Err(ChainWireError::Tag(other)),
        };
        if !buf.is_empty() {
            return Err(ChainWireError::Trailing(buf.len()));
        }
        Ok(message)
    }
}

/// An RLP list of EIP-2718 transactions.
fn encode_txs(txs: &[TxEnvelope], out: &mut Vec<u8>) {
    let txs: Vec<alloy_primitives::Bytes> = txs.iter().map(|t| t.encoded_2718().into()).collect();
    txs.encode(out);
}

/// At most `max` transactions from an RLP list of EIP-2718 bytes.
fn decode_txs(buf: &mut &[u8], max: usize) -> Result<Vec<TxEnvelope>, ChainWireError> {
    let list = alloy_rlp::Header::decode(buf)?;
    if !list.list || list.payload_length > buf.len() {
        return Err(alloy_rlp::Error::UnexpectedString.into());
    }
    let (mut items, after) = buf.split_at(list.payload_length);
    let mut txs = Vec::new();
    while !items.is_empty() {
        if txs.len() >= max {
            return Err(ChainWireError::TooManyTxs(txs.len() + 1));
        }
        let raw = alloy_primitives::Bytes::decode(&mut items)?;
        let index = txs.len();
        let tx = TxEnvelope::decode_2718_exact(&raw).map_err(|_| ChainWireError::Tx { index })?;
        txs.push(tx);
    }
    *buf = after;
    Ok(txs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{chain::spec::ChainSpec, exec::testing};
    use alloy_primitives::{Bytes, TxKind, U256};
    use proptest::prelude::*;

    fn block(txs: usize) -> RawBlock {
        let spec = ChainSpec::devnet();
        RawBlock {
            header: Header {
                number: 7,
                gas_limit: 30_000_000,
                extra_data: Bytes::from(vec![1; 97]),
                ..Default::default()
            },
            txs: (0..txs as u64)
                .map(|n| {
                    testing::tx(
                        &spec,
                        testing::account(1),
                        n,
                        TxKind::Call(testing::account(2)),
                        U256::from(n),
                        Bytes::new(),
                        21_000,
                    )
                    .envelope
                })
                .collect(),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let messages = [
            ChainMessage::Block(Box::new(block(3))),
            ChainMessage::Block(Box::new(block(0))),
            ChainMessage::Announce {
                number: 9,
                hash: B256::repeat_byte(1),
            },
            ChainMessage::GetBlock {
                hash: B256::repeat_byte(2),
            },
            ChainMessage::GetRange {
                from: 100,
                count: 128,
            },
            ChainMessage::Status {
                head: 5,
                head_hash: B256::repeat_byte(3),
                milestone: 4,
            },
        ];
        for m in messages {
            assert_eq!(ChainMessage::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn malformed_or_oversized_messages_are_refused() {
        let good = ChainMessage::Block(Box::new(block(2))).encode();
        assert_eq!(ChainMessage::decode(&[]), Err(ChainWireError::Empty));
        assert_eq!(ChainMessage::decode(&[9]), Err(ChainWireError::Tag(9)));
        assert!(matches!(
            ChainMessage::decode(&good[..good.len() - 3]),
            Err(ChainWireError::Rlp(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            ChainMessage::decode(&trailing),
            Err(ChainWireError::Trailing(1))
        );
        let range = ChainMessage::GetRange {
            from: 0,
            count: 129,
        }
        .encode();
        assert_eq!(
            ChainMessage::decode(&range),
            Err(ChainWireError::Range(129))
        );
        let huge = vec![TAG_BLOCK; CHAIN_MESSAGE_BYTES_MAX + 1];
        assert_eq!(
            ChainMessage::decode(&huge),
            Err(ChainWireError::TooLarge(CHAIN_MESSAGE_BYTES_MAX + 1))
        );
        // A transaction that is not an EIP-2718 envelope.
        let mut bad_tx = vec![TAG_BLOCK];
        block(0).header.encode(&mut bad_tx);
        vec![Bytes::from_static(&[0x7f, 1, 2])].encode(&mut bad_tx);
        assert_eq!(
            ChainMessage::decode(&bad_tx),
            Err(ChainWireError::Tx { index: 0 })
        );
        // An announcement whose hash is short.
        let mut short = vec![TAG_ANNOUNCE];
        5u64.encode(&mut short);
        Bytes::from_static(&[1; 20]).encode(&mut short);
        assert!(matches!(
            ChainMessage::decode(&short),
            Err(ChainWireError::Rlp(_))
        ));
    }

    proptest! {
        /// Any bytes decode to a message or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ChainMessage::decode(&bytes);
        }
    }
}
