//! Bor's snapshot (spec §4.3): the producer set with proposer priorities as of a block, the
//! in-turn producer, each signer's succession, and the difficulty it must seal with.

use super::{
    extra::{self, ExtraError},
    params::BorParams,
};
use crate::delivery::validators::{SetUpdateError, ValidatorSet};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256};

/// Why a header could not be applied to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("header {found} applied to the snapshot of block {at}")]
    NotNext { at: u64, found: u64 },
    #[error(transparent)]
    Extra(#[from] ExtraError),
    #[error(transparent)]
    Update(#[from] SetUpdateError),
}

/// The producers as of block `number` (after its sprint-end validators, if any, were taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub number: u64,
    pub hash: B256,
    pub set: ValidatorSet,
}

impl Snapshot {
    /// The snapshot at genesis: the producers of span 0 (`getBorValidators(1)`) with their
    /// priorities incremented once, as bor's `newSnapshot` does.
    pub fn genesis(hash: B256, producers: &[(Address, u64)]) -> Result<Self, SetUpdateError> {
        if producers.is_empty() || producers.len() > extra::VALIDATORS_MAX {
            return Err(SetUpdateError::Size(producers.len()));
        }
        let mut members = Vec::with_capacity(producers.len());
        for &(address, power) in producers {
            let power = i64::try_from(power)
                .ok()
                .filter(|p| *p > 0)
                .ok_or(SetUpdateError::Power(address, power as i64))?;
            members.push((address, power));
        }
        members.sort_by_key(|(address, _)| *address);
        if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SetUpdateError::Duplicate(w[0].0));
        }
        Ok(Self {
            number: 0,
            hash,
            set: ValidatorSet::new(members),
        })
    }

    /// Takes the next header: at a sprint's end its validator bytes become the set, and the
    /// priorities advance once (so the in-turn producer changes once per sprint).
    pub fn apply(
        &mut self,
        params: &BorParams,
        header: &Header,
        hash: B256,
    ) -> Result<(), SnapshotError> {
        if header.number != self.number + 1 {
            return Err(SnapshotError::NotNext {
                at: self.number,
                found: header.number,
            });
        }
        if params.is_sprint_end(header.number) {
            let (_, middle, _) = extra::split(&header.extra_data)?;
            let members: Vec<(Address, i64)> = extra::parse_validator_bytes(middle)?
                .into_iter()
                .map(|(address, power)| (address, power as i64))
                .collect();
            let mut set = self.set.clone();
            set.update_members(&members)?;
            set.increment_proposer_priority(1);
            self.set = set;
        }
        self.number = header.number;
        self.hash = hash;
        Ok(())
    }

    /// The in-turn producer of the blocks after this snapshot.
    pub fn proposer(&self) -> Address {
        self.set.proposer()
    }

    /// How many ranks `signer` stands behind the in-turn producer, counting forward in
    /// address order; `None` if it is not a producer.
    pub fn succession(&self, signer: &Address) -> Option<usize> {
        let n = self.set.len();
        let signer = self.set.index_of(signer)?;
        let proposer = self.set.index_of(&self.proposer())?;
        Some((signer + n - proposer) % n)
    }

    /// The difficulty `signer` seals with: `n - succession` (in turn: `n`).
    pub fn difficulty(&self, signer: &Address) -> Option<u64> {
        Some((self.set.len() - self.succession(signer)?) as u64)
    }

    /// The producers in succession order from the in-turn one: who may seal, and when.
    pub fn succession_order(&self) -> Vec<Address> {
        let n = self.set.len();
        let start = self.set.index_of(&self.proposer()).unwrap_or(0);
        (0..n)
            .map(|k| self.set.validators()[(start + k) % n].address)
            .collect()
    }

    /// The members and powers, for a sprint-end header's validator bytes check.
    pub fn members(&self) -> Vec<(Address, u64)> {
        self.set
            .validators()
            .iter()
            .map(|v| (v.address, v.power as u64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::bor::extra::{Vanity, validator_bytes};
    use alloy_primitives::Bytes;

    /// The seven signers of BTTC mainnet's Delivery genesis, each of power 1, whose span 0
    /// lists `accum` -6 for the lowest address and 1 for the others (bttcprotocol/launch
    /// `mainnet-v1/sentry/validator/delivery/config/genesis.json` at 6190553a).
    const MAINNET_SIGNERS: [&str; 7] = [
        "0x48927e71f60a94513ac4cc724d468b2f6f898922",
        "0x5820cc997ac1046667ed0e7ffe2c9d797215eb53",
        "0x63b29369dfb77e5396c781261a9f8ab80a9c65b6",
        "0x6e5dd640fe39b22e7b02751a26f4c0e8ac9c77c2",
        "0x9da23220519f0b044d0d581bb4a912f87401ff48",
        "0xec13134e7c018c02236833b9242af563d5b58f9c",
        "0xf99560801492f0cba8d3731574f4b053c8585507",
    ];

    fn signers() -> Vec<Address> {
        MAINNET_SIGNERS.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn header(number: u64, validators: Option<&[(Address, u64)]>) -> Header {
        let mut extra = Vanity::default().encode().to_vec();
        if let Some(v) = validators {
            extra.extend(validator_bytes(v));
        }
        extra.extend_from_slice(&[0; 65]);
        Header {
            number,
            extra_data: Bytes::from(extra),
            ..Default::default()
        }
    }

    #[test]
    fn mainnet_genesis_priorities_rotate_once_per_sprint_in_address_order() {
        let params = BorParams::MAINNET;
        let members: Vec<(Address, u64)> = signers().into_iter().map(|a| (a, 1)).collect();
        let mut snap = Snapshot::genesis(B256::ZERO, &members).unwrap();
        let priorities: Vec<i64> = snap.set.validators().iter().map(|v| v.priority).collect();
        assert_eq!(
            priorities,
            [-6, 1, 1, 1, 1, 1, 1],
            "the genesis file's accums"
        );
        assert_eq!(snap.proposer(), signers()[0], "the genesis file's proposer");

        let mut in_turn = Vec::new();
        for number in 1..=14 * 64 {
            if (number - 1) % 64 == 0 {
                in_turn.push(snap.proposer());
            }
            let validators = params.is_sprint_end(number).then_some(members.as_slice());
            snap.apply(&params, &header(number, validators), B256::ZERO)
                .unwrap();
            // Inside a sprint nothing moves.
            if !params.is_sprint_end(number) && number % 64 != 0 {
                assert_eq!(snap.proposer(), *in_turn.last().unwrap());
            }
        }
        let expected: Vec<Address> = signers().into_iter().cycle().take(14).collect();
        assert_eq!(in_turn, expected);
    }

    #[test]
    fn succession_and_difficulty_for_every_rank() {
        let members: Vec<(Address, u64)> = signers().into_iter().map(|a| (a, 1)).collect();
        let mut snap = Snapshot::genesis(B256::ZERO, &members).unwrap();
        let params = BorParams::MAINNET;
        for number in 1..=64 {
            let validators = params.is_sprint_end(number).then_some(members.as_slice());
            snap.apply(&params, &header(number, validators), B256::ZERO)
                .unwrap();
        }
        // Sprint 1: the second address is in turn; ranks count forward and wrap around.
        let order = snap.succession_order();
        let s = signers();
        assert_eq!(order, [s[1], s[2], s[3], s[4], s[5], s[6], s[0]]);
        for (rank, signer) in order.iter().enumerate() {
            assert_eq!(snap.succession(signer), Some(rank));
            assert_eq!(snap.difficulty(signer), Some(7 - rank as u64));
            assert_eq!(
                params.producer_delay(65, rank),
                2 + 2 * rank as u64,
                "rank {rank} mid-sprint"
            );
        }
        assert_eq!(snap.difficulty(&Address::ZERO), None);
    }

    #[test]
    fn a_sprint_end_header_changes_the_set_and_a_gap_is_refused() {
        let params = BorParams {
            sprint: 4,
            ..BorParams::MAINNET
        };
        let a = |b: u8| Address::repeat_byte(b);
        let mut snap = Snapshot::genesis(B256::ZERO, &[(a(1), 1), (a(2), 1)]).unwrap();
        for number in 1..=2 {
            snap.apply(&params, &header(number, None), B256::ZERO)
                .unwrap();
        }
        let next = [(a(2), 1), (a(3), 1), (a(4), 1)];
        snap.apply(&params, &header(3, Some(&next)), B256::ZERO)
            .unwrap();
        assert_eq!(snap.members(), next.to_vec());
        assert_eq!(
            snap.apply(&params, &header(5, None), B256::ZERO),
            Err(SnapshotError::NotNext { at: 3, found: 5 })
        );
        let mut bad = snap.clone();
        for number in 4..=6 {
            bad.apply(&params, &header(number, None), B256::ZERO)
                .unwrap();
        }
        assert!(matches!(
            bad.apply(&params, &header(7, None), B256::ZERO),
            Err(SnapshotError::Extra(ExtraError::ValidatorBytes(0)))
        ));
    }
}
