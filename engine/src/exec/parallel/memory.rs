//! Multi-version memory: every transaction's writes, by location and transaction index, so that
//! a transaction reads what the highest lower transaction wrote (Block-STM §3).
//!
//! The fee recipient's account is kept apart, one cell per transaction: nearly every
//! transaction pays it a fee, which is recorded as a delta and summed only when a transaction
//! reads that account itself, so paying fees makes no transaction depend on another.

use crate::primitives::Account;
use alloy_primitives::{Address, U256, map::HashMap};
use parking_lot::Mutex;
use std::collections::BTreeMap;

pub(crate) type TxIdx = u32;
pub(crate) type Incarnation = u32;

/// A place in the state a transaction reads or writes. The fee recipient's account is not a
/// `Location` (see [`CoinbaseCell`]); its storage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Location {
    Account(Address),
    Storage(Address, U256),
}

impl Location {
    fn shard(&self) -> usize {
        let mixed = match self {
            Location::Account(a) => u64::from_le_bytes(a.0[12..20].try_into().expect("8 bytes")),
            Location::Storage(a, slot) => {
                u64::from_le_bytes(a.0[12..20].try_into().expect("8 bytes"))
                    ^ slot.as_limbs()[0].rotate_left(17)
            }
        };
        // Fibonacci hashing: slots of one contract are often small consecutive numbers.
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
    }
}

/// An account as a transaction leaves it, with what the block did to its storage so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AccountEntry {
    /// `None`: the account does not exist.
    pub(crate) account: Option<Account>,
    /// One more than the index of the last transaction that wiped the account's storage
    /// (self-destruct or creation); 0 if none did in this block.
    pub(crate) wiped_by: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    Account(AccountEntry),
    Storage(U256),
}

/// One transaction's write of one location.
#[derive(Debug, Clone, Copy)]
struct Entry {
    incarnation: Incarnation,
    /// `None` is Block-STM's ESTIMATE: the writer was aborted and will likely write again.
    value: Option<Value>,
}

/// What reading a location below a transaction found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// No lower transaction wrote it: read the parent state.
    Base,
    Version(TxIdx, Incarnation, Value),
    /// The highest lower writer was aborted: wait for it.
    Estimate(TxIdx),
}

impl Read {
    /// What validation compares: who wrote the value, not the value.
    pub(crate) fn origin(&self) -> Origin {
        match *self {
            Read::Base => Origin::Base,
            Read::Version(idx, inc, _) => Origin::Version(idx, inc),
            Read::Estimate(idx) => Origin::Estimate(idx),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Base,
    Version(TxIdx, Incarnation),
    Estimate(TxIdx),
}

/// The fee recipient's account as one transaction left it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum CoinbaseCell {
    /// Not executed yet, or invalid: no write.
    #[default]
    None,
    /// Aborted; will likely write again.
    Estimate,
    /// Paid `fee` and did not otherwise touch the account.
    Delta(U256),
    /// Touched the account: its whole value after the transaction (fee included). Boxed:
    /// rare, and it keeps every transaction's cell small.
    Absolute(Box<AccountEntry>),
}

/// The fee recipient's account as a transaction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CoinbaseRead {
    pub(crate) entry: AccountEntry,
    /// Some lower transaction wrote it (the block's change set has it).
    pub(crate) in_block: bool,
}

/// Many small shards: little contention, and tables small enough for the allocator to reuse
/// (large ones come fresh from the kernel, zeroed, every block).
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

/// The writes of one location by transaction index. Most locations have one writer: it is
/// kept inline, without a tree.
enum Versions {
    One(TxIdx, Entry),
    Many(BTreeMap<TxIdx, Entry>),
}

impl Versions {
    /// The highest write below `txn`.
    fn below(&self, txn: TxIdx) -> Option<(TxIdx, &Entry)> {
        match self {
            Versions::One(idx, entry) => (*idx < txn).then_some((*idx, entry)),
            Versions::Many(tree) => tree.range(..txn).next_back().map(|(i, e)| (*i, e)),
        }
    }

    fn insert(&mut self, txn: TxIdx, entry: Entry) {
        match self {
            Versions::One(idx, existing) if *idx == txn => *existing = entry,
            Versions::One(idx, existing) => {
                let tree = BTreeMap::from([(*idx, *existing), (txn, entry)]);
                *self = Versions::Many(tree);
            }
            Versions::Many(tree) => {
                tree.insert(txn, entry);
            }
        }
    }

    fn get_mut(&mut self, txn: TxIdx) -> Option<&mut Entry> {
        match self {
            Versions::One(idx, entry) => (*idx == txn).then_some(entry),
            Versions::Many(tree) => tree.get_mut(&txn),
        }
    }

    /// Removes the write of `txn`; true when none is left.
    fn remove(&mut self, txn: TxIdx) -> bool {
        match self {
            Versions::One(idx, _) => *idx == txn,
            Versions::Many(tree) => {
                tree.remove(&txn);
                tree.is_empty()
            }
        }
    }
}

/// The block's multi-version memory.
pub(crate) struct MvMemory {
    shards: Box<[Mutex<HashMap<Location, Versions>>]>,
    coinbase: Box<[Mutex<CoinbaseCell>]>,
    /// The fee recipient's account below a committed transaction (every cell below is final).
    checkpoint: Mutex<Option<(TxIdx, CoinbaseRead)>>,
    /// EIP-161: a touched empty account is deleted.
    clear_empty: bool,
}

