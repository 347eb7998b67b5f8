//! Block building: pending transactions from the pool, executed in order, sealed into a header
//! with Ethereum's roots.

use crate::{
    chain::{mempool::Mempool, spec::ChainSpec},
    exec::{
        BlockEnv, BlockOutcome, ExecError, ExecMode, ParallelExecutor, SequentialBlock,
        StateChanges, StateReader, TxInvalid,
    },
    merkle::{
        state_root::{StateRootUpdate, update_state_root},
        trie::{TrieError, TrieReader},
    },
    primitives::{RecoveredTx, StoredReceipt, block_logs_bloom, receipts_root},
    root::contracts::SYSTEM_ADDRESS,
};
use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH, Header, proofs};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use revm::{context::result::InvalidTransaction, primitives::hardfork::SpecId};
use std::{collections::HashSet, sync::Arc};

/// Most transactions one block takes from the pool.
pub const BLOCK_TXS_MAX: usize = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Trie(#[from] TrieError),
    #[error(
        "the system call to {to} reverted: {}",
        crate::root::revert_reason(output)
    )]
    SystemCall { to: Address, output: Bytes },
}

/// A call the system address makes at the start of a block, outside any transaction (Bor's
/// `commitSpan` and `commitState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCall {
    pub to: Address,
    pub input: Bytes,
}

/// Sets the header fields that each hardfork adds (Ethereum's header layout for `spec`).
pub fn set_fork_fields(spec: &ChainSpec, header: &mut Header, base_fee: u64) {
    let id = spec.spec_id;
    if id.is_enabled_in(SpecId::LONDON) {
        header.base_fee_per_gas = Some(base_fee);
    }
    if id.is_enabled_in(SpecId::SHANGHAI) {
        header.withdrawals_root = Some(EMPTY_ROOT_HASH);
    }
    if id.is_enabled_in(SpecId::CANCUN) {
        header.blob_gas_used = Some(0);
        header.excess_blob_gas = Some(0);
        header.parent_beacon_block_root = Some(B256::ZERO);
    }
    if id.is_enabled_in(SpecId::PRAGUE) {
        header.requests_hash = Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH);
    }
    if !id.is_enabled_in(SpecId::MERGE) {
        header.difficulty = U256::from(1);
    }
}

/// What the producer decides about the next block, beyond the pool's content.
#[derive(Debug, Clone)]
pub struct BlockTemplate {
    pub parent: Header,
    pub parent_hash: B256,
    pub timestamp: u64,
    /// The header's coinbase (zero under Bor).
    pub beneficiary: Address,
    /// Who the EVM pays fees to: the beneficiary, or under Bor the block's signer.
    pub fee_recipient: Address,
    pub extra_data: Bytes,
    /// The header's difficulty under Bor (`n - succession`); `None`: the fork's default.
    pub difficulty: Option<U256>,
    /// Run before the transactions, in order; a block with any executes sequentially.
    pub system_calls: Vec<SystemCall>,
}

impl BlockTemplate {
    /// A template whose fees go to `beneficiary`, with no Bor fields.
    pub fn plain(
        parent: Header,
        parent_hash: B256,
        timestamp: u64,
        beneficiary: Address,
        extra_data: Bytes,
    ) -> Self {
        Self {
            parent,
            parent_hash,
            timestamp,
            beneficiary,
            fee_recipient: beneficiary,
            extra_data,
            difficulty: None,
            system_calls: Vec::new(),
        }
    }
}

/// A block ready to be committed.
#[derive(Debug)]
pub struct BuiltBlock {
    pub header: Header,
    pub hash: B256,
    pub txs: Vec<RecoveredTx>,
    pub receipts: Vec<StoredReceipt>,
    pub changes: StateChanges,
    pub root_update: StateRootUpdate,
    /// Pool transactions found invalid while building, with the reason: drop them.
    pub rejected: Vec<(B256, InvalidTransaction)>,
}

/// The execution environment of the block a template describes.
pub fn block_env(spec: &ChainSpec, template: &BlockTemplate) -> (BlockEnv, u64) {
    let p = &template.parent;
    let base_fee = spec.next_base_fee(
        p.gas_used,
        p.gas_limit,
        p.base_fee_per_gas.unwrap_or_default(),
    );
    let number = p.number + 1;
    let env = BlockEnv {
        number,
        timestamp: template.timestamp,
        fee_recipient: template.fee_recipient,
        gas_limit: spec.gas_limit,
        base_fee,
        difficulty: if spec.spec_id.is_enabled_in(SpecId::MERGE) {
            U256::ZERO
        } else {
            template.difficulty.unwrap_or(U256::from(1))
        },
        // Bor headers carry a zero mix digest, which is what PREVRANDAO reads there.
        prevrandao: if spec.bor.is_some() {
            B256::ZERO
        } else {
            keccak256([template.parent_hash.as_slice(), &number.to_be_bytes()].concat())
        },
        excess_blob_gas: 0,
    };
    (env, base_fee)
}

