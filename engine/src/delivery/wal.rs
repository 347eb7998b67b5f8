//! The consensus write-ahead log: every input is logged before it is handled, so a restarted
//! validator replays its inputs through the (deterministic) state machine and arrives at the
//! same state, re-emitting the same votes — never a different one for the same height, round
//! and step.

use super::tendermint::{
    DeliveryHeight, Input, Message, Proposal, Step, Timeout, ValueId, Vote, VoteKind,
};
use crate::primitives::{ByteReader, DecodeError};

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalEntry {
    /// The validator began this height (inputs before it belong to earlier heights).
    Height(DeliveryHeight),
    Input(Input),
}

const TAG_HEIGHT: u8 = 0x10;
const TAG_PROPOSAL: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_TIMEOUT: u8 = 3;
const TAG_PROPOSE_VALUE: u8 = 4;

fn put_value(out: &mut Vec<u8>, value: Option<ValueId>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v.as_slice());
        }
        None => out.push(0),
    }
}

/// `height(8) ‖ round(4) ‖ value(32) ‖ has_valid_round(1) ‖ valid_round(4)? ‖ proposer(20)`:
/// the proposal fields as the log, the wire and the proposal signature encode them.
pub fn encode_proposal(p: &Proposal, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.height.0.to_be_bytes());
    out.extend_from_slice(&p.round.to_be_bytes());
    out.extend_from_slice(p.value.as_slice());
    match p.valid_round {
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&r.to_be_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(p.proposer.as_slice());
}

pub fn decode_proposal(r: &mut ByteReader<'_>) -> Result<Proposal, DecodeError> {
    let (height, round, value) = (height(r)?, r.u32()?, r.b256()?);
    let valid_round = if r.flag()? { Some(r.u32()?) } else { None };
    Ok(Proposal {
        height,
        round,
        value,
        valid_round,
        proposer: r.address()?,
    })
}

/// Encodes a record (at most 75 bytes).
pub fn encode_wal_entry(entry: &WalEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    match entry {
        WalEntry::Height(h) => {
            out.push(TAG_HEIGHT);
            out.extend_from_slice(&h.0.to_be_bytes());
        }
        WalEntry::Input(Input::Message(Message::Proposal(p))) => {
            out.push(TAG_PROPOSAL);
            encode_proposal(p, &mut out);
        }
        WalEntry::Input(Input::Message(Message::Vote(v))) => {
            out.push(TAG_VOTE);
            out.push(match v.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            });
            out.extend_from_slice(&v.height.0.to_be_bytes());
            out.extend_from_slice(&v.round.to_be_bytes());
            put_value(&mut out, v.value);
            out.extend_from_slice(v.validator.as_slice());
        }
        WalEntry::Input(Input::Timeout(t)) => {
            out.push(TAG_TIMEOUT);
            out.push(match t.step {
                Step::Propose => 0,
                Step::Prevote => 1,
                Step::Precommit => 2,
            });
            out.extend_from_slice(&t.height.0.to_be_bytes());
            out.extend_from_slice(&t.round.to_be_bytes());
        }
        WalEntry::Input(Input::ProposeValue {
            height,
            round,
            value,
        }) => {
            out.push(TAG_PROPOSE_VALUE);
            out.extend_from_slice(&height.0.to_be_bytes());
            out.extend_from_slice(&round.to_be_bytes());
            out.extend_from_slice(value.as_slice());
        }
    }
    out
}

fn height(r: &mut ByteReader<'_>) -> Result<DeliveryHeight, DecodeError> {
    Ok(DeliveryHeight(r.u64()?))
}

