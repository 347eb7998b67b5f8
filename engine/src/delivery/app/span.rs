//! The span module (spec §4.4, DESIGN.md §10.2): when a validator's BTTC head enters the last
//! span, the proposer includes the next span; every validator checks it against its own
//! chain; with more than 2/3 Yes the span is stored with its producers, selected from the
//! validator set with the Delivery block hash as seed.

use crate::{
    chain::bor::{
        BorParams,
        span::{Span, SpanError, SpanValidator},
    },
    delivery::{side_tx::SideTxResult, validators::ValidatorSet},
    primitives::{ByteReader, DecodeError},
};
use alloy_primitives::{B256, Bytes};

/// Side payload tag of a span proposal.
pub const SIDE_PROPOSE_SPAN: u8 = 3;
/// Spans the application keeps (the current, the next, and a few before for late readers).
pub const SPANS_KEPT: usize = 8;

/// The BTTC chain the spans are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanConfig {
    pub params: BorParams,
    pub bttc_chain_id: u64,
}

/// `MsgProposeSpan`: the next span's numbers, the seed its producers are drawn with, and the
/// first block of the last span (which a validator's head must have reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposeSpan {
    pub id: u64,
    pub start_block: u64,
    pub end_block: u64,
    pub chain_id: u64,
    pub seed: B256,
    pub last_start: u64,
}

/// Why a span proposal cannot be included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeSpanError {
    #[error("this Delivery chain makes no spans")]
    NoSpans,
    #[error(transparent)]
    Span(#[from] SpanError),
    #[error("seed {found}, expected the previous Delivery block hash {expected}")]
    Seed { expected: B256, found: B256 },
    #[error("the last span starts at {expected}, not {found}")]
    LastStart { expected: u64, found: u64 },
    #[error("span {0} is already awaiting its votes")]
    Pending(u64),
}

impl ProposeSpan {
    /// `tag ‖ id ‖ start ‖ end ‖ chain id ‖ seed ‖ last start`.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(1 + 8 * 5 + 32);
        out.push(SIDE_PROPOSE_SPAN);
        for word in [self.id, self.start_block, self.end_block, self.chain_id] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(self.seed.as_slice());
        out.extend_from_slice(&self.last_start.to_be_bytes());
        out.into()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(payload, "span proposal");
        if r.u8()? != SIDE_PROPOSE_SPAN {
            return Err(r.error("not a span proposal"));
        }
        let msg = Self {
            id: r.u64()?,
            start_block: r.u64()?,
            end_block: r.u64()?,
            chain_id: r.u64()?,
            seed: r.b256()?,
            last_start: r.u64()?,
        };
        r.finish()?;
        Ok(msg)
    }

    /// The side check against the validator's own BTTC head: Yes once its head has entered
    /// the last span; Skip while it has not (it may only lag), so a proposal no validator's
    /// chain supports never passes.
    pub fn side_check(&self, head: u64) -> SideTxResult {
        if head >= self.last_start {
            SideTxResult::Yes
        } else {
            SideTxResult::Skip
        }
    }
}

/// The side check of a span proposal against the validator's BTTC head (`None` for a
/// payload that is not a span proposal). A span is signed with no data of its own.
pub fn check_span_payload(payload: &[u8], bttc_head: u64) -> Option<(SideTxResult, Vec<u8>)> {
    if payload.first() != Some(&SIDE_PROPOSE_SPAN) {
        return None;
    }
    let result = ProposeSpan::decode(payload).map_or(SideTxResult::No, |p| p.side_check(bttc_head));
    Some((result, Vec::new()))
}

/// The validators a span is drawn from: the current set with ids by address order.
pub fn span_validators(set: &ValidatorSet) -> Vec<SpanValidator> {
    set.validators()
        .iter()
        .enumerate()
        .map(|(i, v)| SpanValidator {
            id: i as u64 + 1,
            power: v.power as u64,
            signer: v.address,
        })
        .collect()
}