/// Candidate transactions in block order.
pub trait TxSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>>;
    /// Yields no more transactions of `sender` (one of them failed).
    fn skip_sender(&mut self, sender: &Address);
}

/// Candidates taken from the pool up front, so that the pool is not locked while a block
/// executes.
pub struct TxSnapshot {
    txs: std::vec::IntoIter<Arc<RecoveredTx>>,
    skipped: HashSet<Address>,
}

impl TxSnapshot {
    /// The first `len_max` transactions of `pool` in block order at `base_fee`.
    pub fn take(pool: &Mempool, base_fee: u64, len_max: usize) -> Self {
        let txs: Vec<_> = pool.best(base_fee).take(len_max).collect();
        Self {
            txs: txs.into_iter(),
            skipped: HashSet::new(),
        }
    }
}

impl TxSource for TxSnapshot {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.txs
            .by_ref()
            .find(|tx| !self.skipped.contains(&tx.sender))
    }
    fn skip_sender(&mut self, sender: &Address) {
        self.skipped.insert(*sender);
    }
}

type Executed = (
    Vec<RecoveredTx>,
    Vec<(B256, InvalidTransaction)>,
    BlockOutcome,
);

fn execute_sequentially<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    env: BlockEnv,
    system_calls: &[SystemCall],
    best: &mut dyn TxSource,
) -> Result<Executed, BuildError> {
    let mut block = SequentialBlock::new(spec, state, env);
    for call in system_calls {
        let outcome = block.system_call(SYSTEM_ADDRESS, call.to, call.input.clone())?;
        if !outcome.success {
            return Err(BuildError::SystemCall {
                to: call.to,
                output: outcome.output,
            });
        }
    }
    let mut txs = Vec::new();
    let mut rejected = Vec::new();
    while txs.len() < BLOCK_TXS_MAX {
        if block.gas_left() < 21_000 {
            break;
        }
        let Some(tx) = best.next_tx() else { break };
        match block.execute(&tx) {
            Ok(_) => txs.push((*tx).clone()),
            Err(ExecError::Invalid(TxInvalid::BlockFull { .. })) => best.skip_sender(&tx.sender),
            Err(ExecError::Invalid(TxInvalid::Rejected { hash, reason })) => {
                best.skip_sender(&tx.sender);
                rejected.push((hash, reason));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((txs, rejected, block.finish()))
}

/// Builds the next block from `candidates` over `state` (the parent's state), executing with
/// `exec`. In parallel the candidates are executed together and the block ends at the first
/// that does not fit; sequentially a candidate that does not fit is passed over.
pub fn build_block<S: StateReader + TrieReader>(
    spec: &ChainSpec,
    state: &S,
    candidates: &mut dyn TxSource,
    template: &BlockTemplate,
    exec: ExecMode,
) -> Result<BuiltBlock, BuildError> {
    let (env, base_fee) = block_env(spec, template);
    let sequential = exec == ExecMode::Sequential || !template.system_calls.is_empty();
    let (txs, rejected, outcome) = match sequential {
        true => execute_sequentially(spec, state, env, &template.system_calls, candidates)?,
        false => {
            let mut pending = Vec::new();
            while pending.len() < BLOCK_TXS_MAX
                && let Some(tx) = candidates.next_tx()
            {
                pending.push(tx);
            }
            let refs: Vec<&RecoveredTx> = pending.iter().map(|tx| &**tx).collect();
            let produced = ParallelExecutor {
                spec: spec.clone(),
                workers: 0,
            }
            .produce(state, &env, &refs)?;
            let txs = produced
                .included
                .iter()
                .map(|&i| (*pending[i]).clone())
                .collect();
            (txs, produced.rejected, produced.outcome)
        }
    };
    let root_update = update_state_root(state, &outcome.changes)?;
    let envelopes: Vec<_> = txs.iter().map(|t| t.envelope.clone()).collect();
    let mut header = Header {
        parent_hash: template.parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: template.beneficiary,
        state_root: root_update.root,
        transactions_root: proofs::calculate_transaction_root(&envelopes),
        receipts_root: receipts_root(&outcome.receipts),
        logs_bloom: block_logs_bloom(&outcome.receipts),
        number: env.number,
        gas_limit: env.gas_limit,
        gas_used: outcome.gas_used,
        timestamp: env.timestamp,
        extra_data: template.extra_data.clone(),
        mix_hash: if spec.spec_id.is_enabled_in(SpecId::MERGE) {
            env.prevrandao
        } else {
            B256::ZERO
        },
        ..Default::default()
    };
    set_fork_fields(spec, &mut header, base_fee);
    if let Some(difficulty) = template.difficulty {
        header.difficulty = difficulty;
    }
    let hash = header.hash_slow();
    Ok(BuiltBlock {
        header,
        hash,
        txs,
        receipts: outcome.receipts,
        changes: outcome.changes,
        root_update,
        rejected,
    })
}