pub fn decode_wal_entry(bytes: &[u8]) -> Result<WalEntry, DecodeError> {
    let mut r = ByteReader::new(bytes, "write-ahead log record");
    let entry = match r.u8()? {
        TAG_HEIGHT => WalEntry::Height(height(&mut r)?),
        TAG_PROPOSAL => {
            WalEntry::Input(Input::Message(Message::Proposal(decode_proposal(&mut r)?)))
        }
        TAG_VOTE => {
            let kind = match r.u8()? {
                1 => VoteKind::Prevote,
                2 => VoteKind::Precommit,
                _ => return Err(r.error("bad vote kind")),
            };
            let (height, round) = (height(&mut r)?, r.u32()?);
            let value = if r.flag()? { Some(r.b256()?) } else { None };
            let validator = r.address()?;
            WalEntry::Input(Input::Message(Message::Vote(Vote {
                kind,
                height,
                round,
                value,
                validator,
            })))
        }
        TAG_TIMEOUT => {
            let step = match r.u8()? {
                0 => Step::Propose,
                1 => Step::Prevote,
                2 => Step::Precommit,
                _ => return Err(r.error("bad step")),
            };
            WalEntry::Input(Input::Timeout(Timeout {
                step,
                height: height(&mut r)?,
                round: r.u32()?,
            }))
        }
        TAG_PROPOSE_VALUE => {
            let (height, round, value) = (height(&mut r)?, r.u32()?, r.b256()?);
            WalEntry::Input(Input::ProposeValue {
                height,
                round,
                value,
            })
        }
        _ => return Err(r.error("unknown tag")),
    };
    r.finish()?;
    Ok(entry)
}

/// The inputs of the last height a log holds, in order: what a restart replays.
pub fn last_height_inputs(entries: &[WalEntry]) -> Option<(DeliveryHeight, Vec<Input>)> {
    let start = entries
        .iter()
        .rposition(|e| matches!(e, WalEntry::Height(_)))?;
    let WalEntry::Height(height) = entries[start] else {
        unreachable!("found above")
    };
    let inputs = entries[start + 1..]
        .iter()
        .filter_map(|e| match e {
            WalEntry::Input(i) => Some(i.clone()),
            WalEntry::Height(_) => None,
        })
        .collect();
    Some((height, inputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256};
    use proptest::prelude::*;

    fn entries(seed: u64) -> Vec<WalEntry> {
        let a = Address::with_last_byte(seed as u8);
        let v = B256::repeat_byte(seed as u8);
        vec![
            WalEntry::Height(DeliveryHeight(seed)),
            WalEntry::Input(Input::Message(Message::Proposal(Proposal {
                height: DeliveryHeight(seed),
                round: 3,
                value: v,
                valid_round: Some(1),
                proposer: a,
            }))),
            WalEntry::Input(Input::Message(Message::Proposal(Proposal {
                height: DeliveryHeight(seed),
                round: 0,
                value: v,
                valid_round: None,
                proposer: a,
            }))),
            WalEntry::Input(Input::Message(Message::Vote(Vote {
                kind: VoteKind::Prevote,
                height: DeliveryHeight(seed),
                round: 2,
                value: None,
                validator: a,
            }))),
            WalEntry::Input(Input::Message(Message::Vote(Vote {
                kind: VoteKind::Precommit,
                height: DeliveryHeight(seed),
                round: 2,
                value: Some(v),
                validator: a,
            }))),
            WalEntry::Input(Input::Timeout(Timeout {
                step: Step::Prevote,
                height: DeliveryHeight(seed),
                round: 9,
            })),
            WalEntry::Input(Input::ProposeValue {
                height: DeliveryHeight(seed),
                round: 4,
                value: v,
            }),
        ]
    }

    #[test]
    fn every_entry_round_trips() {
        for e in entries(77) {
            let bytes = encode_wal_entry(&e);
            assert!(bytes.len() <= 75);
            assert_eq!(decode_wal_entry(&bytes).unwrap(), e);
            // Any truncation is an error, never a panic or a different entry.
            for cut in 0..bytes.len() {
                assert!(decode_wal_entry(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn replay_takes_the_last_height() {
        let mut log = entries(1);
        log.extend(entries(2));
        let (height, inputs) = last_height_inputs(&log).unwrap();
        assert_eq!(height, DeliveryHeight(2));
        assert_eq!(inputs.len(), 6);
        assert!(last_height_inputs(&[]).is_none());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes: Vec<u8>) {
            let _ = decode_wal_entry(&bytes);
        }
    }
}
