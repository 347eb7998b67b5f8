//! Messages between validators: a tag byte and a body whose every length is bounded; anything
//! else is a malformed message. The transport carries one per QUIC stream.

use super::{
    block::{BLOCK_BYTES_MAX, Block, CommitVote, SignedProposal, decode_commit, encode_commit},
    signing::{SIGNED_VOTE_LEN, SignedVote, decode_signed_vote, encode_signed_vote},
};
use crate::{
    chain::bor::wire::{CHAIN_MESSAGE_BYTES_MAX, ChainMessage},
    primitives::{ByteReader, DecodeError, DeliveryHeight},
};

/// Largest frame accepted (a proposal with a full block, a batch of blocks, or a BTTC chain
/// message).
pub const FRAME_MAX: usize = {
    let delivery = BLOCK_BYTES_MAX + (1 << 20);
    let chain = CHAIN_MESSAGE_BYTES_MAX + 1;
    if delivery > chain { delivery } else { chain }
};
/// Blocks one catch-up answer carries at most.
pub const BLOCKS_PER_RESPONSE_MAX: u32 = 16;

const TAG_PROPOSAL: u8 = 1;
const TAG_PREVOTE: u8 = 2;
const TAG_PRECOMMIT: u8 = 3;
const TAG_STATUS: u8 = 4;
const TAG_GET_BLOCKS: u8 = 5;
const TAG_BLOCKS: u8 = 6;
const TAG_CHAIN: u8 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// A signed proposal and the block it names.
    Proposal {
        proposal: SignedProposal,
        block: Box<Block>,
    },
    Prevote(SignedVote),
    /// A precommit with the side results its validator attaches.
    Precommit(Box<CommitVote>),
    /// The sender's last committed height.
    Status {
        height: DeliveryHeight,
    },
    /// Catch-up: committed blocks from `from` on.
    GetBlocks {
        from: DeliveryHeight,
        count: u32,
    },
    /// Committed blocks, each with the commit that decided it.
    Blocks(Vec<(Block, Vec<CommitVote>)>),
    /// A message of the BTTC chain, which the node passes to its chain driver.
    Chain(Box<ChainMessage>),
}

impl Wire {
    /// Consensus messages go ahead of catch-up traffic.
    pub fn is_consensus(&self) -> bool {
        match self {
            Wire::GetBlocks { .. } | Wire::Blocks(_) => false,
            // New blocks and heads travel ahead of sync requests and transactions.
            Wire::Chain(m) => matches!(**m, ChainMessage::Block(_) | ChainMessage::Announce { .. }),
            _ => true,
        }
    }

    /// The height a consensus message (proposal, prevote, precommit) is for.
    pub fn consensus_height(&self) -> Option<DeliveryHeight> {
        match self {
            Wire::Proposal { proposal, .. } => Some(proposal.proposal.height),
            Wire::Prevote(v) => Some(v.vote.height),
            Wire::Precommit(c) => Some(c.vote.vote.height),
            _ => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match self {
            Wire::Proposal { proposal, block } => {
                out.push(TAG_PROPOSAL);
                proposal.encode(&mut out);
                out.extend_from_slice(&block.encode());
            }
            Wire::Prevote(v) => {
                out.push(TAG_PREVOTE);
                out.extend_from_slice(&encode_signed_vote(v));
            }
            Wire::Precommit(c) => {
                out.push(TAG_PRECOMMIT);
                c.encode(&mut out);
            }
            Wire::Status { height } => {
                out.push(TAG_STATUS);
                out.extend_from_slice(&height.to_be_bytes());
            }
            Wire::GetBlocks { from, count } => {
                out.push(TAG_GET_BLOCKS);
                out.extend_from_slice(&from.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
            }
            Wire::Blocks(blocks) => {
                out.push(TAG_BLOCKS);
                out.extend_from_slice(&(blocks.len() as u32).to_be_bytes());
                for (block, commit) in blocks {
                    let bytes = block.encode();
                    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    out.extend_from_slice(&bytes);
                    encode_commit(commit, &mut out);
                }
            }
            Wire::Chain(message) => {
                out.push(TAG_CHAIN);
                out.extend_from_slice(&message.encode());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "p2p frame");
        if bytes.len() > FRAME_MAX {
            return Err(r.error(format!("{} bytes", bytes.len())));
        }
        let wire = match r.u8()? {
            TAG_PROPOSAL => Wire::Proposal {
                proposal: SignedProposal::decode(&mut r)?,
                block: Box::new(Block::decode_from(&mut r)?),
            },
            TAG_PREVOTE => Wire::Prevote(
                decode_signed_vote(r.take(SIGNED_VOTE_LEN)?)
                    .ok_or_else(|| r.error("malformed vote"))?,
            ),
            TAG_PRECOMMIT => Wire::Precommit(Box::new(CommitVote::decode(&mut r)?)),
            TAG_STATUS => Wire::Status {
                height: r.height()?,
            },
            TAG_GET_BLOCKS => Wire::GetBlocks {
                from: r.height()?,
                count: r.u32()?,
            },
            TAG_BLOCKS => {
                let count = r.u32()?;
                if count > BLOCKS_PER_RESPONSE_MAX {
                    return Err(r.error(format!("{count} blocks")));
                }
                let mut blocks = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let len = r.u32()? as usize;
                    let block = Block::decode(r.take(len)?)?;
                    blocks.push((block, decode_commit(&mut r)?));
                }
                Wire::Blocks(blocks)
            }
            TAG_CHAIN => {
                let rest = r.take(r.remaining())?;
                Wire::Chain(Box::new(
                    ChainMessage::decode(rest).map_err(|e| r.error(e.to_string()))?,
                ))
            }
            tag => return Err(r.error(format!("unknown tag {tag}"))),
        };
        r.finish()?;
        Ok(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_messages_round_trip() {
        for w in [
            Wire::Status {
                height: DeliveryHeight(9),
            },
            Wire::GetBlocks {
                from: DeliveryHeight(3),
                count: 4,
            },
            Wire::Blocks(Vec::new()),
        ] {
            assert_eq!(Wire::decode(&w.encode()).unwrap(), w);
        }
        assert!(Wire::decode(&[]).is_err());
        assert!(Wire::decode(&[TAG_STATUS, 0]).is_err());
        assert!(Wire::decode(&[99]).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Wire::decode(&bytes);
        }
    }
}