impl MvMemory {
    pub(crate) fn new(txs: usize, clear_empty: bool) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            coinbase: (0..txs).map(|_| Mutex::new(CoinbaseCell::None)).collect(),
            checkpoint: Mutex::new(None),
            clear_empty,
        }
    }

    /// The highest write of `location` by a transaction below `txn`.
    pub(crate) fn read(&self, location: &Location, txn: TxIdx) -> Read {
        let shard = self.shards[location.shard()].lock();
        let Some(versions) = shard.get(location) else {
            return Read::Base;
        };
        match versions.below(txn) {
            None => Read::Base,
            Some((idx, entry)) => match entry.value {
                Some(value) => Read::Version(idx, entry.incarnation, value),
                None => Read::Estimate(idx),
            },
        }
    }

    /// Records `writes` of transaction `txn`, replacing those of its previous incarnation
    /// (`previous`, sorted). Returns whether a location not in `previous` was written: readers
    /// above `txn` may then have read past it and must all be validated again.
    pub(crate) fn record(
        &self,
        txn: TxIdx,
        incarnation: Incarnation,
        previous: &[Location],
        writes: &[(Location, Value)],
    ) -> bool {
        let mut wrote_new = false;
        for (location, value) in writes {
            let entry = Entry {
                incarnation,
                value: Some(*value),
            };
            let mut shard = self.shards[location.shard()].lock();
            match shard.entry(*location) {
                alloy_primitives::map::Entry::Occupied(mut versions) => {
                    versions.get_mut().insert(txn, entry)
                }
                alloy_primitives::map::Entry::Vacant(slot) => {
                    slot.insert(Versions::One(txn, entry));
                }
            }
            drop(shard);
            if previous.binary_search(location).is_err() {
                wrote_new = true;
            }
        }
        for location in previous {
            if writes
                .binary_search_by(|(written, _)| written.cmp(location))
                .is_err()
            {
                let mut shard = self.shards[location.shard()].lock();
                if let Some(versions) = shard.get_mut(location)
                    && versions.remove(txn)
                {
                    shard.remove(location);
                }
            }
        }
        wrote_new
    }

    /// Turns the writes of an aborted transaction into ESTIMATEs.
    pub(crate) fn mark_estimates(&self, txn: TxIdx, written: &[Location]) {
        for location in written {
            let mut shard = self.shards[location.shard()].lock();
            if let Some(entry) = shard.get_mut(location).and_then(|v| v.get_mut(txn)) {
                entry.value = None;
            }
        }
        let mut cell = self.coinbase[txn as usize].lock();
        if *cell != CoinbaseCell::None {
            *cell = CoinbaseCell::Estimate;
        }
    }

    /// Sets transaction `txn`'s write of the fee recipient; returns whether it wrote nothing
    /// before (a new location, for validation).
    pub(crate) fn set_coinbase(&self, txn: TxIdx, cell: CoinbaseCell) -> bool {
        let mut slot = self.coinbase[txn as usize].lock();
        let new = *slot == CoinbaseCell::None && cell != CoinbaseCell::None;
        *slot = cell;
        new
    }

    /// The fee recipient's account below `txn`, on top of `base` (its parent-state value):
    /// the last whole value written, then every later fee in order. The walk down stops at
    /// the checkpoint, so a read costs the distance to the commit point, not to the block's
    /// start. `Err` names an aborted writer.
    pub(crate) fn read_coinbase(
        &self,
        txn: TxIdx,
        base: Option<Account>,
    ) -> Result<CoinbaseRead, TxIdx> {
        let floor = *self.checkpoint.lock();
        let floor = floor.filter(|(at, _)| *at <= txn);
        let lowest = floor.map_or(0, |(at, _)| at);
        let mut fees = Vec::new();
        let mut in_block = false;
        let mut start = None;
        for idx in (lowest..txn).rev() {
            match &*self.coinbase[idx as usize].lock() {
                CoinbaseCell::None => {}
                CoinbaseCell::Estimate => return Err(idx),
                CoinbaseCell::Delta(fee) => {
                    in_block = true;
                    fees.push(*fee);
                }
                CoinbaseCell::Absolute(entry) => {
                    in_block = true;
                    start = Some(**entry);
                    break;
                }
            }
        }
        let mut entry = match (start, floor) {
            (Some(entry), _) => entry,
            (None, Some((_, read))) => {
                in_block |= read.in_block;
                read.entry
            }
            (None, None) => AccountEntry {
                account: base,
                wiped_by: 0,
            },
        };
        for fee in fees.into_iter().rev() {
            // A fee, even zero, touches the account: it exists afterwards unless EIP-161
            // removes it.
            entry.account = self.credit(entry.account, fee);
        }
        Ok(CoinbaseRead { entry, in_block })
    }

    /// Records the fee recipient's account below `txn`, every transaction below being final.
    pub(crate) fn checkpoint_coinbase(&self, txn: TxIdx, base: Option<Account>) {
        if let Ok(read) = self.read_coinbase(txn, base) {
            *self.checkpoint.lock() = Some((txn, read));
        }
    }

    /// `account` after being paid `fee` (a touch).
    pub(crate) fn credit(&self, account: Option<Account>, fee: U256) -> Option<Account> {
        let mut account = account.unwrap_or(Account {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: alloy_primitives::KECCAK256_EMPTY,
        });
        // As revm's `incr_balance`: an overflowing payment leaves the balance as it was.
        if let Some(balance) = account.balance.checked_add(fee) {
            account.balance = balance;
        }
        (!(self.clear_empty && account.is_empty())).then_some(account)
    }
}
