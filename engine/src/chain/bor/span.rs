//! Spans (spec §4.4): a range of BTTC blocks, the Delivery validator set when it was made and
//! the producers selected from it; the `commitSpan` call that hands one to `BorValidatorSet`,
//! and the rules of which span comes next and at which block it is committed.

use super::params::BorParams;
use crate::root::contracts::child::BorValidatorSet;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use alloy_sol_types::SolCall;

/// A validator as a span lists it: its Delivery id, its power and its signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable)]
pub struct SpanValidator {
    pub id: u64,
    pub power: u64,
    pub signer: Address,
}

/// A span of blocks and who produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub id: u64,
    pub start_block: u64,
    pub end_block: u64,
    /// The Delivery validator set the span was made from, sorted by signer.
    pub validators: Vec<SpanValidator>,
    /// The producers, sorted by signer, each with the power it produces with.
    pub producers: Vec<SpanValidator>,
    pub chain_id: u64,
}

/// Why a proposed span cannot follow the last one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("span {found} proposed after span {last}")]
    Id { last: u64, found: u64 },
    #[error("span starts at block {found}, not at {expected}")]
    Start { expected: u64, found: u64 },
    #[error("span of {found} blocks; spans last {expected}")]
    Duration { expected: u64, found: u64 },
    #[error("span for chain {found}, not {expected}")]
    ChainId { expected: u64, found: u64 },
    #[error("a span needs at least one eligible validator")]
    NoValidators,
}

/// `RLP([[id, power, signer], ...])`, the list encoding `commitSpan` takes.
pub fn rlp_validators(list: &[SpanValidator]) -> Bytes {
    let mut out = Vec::with_capacity(list.len() * 32 + 4);
    alloy_rlp::encode_list::<SpanValidator, SpanValidator>(list, &mut out);
    out.into()
}

impl Span {
    /// Span 0: blocks `0..=first_span_end`, produced by every genesis validator.
    pub fn first(params: &BorParams, validators: &[SpanValidator], chain_id: u64) -> Self {
        let mut sorted = validators.to_vec();
        sorted.sort_by_key(|v| v.signer);
        Self {
            id: 0,
            start_block: 0,
            end_block: params.first_span_end,
            producers: sorted.clone(),
            validators: sorted,
            chain_id,
        }
    }

    /// The span after `self`: the next `params.span` blocks, producers selected from the
    /// eligible `validators` with `seed`.
    pub fn next(
        &self,
        params: &BorParams,
        validators: &[SpanValidator],
        seed: B256,
    ) -> Result<Self, SpanError> {
        let producers = select_producers(validators, params.producer_count, seed)?;
        let mut sorted = validators.to_vec();
        sorted.sort_by_key(|v| v.signer);
        Ok(Self {
            id: self.id + 1,
            start_block: self.end_block + 1,
            end_block: self.end_block + params.span,
            validators: sorted,
            producers,
            chain_id: self.chain_id,
        })
    }

    /// Delivery's handler checks of a proposed span against the last one (continuity,
    /// duration, chain id).
    pub fn check_follows(
        last: &Self,
        params: &BorParams,
        id: u64,
        start_block: u64,
        end_block: u64,
        chain_id: u64,
    ) -> Result<(), SpanError> {
        if id != last.id + 1 {
            return Err(SpanError::Id {
                last: last.id,
                found: id,
            });
        }
        if start_block != last.end_block + 1 {
            return Err(SpanError::Start {
                expected: last.end_block + 1,
                found: start_block,
            });
        }
        let found = end_block.wrapping_sub(start_block).wrapping_add(1);
        if end_block < start_block || found != params.span {
            return Err(SpanError::Duration {
                expected: params.span,
                found,
            });
        }
        if chain_id != last.chain_id {
            return Err(SpanError::ChainId {
                expected: last.chain_id,
                found: chain_id,
            });
        }
        Ok(())
    }

    pub fn contains(&self, number: u64) -> bool {
        self.start_block <= number && number <= self.end_block
    }

    /// The producers as (signer, power), as sprint-end headers list them.
    pub fn producer_powers(&self) -> Vec<(Address, u64)> {
        self.producers.iter().map(|v| (v.signer, v.power)).collect()
    }

    /// The calldata of `BorValidatorSet.commitSpan` for this span.
    pub fn commit_input(&self) -> Bytes {
        BorValidatorSet::commitSpanCall {
            newSpan: U256::from(self.id),
            startBlock: U256::from(self.start_block),
            endBlock: U256::from(self.end_block),
            validatorBytes: rlp_validators(&self.validators),
            producerBytes: rlp_validators(&self.producers),
        }
        .abi_encode()
        .into()
    }
}

/// bor `needToCommitSpan`: the next span is committed at the first block of the last sprint
/// of `current` (the last committed span), a sprint before its producers take over.
pub fn commits_next_span(params: &BorParams, current: &Span, number: u64) -> bool {
    current.end_block > params.sprint && number == current.end_block - params.sprint + 1
}

