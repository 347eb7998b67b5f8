//! The transaction pool: per-sender nonce order, pending and queued, bounded, fee-replaced.
//!
//! Pure: the caller supplies each sender's state (nonce, balance) and the current base fee. A
//! transaction is *pending* when its nonce continues the sender's state nonce without a gap, and
//! *queued* otherwise. Every bound (total count, per sender, bytes) is enforced on insert; when
//! the pool is full the cheapest tail transaction (a sender's highest nonce) is evicted if the
//! newcomer pays more, otherwise the newcomer is refused.

use crate::{
    chain::spec::ChainSpec,
    primitives::{Account, RecoveredTx, TX_ENCODED_LEN_MAX},
};
use alloy_consensus::Transaction;
use alloy_eips::Typed2718;
use alloy_primitives::{Address, B256, U256};
use revm::context_interface::cfg::gas::calculate_initial_tx_gas;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap},
    sync::Arc,
};

/// Bounds of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    pub txs_max: usize,
    pub txs_per_sender_max: usize,
    pub bytes_max: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            txs_max: 200_000,
            txs_per_sender_max: 2_048,
            bytes_max: 512 * 1024 * 1024,
        }
    }
}

/// Why a transaction was refused. Each kind has its own message; RPC maps them to codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("invalid signature: {0}")]
    InvalidSignature(#[from] crate::crypto::RecoverError),
    #[error("invalid chain id: transaction has {got}, this chain is {expected}")]
    WrongChainId { expected: u64, got: u64 },
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow { state: u64, tx: u64 },
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}")]
    InsufficientFunds { balance: U256, cost: U256 },
    #[error("intrinsic gas too low: gas {gas_limit}, minimum needed {intrinsic}")]
    IntrinsicGasTooLow { gas_limit: u64, intrinsic: u64 },
    #[error("exceeds block gas limit: gas {gas_limit}, block gas limit {block_gas_limit}")]
    GasLimitExceeded {
        gas_limit: u64,
        block_gas_limit: u64,
    },
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized { size: usize, limit: usize },
    #[error("transaction underpriced: fee cap {fee_cap} wei below the minimum {minimum} wei")]
    FeeTooLow { fee_cap: u128, minimum: u128 },
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    #[error("transaction type {0} not supported")]
    UnsupportedType(u8),
    #[error("already known")]
    AlreadyKnown,
    #[error("replacement transaction underpriced: needs a fee at least 10% higher")]
    ReplacementUnderpriced,
    #[error("txpool is full")]
    PoolFull,
    #[error("account limit exceeded: {0} transactions from this sender already pooled")]
    SenderFull(usize),
}

/// What an accepted insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub hash: B256,
    /// The transaction it replaced (same sender and nonce), if any.
    pub replaced: Option<B256>,
    /// Transactions evicted to make room.
    pub evicted: Vec<B256>,
}

#[derive(Debug, Default)]
struct SenderTxs {
    /// The sender's nonce in the state the pool last heard of.
    state_nonce: u64,
    by_nonce: BTreeMap<u64, Arc<RecoveredTx>>,
}

/// Pooled transactions by sender and nonce.
pub type PoolContent = BTreeMap<Address, BTreeMap<u64, Arc<RecoveredTx>>>;

/// Eviction key of a sender's tail transaction: cheapest fee cap first.
type TailKey = (u128, Address, u64);

#[derive(Debug)]
pub struct Mempool {
    spec: ChainSpec,
    limits: PoolLimits,
    by_hash: HashMap<B256, Arc<RecoveredTx>>,
    senders: HashMap<Address, SenderTxs>,
    tails: BTreeSet<TailKey>,
    bytes: usize,
}

/// Fee cap: `gas_price` for legacy and EIP-2930, `max_fee_per_gas` for EIP-1559.
fn fee_cap(tx: &RecoveredTx) -> u128 {
    tx.envelope.max_fee_per_gas()
}

fn tip_cap(tx: &RecoveredTx) -> u128 {
    tx.envelope
        .max_priority_fee_per_gas()
        .unwrap_or_else(|| tx.envelope.max_fee_per_gas())
}

/// `gas_limit × fee cap + value`: what the sender must hold for the transaction to be valid.
pub fn max_cost(tx: &RecoveredTx) -> U256 {
    U256::from(tx.envelope.gas_limit()) * U256::from(fee_cap(tx)) + tx.envelope.value()
}

