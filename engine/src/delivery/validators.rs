//! Validator sets with Tendermint's proposer-priority rotation (spec §4.3, §6.3).

use alloy_primitives::Address;

/// One validator: its signer address, voting power and proposer priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    pub address: Address,
    pub power: i64,
    pub priority: i64,
}

/// Validators sorted by address, as Tendermint and Bor keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    /// Index of the current proposer.
    proposer: usize,
}

/// Why a set could not take new members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetUpdateError {
    #[error("a validator set of {0} members (1 to 1,000 allowed)")]
    Size(usize),
    #[error("validator {0} listed twice")]
    Duplicate(Address),
    #[error("validator {0} with power {1}")]
    Power(Address, i64),
    #[error("the total power overflows")]
    TotalPower,
}

/// Members a set may hold (bounds decoding and per-vote work).
pub const VALIDATORS_MAX: usize = 1_000;

/// Priorities are rescaled so that their spread stays within this many times the total power.
const PRIORITY_WINDOW_FACTOR: i64 = 2;

impl ValidatorSet {
    /// A new set with zero priorities, incremented once (as `NewValidatorSet` does).
    ///
    /// # Panics
    /// If `members` is empty, holds a duplicate address or a non-positive power.
    pub fn new(members: impl IntoIterator<Item = (Address, i64)>) -> Self {
        let mut validators: Vec<Validator> = members
            .into_iter()
            .map(|(address, power)| Validator {
                address,
                power,
                priority: 0,
            })
            .collect();
        validators.sort_by_key(|v| v.address);
        assert!(!validators.is_empty(), "a validator set needs members");
        assert!(
            validators.windows(2).all(|w| w[0].address != w[1].address),
            "duplicate validator"
        );
        assert!(
            validators.iter().all(|v| v.power > 0),
            "validator power must be positive"
        );
        let mut set = Self {
            validators,
            proposer: 0,
        };
        set.increment_proposer_priority(1);
        set
    }

    /// Equal power 1 for every address: BTTC's "one node, one vote".
    pub fn equal(addresses: impl IntoIterator<Item = Address>) -> Self {
        Self::new(addresses.into_iter().map(|a| (a, 1)))
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn total_power(&self) -> i64 {
        self.validators.iter().map(|v| v.power).sum()
    }

    pub fn index_of(&self, address: &Address) -> Option<usize> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
    }

    pub fn contains(&self, address: &Address) -> bool {
        self.index_of(address).is_some()
    }

    pub fn proposer(&self) -> Address {
        self.validators[self.proposer].address
    }

    /// Power strictly above two thirds of the total: a commit quorum.
    pub fn quorum_power(&self) -> i64 {
        if crate::planted::planted(crate::planted::Bug::QuorumTwoThirds) {
            return self.total_power() * 2 / 3;
        }
        self.total_power() * 2 / 3 + 1
    }

    /// Power that must include at least one honest validator (more than a third).
    pub fn one_honest_power(&self) -> i64 {
        self.total_power() - self.quorum_power() + 1
    }

    pub fn power_of(&self, address: &Address) -> i64 {
        self.index_of(address)
            .map_or(0, |i| self.validators[i].power)
    }

    /// Tendermint's `IncrementProposerPriority(times)`: rescale, center on the average, then
    /// `times` rounds of "everyone gains its power; the highest (ties: lower address) pays the
    /// total and proposes".
    pub fn increment_proposer_priority(&mut self, times: u32) {
        assert!(times > 0, "increment at least once");
        let total = self.total_power();
        self.rescale_priorities(PRIORITY_WINDOW_FACTOR * total);
        self.shift_by_average();
        for _ in 0..times {
            for v in &mut self.validators {
                v.priority = v.priority.saturating_add(v.power);
            }
            let mut best = 0;
            for (i, v) in self.validators.iter().enumerate().skip(1) {
                // Sorted by address: on a tie the earlier (lower) address stays.
                if v.priority > self.validators[best].priority {
                    best = i;
                }
            }
            self.validators[best].priority = self.validators[best].priority.saturating_sub(total);
            self.proposer = best;
        }
    }