/// The producers of a span: every eligible validator with its power when there are at most
/// `count`; otherwise `count` draws weighted by power, with replacement, from a generator
/// seeded by `seed` (a producer's power is how often it was drawn). Sorted by signer.
///
/// Deployed BTTC draws with Go's `math/rand`; this generator (keccak of the seed and a
/// counter) is ours, so above `count` validators the choice differs from BTTC's.
pub fn select_producers(
    eligible: &[SpanValidator],
    count: usize,
    seed: B256,
) -> Result<Vec<SpanValidator>, SpanError> {
    let mut sorted: Vec<SpanValidator> = eligible.iter().filter(|v| v.power > 0).copied().collect();
    sorted.sort_by_key(|v| v.signer);
    if sorted.is_empty() {
        return Err(SpanError::NoValidators);
    }
    if sorted.len() <= count {
        return Ok(sorted);
    }
    let total: u128 = sorted.iter().map(|v| u128::from(v.power)).sum();
    let mut drawn = vec![0u64; sorted.len()];
    let mut counter = 0u64;
    for _ in 0..count {
        // Rejection sampling keeps each draw exactly proportional to power.
        let zone = u128::MAX - u128::MAX % total;
        let target = loop {
            let word = keccak256([seed.as_slice(), &counter.to_be_bytes()].concat());
            counter += 1;
            let value = u128::from_be_bytes(word[..16].try_into().expect("16 bytes"));
            if value < zone {
                break value % total;
            }
        };
        let mut cumulative = 0u128;
        for (i, v) in sorted.iter().enumerate() {
            cumulative += u128::from(v.power);
            if target < cumulative {
                drawn[i] += 1;
                break;
            }
        }
    }
    Ok(sorted
        .into_iter()
        .zip(drawn)
        .filter(|(_, times)| *times > 0)
        .map(|(v, times)| SpanValidator { power: times, ..v })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(id: u64) -> SpanValidator {
        SpanValidator {
            id,
            power: 1,
            signer: Address::with_last_byte(100 - id as u8),
        }
    }

    #[test]
    fn spans_follow_each_other_and_their_checks_hold() {
        let params = BorParams::MAINNET;
        let vals: Vec<_> = (1..=7).map(validator).collect();
        let first = Span::first(&params, &vals, 199);
        assert_eq!((first.start_block, first.end_block), (0, 255));
        assert!(
            first
                .producers
                .windows(2)
                .all(|w| w[0].signer < w[1].signer)
        );
        let next = first.next(&params, &vals, B256::ZERO).unwrap();
        assert_eq!((next.id, next.start_block, next.end_block), (1, 256, 6_655));
        assert_eq!(next.producers.len(), 7, "at most 11: all of them");
        Span::check_follows(&first, &params, 1, 256, 6_655, 199).unwrap();
        assert_eq!(
            Span::check_follows(&first, &params, 2, 256, 6_655, 199),
            Err(SpanError::Id { last: 0, found: 2 })
        );
        assert_eq!(
            Span::check_follows(&first, &params, 1, 257, 6_656, 199),
            Err(SpanError::Start {
                expected: 256,
                found: 257
            })
        );
        assert_eq!(
            Span::check_follows(&first, &params, 1, 256, 6_656, 199),
            Err(SpanError::Duration {
                expected: 6_400,
                found: 6_401
            })
        );
        assert!(matches!(
            Span::check_follows(&first, &params, 1, 256, 10, 199),
            Err(SpanError::Duration { .. })
        ));
        assert_eq!(
            Span::check_follows(&first, &params, 1, 256, 6_655, 1),
            Err(SpanError::ChainId {
                expected: 199,
                found: 1
            })
        );
        // The next span is committed at the first block of the current span's last sprint.
        assert!(commits_next_span(&params, &first, 192));
        assert!(!commits_next_span(&params, &first, 128));
        assert!(commits_next_span(&params, &next, 6_592));
    }

    #[test]
    fn above_the_producer_count_selection_is_seeded_weighted_and_sorted() {
        let vals: Vec<_> = (1..=20)
            .map(|id| SpanValidator {
                power: if id == 1 { 30 } else { 1 },
                ..validator(id)
            })
            .collect();
        let a = select_producers(&vals, 11, B256::repeat_byte(1)).unwrap();
        let b = select_producers(&vals, 11, B256::repeat_byte(1)).unwrap();
        let c = select_producers(&vals, 11, B256::repeat_byte(2)).unwrap();
        assert_eq!(a, b, "the same seed selects the same producers");
        assert_ne!(a, c);
        assert_eq!(a.iter().map(|v| v.power).sum::<u64>(), 11);
        assert!(a.windows(2).all(|w| w[0].signer < w[1].signer));
        // Validator 1 holds 30 of 49 power: drawn most often over many seeds.
        let heavy: u64 = (0..200u8)
            .map(|s| {
                select_producers(&vals, 11, B256::repeat_byte(s))
                    .unwrap()
                    .iter()
                    .find(|v| v.id == 1)
                    .map_or(0, |v| v.power)
            })
            .sum();
        let share = heavy as f64 / (200.0 * 11.0);
        assert!((0.55..0.68).contains(&share), "share {share}");
        assert_eq!(
            select_producers(&[], 11, B256::ZERO),
            Err(SpanError::NoValidators)
        );
    }

    #[test]
    fn commit_span_lists_are_rlp_of_id_power_signer() {
        let list = [SpanValidator {
            id: 5,
            power: 1,
            signer: Address::repeat_byte(0x48),
        }];
        let bytes = rlp_validators(&list);
        // [[0x05, 0x01, 0x94 ‖ 20 bytes]]
        let mut expected = vec![0xd8, 0xd7, 0x05, 0x01, 0x94];
        expected.extend_from_slice(&[0x48; 20]);
        assert_eq!(bytes.to_vec(), expected);
    }
}