/// Checks the facts of a transaction that need no pool state; returns nothing on success.
pub fn validate_stateless(spec: &ChainSpec, tx: &RecoveredTx) -> Result<(), PoolError> {
    let env = &tx.envelope;
    let ty = env.ty();
    let supported = match ty {
        0 | 1 => true,
        2 => spec.is_london(),
        _ => false,
    };
    if !supported {
        return Err(PoolError::UnsupportedType(ty));
    }
    if tx.encoded_len > TX_ENCODED_LEN_MAX {
        return Err(PoolError::Oversized {
            size: tx.encoded_len,
            limit: TX_ENCODED_LEN_MAX,
        });
    }
    if let Some(got) = env.chain_id()
        && got != spec.chain_id
    {
        return Err(PoolError::WrongChainId {
            expected: spec.chain_id,
            got,
        });
    }
    if env.gas_limit() > spec.gas_limit {
        return Err(PoolError::GasLimitExceeded {
            gas_limit: env.gas_limit(),
            block_gas_limit: spec.gas_limit,
        });
    }
    if tip_cap(tx) > fee_cap(tx) {
        return Err(PoolError::TipAboveFeeCap);
    }
    if fee_cap(tx) < spec.min_gas_price {
        return Err(PoolError::FeeTooLow {
            fee_cap: fee_cap(tx),
            minimum: spec.min_gas_price,
        });
    }
    let intrinsic = intrinsic_gas(spec, tx);
    if env.gas_limit() < intrinsic {
        return Err(PoolError::IntrinsicGasTooLow {
            gas_limit: env.gas_limit(),
            intrinsic,
        });
    }
    Ok(())
}