/// The span proposal due when this validator's head is `head`, after the last decided span
/// `last`, with the block hash `seed` the next block follows; `None` if not due yet.
pub fn due(config: &SpanConfig, last: &Span, head: u64, seed: B256) -> Option<ProposeSpan> {
    (head >= last.start_block).then(|| ProposeSpan {
        id: last.id + 1,
        start_block: last.end_block + 1,
        end_block: last.end_block + config.params.span,
        chain_id: config.bttc_chain_id,
        seed,
        last_start: last.start_block,
    })
}

/// The handler's stateful check: continuity, duration and chain id against the last span,
/// the seed against the previous block hash.
pub fn check(
    config: &SpanConfig,
    last: &Span,
    prev_block_hash: B256,
    msg: &ProposeSpan,
) -> Result<(), ProposeSpanError> {
    Span::check_follows(
        last,
        &config.params,
        msg.id,
        msg.start_block,
        msg.end_block,
        msg.chain_id,
    )?;
    if msg.seed != prev_block_hash {
        return Err(ProposeSpanError::Seed {
            expected: prev_block_hash,
            found: msg.seed,
        });
    }
    if msg.last_start != last.start_block {
        return Err(ProposeSpanError::LastStart {
            expected: last.start_block,
            found: msg.last_start,
        });
    }
    Ok(())
}

/// The post handler on Yes: the span with its producers, if it still follows `last`.
pub fn post(
    config: &SpanConfig,
    last: &Span,
    validators: &ValidatorSet,
    msg: &ProposeSpan,
) -> Option<Span> {
    if msg.id != last.id + 1 || msg.start_block != last.end_block + 1 {
        return None;
    }
    last.next(&config.params, &span_validators(validators), msg.seed)
        .ok()
        .filter(|span| span.end_block == msg.end_block)
}

/// Whether the BTTC chain at `head` is short of a span it will soon need: within a sprint of
/// the block where the next span must be committed, with no next span decided.
pub fn alarm(config: &SpanConfig, last: &Span, head: u64) -> bool {
    let commit_at = (last.end_block + 1).saturating_sub(config.params.sprint);
    head + config.params.sprint >= commit_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    fn config() -> SpanConfig {
        SpanConfig {
            params: BorParams {
                sprint: 8,
                span: 32,
                first_span_end: 31,
                ..BorParams::MAINNET
            },
            bttc_chain_id: 1029,
        }
    }

    #[test]
    fn a_span_is_due_once_the_head_enters_the_last_one_and_checks_hold() {
        let config = config();
        let set = ValidatorSet::equal((1..=4).map(Address::with_last_byte));
        let first = Span::first(&config.params, &span_validators(&set), 1029);
        let seed = B256::repeat_byte(5);
        // Span 0 is the last span from the start: the next is due at once.
        let msg = due(&config, &first, 0, seed).unwrap();
        assert_eq!((msg.id, msg.start_block, msg.end_block), (1, 32, 63));
        assert_eq!(ProposeSpan::decode(&msg.encode()), Ok(msg));
        check(&config, &first, seed, &msg).unwrap();
        assert!(matches!(
            check(&config, &first, B256::ZERO, &msg),
            Err(ProposeSpanError::Seed { .. })
        ));
        let stretched = ProposeSpan {
            end_block: 64,
            ..msg
        };
        assert!(matches!(
            check(&config, &first, seed, &stretched),
            Err(ProposeSpanError::Span(SpanError::Duration { .. }))
        ));
        assert_eq!(msg.side_check(0), SideTxResult::Yes);

        let span1 = post(&config, &first, &set, &msg).unwrap();
        assert_eq!(span1.producers.len(), 4);
        // Span 1 is due only once the head reaches block 32.
        assert_eq!(due(&config, &span1, 31, seed), None);
        let next = due(&config, &span1, 32, seed).unwrap();
        assert_eq!(next.side_check(31), SideTxResult::Skip);
        assert_eq!(next.side_check(40), SideTxResult::Yes);
        // The commit block of span 2 is 56: the alarm rings a sprint before it.
        assert!(!alarm(&config, &span1, 47));
        assert!(alarm(&config, &span1, 48));
        // A post for a span that no longer follows stores nothing.
        assert_eq!(post(&config, &span1, &set, &msg), None);
        assert!(ProposeSpan::decode(&[SIDE_PROPOSE_SPAN, 1]).is_err());
    }
}