    /// Tendermint's `UpdateWithChangeSet` as Bor's `getUpdatedValidatorSet` calls it: the
    /// set becomes exactly `members` (address, power). Members that stay keep their
    /// priority; a new member starts at `-(P + P/8)` where `P` is the total power after the
    /// updates and before the removals; then priorities are rescaled and centred. The
    /// proposer is not chosen again here: callers increment afterwards.
    pub fn update_members(&mut self, members: &[(Address, i64)]) -> Result<(), SetUpdateError> {
        if members.is_empty() || members.len() > VALIDATORS_MAX {
            return Err(SetUpdateError::Size(members.len()));
        }
        let mut sorted = members.to_vec();
        sorted.sort_by_key(|(address, _)| *address);
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SetUpdateError::Duplicate(w[0].0));
        }
        if let Some((address, power)) = sorted.iter().find(|(_, p)| *p <= 0) {
            return Err(SetUpdateError::Power(*address, *power));
        }
        let removed_power: i64 = self
            .validators
            .iter()
            .filter(|v| sorted.binary_search_by_key(&v.address, |m| m.0).is_err())
            .map(|v| v.power)
            .sum();
        let total_after_updates = sorted
            .iter()
            .try_fold(removed_power, |sum, (_, power)| sum.checked_add(*power))
            .filter(|total| *total <= i64::MAX / 8)
            .ok_or(SetUpdateError::TotalPower)?;
        let newcomer_priority = -(total_after_updates + (total_after_updates >> 3));
        let validators: Vec<Validator> = sorted
            .iter()
            .map(|&(address, power)| Validator {
                address,
                power,
                priority: self
                    .index_of(&address)
                    .map_or(newcomer_priority, |i| self.validators[i].priority),
            })
            .collect();
        self.validators = validators;
        self.proposer = 0;
        let total = self.total_power();
        self.rescale_priorities(PRIORITY_WINDOW_FACTOR * total);
        self.shift_by_average();
        Ok(())
    }

    /// The proposer of round `round` at this height (the set as of round 0, rotated `round`
    /// more times).
    pub fn proposer_for_round(&self, round: u32) -> Address {
        if round == 0 {
            return self.proposer();
        }
        let mut rotated = self.clone();
        rotated.increment_proposer_priority(round);
        rotated.proposer()
    }

    /// Hash of the members and powers (not the priorities): what a block header names.
    pub fn hash(&self) -> alloy_primitives::B256 {
        let mut bytes = Vec::with_capacity(self.validators.len() * 28);
        for v in &self.validators {
            bytes.extend_from_slice(v.address.as_slice());
            bytes.extend_from_slice(&v.power.to_be_bytes());
        }
        alloy_primitives::keccak256(bytes)
    }

    /// `count(4) ‖ (address(20) power(8) priority(8))* ‖ proposer(4)`: the whole set,
    /// priorities included, as application state stores it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.validators.len() * 36);
        out.extend_from_slice(&(self.validators.len() as u32).to_be_bytes());
        for v in &self.validators {
            out.extend_from_slice(v.address.as_slice());
            out.extend_from_slice(&v.power.to_be_bytes());
            out.extend_from_slice(&v.priority.to_be_bytes());
        }
        out.extend_from_slice(&(self.proposer as u32).to_be_bytes());
        out
    }

    /// Decodes [`ValidatorSet::encode`], refusing empty, unsorted or out-of-range sets.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::primitives::DecodeError> {
        let mut r = crate::primitives::ByteReader::new(bytes, "validator set");
        let count = r.u32()? as usize;
        if count == 0 || count > VALIDATORS_MAX || r.remaining() != count * 36 + 4 {
            return Err(r.error(format!("{count} validators")));
        }
        let mut validators = Vec::with_capacity(count);
        for _ in 0..count {
            let address = r.address()?;
            let power = r.u64()? as i64;
            let priority = r.u64()? as i64;
            validators.push(Validator {
                address,
                power,
                priority,
            });
        }
        let proposer = r.u32()? as usize;
        r.finish()?;
        if proposer >= count
            || validators.windows(2).any(|w| w[0].address >= w[1].address)
            || validators.iter().any(|v| v.power <= 0)
        {
            return Err(r.error("unsorted, duplicate or powerless members"));
        }
        Ok(Self {
            validators,
            proposer,
        })
    }

    fn rescale_priorities(&mut self, diff_max: i64) {
        let max = self
            .validators
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(0);
        let min = self
            .validators
            .iter()
            .map(|v| v.priority)
            .min()
            .unwrap_or(0);
        let diff = max.saturating_sub(min);
        if diff > diff_max {
            let ratio = (diff + diff_max - 1) / diff_max;
            for v in &mut self.validators {
                // Go's integer division truncates toward zero, as Rust's does.
                v.priority /= ratio;
            }
        }
    }

    fn shift_by_average(&mut self) {
        let n = self.validators.len() as i128;
        let sum: i128 = self.validators.iter().map(|v| i128::from(v.priority)).sum();
        // big.Int.Div is Euclidean: for a positive divisor, the floor.
        let avg = sum.div_euclid(n) as i64;
        for v in &mut self.validators {
            v.priority = v.priority.saturating_sub(avg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::with_last_byte(b)
    }

    #[test]
    fn mainnet_genesis_priorities() {
        // Spec §6.3: 7 validators of power 1 after one increment from zero: the lowest
        // address has -6 and proposes, the others +1.
        let set = ValidatorSet::equal((1..=7).map(addr));
        let priorities: Vec<i64> = set.validators().iter().map(|v| v.priority).collect();
        assert_eq!(priorities, vec![-6, 1, 1, 1, 1, 1, 1]);
        assert_eq!(set.proposer(), addr(1));
    }

    #[test]
    fn equal_power_rotates_round_robin_by_address() {
        let mut set = ValidatorSet::equal((1..=4).map(addr));
        let mut order = vec![set.proposer()];
        for _ in 0..7 {
            set.increment_proposer_priority(1);
            order.push(set.proposer());
        }
        let expected: Vec<Address> = [1, 2, 3, 4, 1, 2, 3, 4].into_iter().map(addr).collect();
        assert_eq!(order, expected);
        assert_eq!(set.proposer_for_round(2), addr(2));
        assert_eq!(set.quorum_power(), 3);
        assert_eq!(set.one_honest_power(), 2);
    }

    #[test]
    fn an_update_keeps_priorities_and_places_newcomers_behind() {
        let mut set = ValidatorSet::equal((1..=3).map(addr));
        set.increment_proposer_priority(1);
        // Priorities are now -1, -1, 2: validator 2 proposed last.
        let before: Vec<i64> = set.validators().iter().map(|v| v.priority).collect();
        set.update_members(&[(addr(1), 1), (addr(2), 1), (addr(4), 1)])
            .unwrap();
        // P = 3 kept/new + 1 removed = 4 before removals: the newcomer starts at -(4 + 0).
        let after: Vec<(Address, i64)> = set
            .validators()
            .iter()
            .map(|v| (v.address, v.priority))
            .collect();
        let shift = {
            let sum = before[0] + before[1] - 4;
            sum.div_euclid(3)
        };
        assert_eq!(
            after,
            vec![
                (addr(1), before[0] - shift),
                (addr(2), before[1] - shift),
                (addr(4), -4 - shift)
            ]
        );
        assert_eq!(set.update_members(&[]), Err(SetUpdateError::Size(0)));
        assert_eq!(
            set.update_members(&[(addr(1), 1), (addr(1), 2)]),
            Err(SetUpdateError::Duplicate(addr(1)))
        );
        assert_eq!(
            set.update_members(&[(addr(1), 0)]),
            Err(SetUpdateError::Power(addr(1), 0))
        );
    }

    #[test]
    fn weighted_power_proposes_in_proportion() {
        let mut set = ValidatorSet::new([(addr(1), 1), (addr(2), 3)]);
        let mut count = [0; 2];
        for _ in 0..400 {
            count[set.index_of(&set.proposer()).unwrap()] += 1;
            set.increment_proposer_priority(1);
        }
        assert_eq!(count, [100, 300]);
    }
}
