//! Milestones (DESIGN.md §10.4): each precommit carries the hashes of the BTTC blocks its
//! validator holds after the last milestone; the longest run of blocks that more than 2/3 of
//! the validators hold alike becomes final. The BTTC chain never reorganizes below it.

use super::validators::ValidatorSet;
use crate::primitives::{ByteReader, DecodeError};
use alloy_primitives::{Address, B256};

/// Block hashes one precommit may report (bounds decoding; a validator reports the first
/// ones after the last milestone, so a milestone advances at most this far per height).
pub const CHAIN_VOTE_HASHES_MAX: usize = 128;

/// A validator's BTTC chain after the last milestone: the hashes of its canonical blocks
/// `start, start + 1, …` (its head last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainVote {
    pub start: u64,
    pub hashes: Vec<B256>,
}

/// A final BTTC block, and the Delivery height whose block decided it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Milestone {
    pub number: u64,
    pub hash: B256,
    pub delivery_height: u64,
}

impl ChainVote {
    /// `start(8) ‖ count(2) ‖ hashes`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.start.to_be_bytes());
        out.extend_from_slice(&(self.hashes.len() as u16).to_be_bytes());
        for hash in &self.hashes {
            out.extend_from_slice(hash.as_slice());
        }
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        let start = r.u64()?;
        let count = usize::from(u16::from_be_bytes(r.take(2)?.try_into().expect("2 bytes")));
        if count > CHAIN_VOTE_HASHES_MAX {
            return Err(r.error(format!("{count} chain hashes")));
        }
        let hashes = (0..count).map(|_| r.b256()).collect::<Result<_, _>>()?;
        Ok(Self { start, hashes })
    }

    /// The hash this vote names for block `number`, if any.
    pub fn hash_at(&self, number: u64) -> Option<B256> {
        let index = usize::try_from(number.checked_sub(self.start)?).ok()?;
        self.hashes.get(index).copied()
    }
}

/// The last block that more than 2/3 of `set`'s power reports alike from `start` on, with
/// every block before it also alike: `(number, hash)`. Votes that start elsewhere, and votes
/// from outside the set, count for nothing; a validator counts once.
pub fn decide<'a>(
    set: &ValidatorSet,
    start: u64,
    votes: impl IntoIterator<Item = (Address, &'a ChainVote)>,
) -> Option<(u64, B256)> {
    let mut voters: Vec<(i64, &ChainVote)> = Vec::new();
    let mut seen = Vec::new();
    for (validator, vote) in votes {
        let power = set.power_of(&validator);
        if power == 0 || vote.start != start || seen.contains(&validator) {
            continue;
        }
        seen.push(validator);
        voters.push((power, vote));
    }
    let quorum = set.quorum_power();
    let mut decided = None;
    for index in 0..CHAIN_VOTE_HASHES_MAX {
        // Among those that agreed so far, the hash at `index` with a quorum behind it (at
        // most one can have one).
        let mut tally: Vec<(B256, i64)> = Vec::new();
        for (power, vote) in &voters {
            if let Some(hash) = vote.hashes.get(index) {
                match tally.iter_mut().find(|(h, _)| h == hash) {
                    Some((_, p)) => *p += power,
                    None => tally.push((*hash, *power)),
                }
            }
        }
        let Some((hash, _)) = tally.into_iter().find(|(_, p)| *p >= quorum) else {
            break;
        };
        voters.retain(|(_, vote)| vote.hashes.get(index) == Some(&hash));
        decided = Some((start + index as u64, hash));
    }
    decided
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::with_last_byte(b)
    }

    fn h(b: u8) -> B256 {
        B256::repeat_byte(b)
    }

    fn vote(start: u64, hashes: &[u8]) -> ChainVote {
        ChainVote {
            start,
            hashes: hashes.iter().map(|b| h(*b)).collect(),
        }
    }

    #[test]
    fn the_longest_prefix_held_by_a_quorum_is_final() {
        let set = ValidatorSet::equal((1..=4).map(addr));
        let votes = [
            (addr(1), vote(10, &[1, 2, 3, 4])),
            (addr(2), vote(10, &[1, 2, 3])),
            (addr(3), vote(10, &[1, 2, 9, 9])),
            (addr(4), vote(10, &[1, 2, 3, 4, 5])),
        ];
        let decided = decide(&set, 10, votes.iter().map(|(a, v)| (*a, v)));
        // Three of four hold 10..=12 alike (1, 2, 3); only two hold 13.
        assert_eq!(decided, Some((12, h(3))));

        // Without a quorum on the first block nothing is final.
        let split = [
            (addr(1), vote(10, &[1])),
            (addr(2), vote(10, &[1])),
            (addr(3), vote(10, &[7])),
            (addr(4), vote(10, &[7])),
        ];
        assert_eq!(decide(&set, 10, split.iter().map(|(a, v)| (*a, v))), None);

        // A vote counted twice, a stranger, and a vote from another start do not make one.
        let stuffed = [
            (addr(1), vote(10, &[1])),
            (addr(1), vote(10, &[1])),
            (addr(9), vote(10, &[1])),
            (addr(2), vote(11, &[1])),
            (addr(3), vote(10, &[1])),
        ];
        assert_eq!(decide(&set, 10, stuffed.iter().map(|(a, v)| (*a, v))), None);
    }

    #[test]
    fn a_vote_that_forks_early_stops_counting_later() {
        let set = ValidatorSet::equal((1..=4).map(addr));
        // Validator 4 names block 11 as 2 like the others, but 10 differently: it is not on
        // the same chain and cannot lend its weight to 11.
        let votes = [
            (addr(1), vote(10, &[1, 2])),
            (addr(2), vote(10, &[1, 2])),
            (addr(3), vote(10, &[5, 2])),
            (addr(4), vote(10, &[1, 3])),
        ];
        assert_eq!(
            decide(&set, 10, votes.iter().map(|(a, v)| (*a, v))),
            Some((10, h(1)))
        );
    }

    #[test]
    fn chain_votes_round_trip_and_bounds_hold() {
        let v = vote(7, &[1, 2, 3]);
        let mut out = Vec::new();
        v.encode(&mut out);
        let mut r = ByteReader::new(&out, "chain vote");
        assert_eq!(ChainVote::decode(&mut r).unwrap(), v);
        assert_eq!(v.hash_at(8), Some(h(2)));
        assert_eq!(v.hash_at(6), None);
        assert_eq!(v.hash_at(10), None);
        let mut huge = 0u64.to_be_bytes().to_vec();
        huge.extend_from_slice(&1_000u16.to_be_bytes());
        let mut r = ByteReader::new(&huge, "chain vote");
        assert!(ChainVote::decode(&mut r).is_err());
    }
}