/// The gas a transaction pays before any code runs, or its EIP-7623 floor if higher.
pub fn intrinsic_gas(spec: &ChainSpec, tx: &RecoveredTx) -> u64 {
    let env = &tx.envelope;
    let (accounts, slots) = env.access_list().map_or((0, 0), |list| {
        (
            list.len() as u64,
            list.iter().map(|item| item.storage_keys.len() as u64).sum(),
        )
    });
    let gas = calculate_initial_tx_gas(
        spec.spec_id,
        env.input(),
        env.kind().is_create(),
        accounts,
        slots,
        0,
        None,
    );
    (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
}

impl Mempool {
    pub fn new(spec: ChainSpec, limits: PoolLimits) -> Self {
        Self {
            spec,
            limits,
            by_hash: HashMap::new(),
            senders: HashMap::new(),
            tails: BTreeSet::new(),
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&self, hash: &B256) -> Option<&Arc<RecoveredTx>> {
        self.by_hash.get(hash)
    }

    /// The nonce the sender's next new transaction should carry: the state nonce followed by
    /// every pending (gap-free) pooled nonce.
    pub fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(s) = self.senders.get(sender) {
            for nonce in s.by_nonce.range(state_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Every pooled transaction, split as geth's `txpool_content`: (pending, queued), each by
    /// sender and nonce.
    pub fn content(&self) -> (PoolContent, PoolContent) {
        let (mut pending, mut queued) = (PoolContent::new(), PoolContent::new());
        for (sender, txs) in &self.senders {
            let mut next = txs.state_nonce;
            for (nonce, tx) in &txs.by_nonce {
                let side = if *nonce == next {
                    next += 1;
                    &mut pending
                } else {
                    &mut queued
                };
                side.entry(*sender).or_default().insert(*nonce, tx.clone());
            }
        }
        (pending, queued)
    }

    /// Counts (pending, queued) transactions.
    pub fn counts(&self) -> (usize, usize) {
        let pending: usize = self
            .senders
            .values()
            .map(|s| {
                (s.state_nonce..)
                    .zip(s.by_nonce.keys())
                    .take_while(|(n, k)| n == *k)
                    .count()
            })
            .sum();
        (pending, self.len() - pending)
    }

    /// Validates `tx` against the chain rules and the sender's `account` state, then inserts it.
    /// A refusal leaves the pool unchanged.
    pub fn insert(&mut self, tx: RecoveredTx, account: Account) -> Result<Inserted, PoolError> {
        validate_stateless(&self.spec, &tx)?;
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let nonce = tx.envelope.nonce();
        if nonce < account.nonce {
            return Err(PoolError::NonceTooLow {
                state: account.nonce,
                tx: nonce,
            });
        }
        let cost = max_cost(&tx);
        if account.balance < cost {
            return Err(PoolError::InsufficientFunds {
                balance: account.balance,
                cost,
            });
        }
        let existing = self.senders.get(&tx.sender);
        let replaced = existing.and_then(|s| s.by_nonce.get(&nonce)).cloned();
        if let Some(old) = &replaced {
            let bumped = |old: u128, new: u128| new >= old.saturating_add(old / 10);
            if !bumped(fee_cap(old), fee_cap(&tx)) || !bumped(tip_cap(old), tip_cap(&tx)) {
                return Err(PoolError::ReplacementUnderpriced);
            }
        } else {
            let sender_len = existing.map_or(0, |s| s.by_nonce.len());
            if sender_len >= self.limits.txs_per_sender_max
                || nonce >= account.nonce + self.limits.txs_per_sender_max as u64
            {
                return Err(PoolError::SenderFull(sender_len));
            }
        }
        let freed = replaced.as_ref().map_or(0, |old| old.encoded_len);
        let evicted = self.make_room(&tx, usize::from(replaced.is_none()), freed)?;

        if let Some(old) = &replaced {
            self.remove(&old.sender, nonce);
        }
        let hash = tx.hash;
        let tx = Arc::new(tx);
        let sender = self.senders.entry(tx.sender).or_default();
        sender.state_nonce = account.nonce;
        if let Some((&tail_nonce, tail)) = sender.by_nonce.last_key_value() {
            self.tails.remove(&(fee_cap(tail), tx.sender, tail_nonce));
        }
        sender.by_nonce.insert(nonce, tx.clone());
        let (&tail_nonce, tail) = sender.by_nonce.last_key_value().expect("just inserted");
        self.tails.insert((fee_cap(tail), tx.sender, tail_nonce));
        self.bytes += tx.encoded_len;
        self.by_hash.insert(hash, tx);
        self.check_invariants();
        Ok(Inserted {
            hash,
            replaced: replaced.map(|t| t.hash),
            evicted,
        })
    }

    /// Evicts the cheapest tail transactions until `tx` fits, or refuses it (changing nothing)
    /// when they do not pay less than it.
    fn make_room(
        &mut self,
        tx: &RecoveredTx,
        added_count: usize,
        freed_bytes: usize,
    ) -> Result<Vec<B256>, PoolError> {
        let fits = |count: usize, bytes: usize, limits: &PoolLimits| {
            count + added_count <= limits.txs_max
                && bytes + tx.encoded_len <= limits.bytes_max + freed_bytes
        };
        let mut count = self.len();
        let mut bytes = self.bytes;
        let mut victims = Vec::new();
        for &(fee, sender, nonce) in &self.tails {
            if fits(count, bytes, &self.limits) {
                break;
            }
            if fee >= fee_cap(tx) || sender == tx.sender {
                return Err(PoolError::PoolFull);
            }
            let victim = &self.senders[&sender].by_nonce[&nonce];
            count -= 1;
            bytes -= victim.encoded_len;
            victims.push((sender, nonce));
        }
        if !fits(count, bytes, &self.limits) {
            return Err(PoolError::PoolFull);
        }
        // Each victim is a distinct sender's tail; removing it exposes that sender's next
        // transaction as a tail, which is not evicted in this round.
        Ok(victims
            .into_iter()
            .filter_map(|(s, n)| self.remove(&s, n))
            .map(|t| t.hash)
            .collect())
    }

    /// Removes one transaction; returns it if it was pooled.
    fn remove(&mut self, sender: &Address, nonce: u64) -> Option<Arc<RecoveredTx>> {
        let s = self.senders.get_mut(sender)?;
        let (&tail_nonce, tail) = s.by_nonce.last_key_value()?;
        let tail_key = (fee_cap(tail), *sender, tail_nonce);
        let tx = s.by_nonce.remove(&nonce)?;
        self.tails.remove(&tail_key);
        if let Some((&n, t)) = s.by_nonce.last_key_value() {
            self.tails.insert((fee_cap(t), *sender, n));
        } else {
            self.senders.remove(sender);
        }
        self.by_hash.remove(&tx.hash);
        self.bytes -= tx.encoded_len;
        Some(tx)
    }

    /// Removes a transaction by hash (e.g. one that proved invalid when executed).
    pub fn remove_by_hash(&mut self, hash: &B256) -> Option<Arc<RecoveredTx>> {
        let tx = self.by_hash.get(hash)?.clone();
        self.remove(&tx.sender, tx.envelope.nonce())
    }

    /// Every sender with pooled transactions.
    pub fn senders(&self) -> Vec<Address> {
        self.senders.keys().copied().collect()
    }

    /// Tells the pool the new state nonces of senders after a block: transactions with lower
    /// nonces are dropped.
    pub fn on_new_nonces(&mut self, nonces: impl IntoIterator<Item = (Address, u64)>) {
        for (sender, state_nonce) in nonces {
            let stale: Vec<u64> = match self.senders.get_mut(&sender) {
                Some(s) => {
                    s.state_nonce = state_nonce;
                    s.by_nonce.range(..state_nonce).map(|(n, _)| *n).collect()
                }
                None => continue,
            };
            for n in stale {
                self.remove(&sender, n);
            }
        }
        self.check_invariants();
    }

    /// Updates the pool after `block` was committed: transactions found invalid while building
    /// it are dropped, and so are those its senders' new nonces leave behind.
    pub fn on_block(&mut self, block: &super::builder::BuiltBlock) {
        for (hash, reason) in &block.rejected {
            tracing::warn!(%hash, %reason, "dropping invalid transaction");
            self.remove_by_hash(hash);
        }
        let senders: std::collections::BTreeSet<Address> =
            block.txs.iter().map(|t| t.sender).collect();
        self.on_new_nonces(senders.into_iter().filter_map(|s| {
            block
                .changes
                .accounts
                .get(&s)
                .and_then(|c| c.account)
                .map(|a| (s, a.nonce))
        }));
    }

    /// Pending transactions in block order: across senders by effective tip (highest first),
    /// within a sender by nonce. Transactions whose fee cap is below `base_fee` are left out.
    pub fn best(&self, base_fee: u64) -> BestTxs<'_> {
        let mut heap = BinaryHeap::new();
        for (sender, s) in &self.senders {
            if let Some(tx) = s.by_nonce.get(&s.state_nonce)
                && let Some(tip) = effective_tip(tx, base_fee)
            {
                heap.push((tip, Reverse(tx.hash), *sender, s.state_nonce));
            }
        }
        BestTxs {
            pool: self,
            heap,
            base_fee,
        }
    }

    fn check_invariants(&self) {
        debug_assert_eq!(
            self.by_hash.len(),
            self.senders
                .values()
                .map(|s| s.by_nonce.len())
                .sum::<usize>()
        );
        debug_assert_eq!(self.tails.len(), self.senders.len());
        debug_assert!(self.by_hash.len() <= self.limits.txs_max);
        debug_assert!(self.bytes <= self.limits.bytes_max);
    }
}

/// What the block producer earns per gas from `tx` at `base_fee`; `None` if it cannot pay it.
pub fn effective_tip(tx: &RecoveredTx, base_fee: u64) -> Option<u128> {
    let cap = fee_cap(tx);
    let base = u128::from(base_fee);
    (cap >= base).then(|| tip_cap(tx).min(cap - base))
}

type HeapEntry = (u128, Reverse<B256>, Address, u64);

/// Iterator over pending transactions in block order; see [`Mempool::best`].
pub struct BestTxs<'a> {
    pool: &'a Mempool,
    heap: BinaryHeap<HeapEntry>,
    base_fee: u64,
}

impl BestTxs<'_> {
    /// Stops yielding this sender's transactions (its last one failed to execute).
    pub fn skip_sender(&mut self, sender: &Address) {
        self.heap.retain(|e| &e.2 != sender);
    }
}

impl Iterator for BestTxs<'_> {
    type Item = Arc<RecoveredTx>;

    fn next(&mut self) -> Option<Self::Item> {
        let (_, _, sender, nonce) = self.heap.pop()?;
        let s = &self.pool.senders[&sender];
        let tx = s.by_nonce[&nonce].clone();
        if let Some(next) = s.by_nonce.get(&(nonce + 1))
            && let Some(tip) = effective_tip(next, self.base_fee)
        {
            self.heap.push((tip, Reverse(next.hash), sender, nonce + 1));
        }
        Some(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::recover_tx_sender;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
    use alloy_primitives::{Bytes, KECCAK256_EMPTY, TxKind};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    const GWEI: u128 = 1_000_000_000;

    fn signer(seed: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::with_last_byte(seed + 1)).unwrap()
    }

    fn tx_with(
        key: &PrivateKeySigner,
        nonce: u64,
        fee: u128,
        f: impl FnOnce(&mut TxEip1559),
    ) -> RecoveredTx {
        let mut tx = TxEip1559 {
            chain_id: ChainSpec::dev().chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: fee.min(GWEI),
            to: TxKind::Call(Address::with_last_byte(0xee)),
            value: U256::from(1),
            ..Default::default()
        };
        f(&mut tx);
        let signature = key.sign_hash_sync(&tx.signature_hash()).unwrap();
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        let sender = recover_tx_sender(&envelope).unwrap();
        assert_eq!(sender, key.address());
        RecoveredTx::new_unchecked(envelope, sender)
    }

    fn tx(key: &PrivateKeySigner, nonce: u64, fee: u128) -> RecoveredTx {
        tx_with(key, nonce, fee, |_| {})
    }

    fn rich() -> Account {
        Account {
            nonce: 0,
            balance: U256::from(10).pow(U256::from(21)),
            code_hash: KECCAK256_EMPTY,
        }
    }

    fn pool() -> Mempool {
        Mempool::new(ChainSpec::dev(), PoolLimits::default())
    }

    /// Inserting `tx` fails with `expected` and leaves the pool as it was.
    fn refused(
        pool: &mut Mempool,
        tx: RecoveredTx,
        account: Account,
        expected: fn(&PoolError) -> bool,
    ) {
        let (len, bytes, counts) = (pool.len(), pool.bytes(), pool.counts());
        let err = pool.insert(tx, account).unwrap_err();
        assert!(expected(&err), "unexpected error: {err}");
        assert_eq!(
            (pool.len(), pool.bytes(), pool.counts()),
            (len, bytes, counts)
        );
    }

    #[test]
    fn pending_and_queued_by_nonce() {
        let mut pool = pool();
        let key = signer(1);
        pool.insert(tx(&key, 0, 2 * GWEI), rich()).unwrap();
        pool.insert(tx(&key, 1, 2 * GWEI), rich()).unwrap();
        pool.insert(tx(&key, 3, 2 * GWEI), rich()).unwrap();
        assert_eq!(pool.counts(), (2, 1));
        assert_eq!(pool.pending_nonce(&key.address(), 0), 2);
        pool.insert(tx(&key, 2, 2 * GWEI), rich()).unwrap();
        assert_eq!(pool.counts(), (4, 0));
        assert_eq!(pool.pending_nonce(&key.address(), 0), 4);
        pool.on_new_nonces([(key.address(), 3)]);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.counts(), (1, 0));
    }

    #[test]
    fn every_rejection_has_its_error_and_changes_nothing() {
        let mut pool = pool();
        let key = signer(2);
        pool.insert(tx(&key, 5, 2 * GWEI), rich()).unwrap();
        let account = Account { nonce: 5, ..rich() };

        refused(
            &mut pool,
            tx_with(&key, 6, 2 * GWEI, |t| t.chain_id = 1),
            account,
            |e| {
                matches!(
                    e,
                    PoolError::WrongChainId {
                        expected: 1337,
                        got: 1
                    }
                )
            },
        );
        refused(&mut pool, tx(&key, 4, 2 * GWEI), account, |e| {
            matches!(e, PoolError::NonceTooLow { state: 5, tx: 4 })
        });
        let poor = Account {
            nonce: 5,
            balance: U256::from(1000),
            code_hash: KECCAK256_EMPTY,
        };
        refused(&mut pool, tx(&key, 6, 2 * GWEI), poor, |e| {
            matches!(e, PoolError::InsufficientFunds { .. })
        });
        refused(
            &mut pool,
            tx_with(&key, 6, 2 * GWEI, |t| t.gas_limit = 20_999),
            account,
            |e| {
                matches!(
                    e,
                    PoolError::IntrinsicGasTooLow {
                        intrinsic: 21_000,
                        ..
                    }
                )
            },
        );
        refused(
            &mut pool,
            tx_with(&key, 6, 2 * GWEI, |t| t.gas_limit = 2_000_000_000),
            account,
            |e| matches!(e, PoolError::GasLimitExceeded { .. }),
        );
        refused(
            &mut pool,
            tx_with(&key, 6, 2 * GWEI, |t| {
                t.gas_limit = 10_000_000;
                t.input = Bytes::from(vec![1u8; TX_ENCODED_LEN_MAX]);
            }),
            account,
            |e| matches!(e, PoolError::Oversized { .. }),
        );
        refused(&mut pool, tx(&key, 6, GWEI - 1), account, |e| {
            matches!(e, PoolError::FeeTooLow { .. })
        });
        refused(&mut pool, tx(&key, 5, 2 * GWEI), account, |e| {
            matches!(e, PoolError::AlreadyKnown)
        });
        refused(
            &mut pool,
            tx_with(&key, 5, 2 * GWEI, |t| t.value = U256::from(2)),
            account,
            |e| matches!(e, PoolError::ReplacementUnderpriced),
        );
        refused(
            &mut pool,
            tx_with(&key, 6, 2 * GWEI, |t| t.max_priority_fee_per_gas = 3 * GWEI),
            account,
            |e| matches!(e, PoolError::TipAboveFeeCap),
        );
        // Legacy transactions are accepted; a 10% bump replaces.
        let legacy = {
            let t = TxLegacy {
                chain_id: Some(1337),
                nonce: 6,
                gas_price: 2 * GWEI,
                gas_limit: 21_000,
                to: TxKind::Call(Address::ZERO),
                ..Default::default()
            };
            let sig = key.sign_hash_sync(&t.signature_hash()).unwrap();
            RecoveredTx::new_unchecked(TxEnvelope::from(t.into_signed(sig)), key.address())
        };
        pool.insert(legacy, account).unwrap();
        let replaced = pool
            .insert(
                tx_with(&key, 5, 2 * GWEI + GWEI / 5, |t| {
                    t.max_priority_fee_per_gas = GWEI + GWEI / 10
                }),
                account,
            )
            .unwrap();
        assert!(replaced.replaced.is_some());
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn full_pool_evicts_the_cheapest_or_refuses() {
        let limits = PoolLimits {
            txs_max: 3,
            txs_per_sender_max: 2,
            bytes_max: 1 << 20,
        };
        let mut pool = Mempool::new(ChainSpec::dev(), limits);
        for (i, fee) in [3, 2, 4].into_iter().enumerate() {
            pool.insert(tx(&signer(10 + i as u8), 0, fee * GWEI), rich())
                .unwrap();
        }
        // Cheaper than everything pooled: refused.
        refused(&mut pool, tx(&signer(20), 0, 2 * GWEI), rich(), |e| {
            matches!(e, PoolError::PoolFull)
        });
        // Pays more than the cheapest: evicts it.
        let inserted = pool.insert(tx(&signer(21), 0, 5 * GWEI), rich()).unwrap();
        assert_eq!(inserted.evicted.len(), 1);
        assert!(pool.get(&inserted.evicted[0]).is_none());
        assert_eq!(pool.len(), 3);
        // Per-sender bound.
        let key = signer(21);
        let mut roomy = Mempool::new(
            ChainSpec::dev(),
            PoolLimits {
                txs_per_sender_max: 2,
                ..PoolLimits::default()
            },
        );
        roomy.insert(tx(&key, 0, 5 * GWEI), rich()).unwrap();
        roomy.insert(tx(&key, 1, 5 * GWEI), rich()).unwrap();
        refused(&mut roomy, tx(&key, 2, 5 * GWEI), rich(), |e| {
            matches!(e, PoolError::SenderFull(2))
        });
    }

    #[test]
    fn best_orders_by_tip_then_nonce() {
        let mut pool = pool();
        let (a, b) = (signer(30), signer(31));
        pool.insert(
            tx_with(&a, 0, 10 * GWEI, |t| t.max_priority_fee_per_gas = GWEI),
            rich(),
        )
        .unwrap();
        pool.insert(
            tx_with(&a, 1, 10 * GWEI, |t| t.max_priority_fee_per_gas = 5 * GWEI),
            rich(),
        )
        .unwrap();
        pool.insert(
            tx_with(&b, 0, 10 * GWEI, |t| t.max_priority_fee_per_gas = 3 * GWEI),
            rich(),
        )
        .unwrap();
        // A fee cap below the base fee is not includable.
        pool.insert(
            tx_with(&signer(32), 0, 2 * GWEI, |t| {
                t.max_priority_fee_per_gas = GWEI
            }),
            rich(),
        )
        .unwrap();
        let order: Vec<(Address, u64)> = pool
            .best(3 * GWEI as u64)
            .map(|t| (t.sender, t.envelope.nonce()))
            .collect();
        assert_eq!(
            order,
            vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]
        );
    }
}
