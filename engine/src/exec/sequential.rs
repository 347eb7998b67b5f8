//! The sequential executor: one revm instance runs a block's transactions in order.

use super::{
    BlockEnv, BlockExecutor, BlockOutcome, ExecError, StateError, StateReader, TxInvalid,
    bttc_logs::{LOG_FEE_TRANSFER_TOPIC, TransferLogger, transfer_log},
    overlay::Overlay,
};
use crate::{
    chain::spec::{ChainSpec, FeeRules},
    primitives::{RecoveredTx, StoredReceipt},
};
use alloy_consensus::{Eip658Value, Receipt, Transaction};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, B256, Bytes, Log, TxKind, U256};
use revm::{
    Context, ExecuteEvm, InspectEvm, MainBuilder, MainContext,
    context::{
        BlockEnv as RevmBlockEnv, TxEnv,
        result::{EVMError, ExecutionResult},
    },
    context_interface::block::BlobExcessGasAndPrice,
    handler::MainnetContext,
    primitives::hardfork::SpecId,
};

type Evm<'a, S> = revm::MainnetEvm<MainnetContext<Overlay<'a, S>>, TransferLogger>;

pub(crate) fn revm_block_env(spec_id: SpecId, env: &BlockEnv) -> RevmBlockEnv {
    RevmBlockEnv {
        number: U256::from(env.number),
        timestamp: U256::from(env.timestamp),
        beneficiary: env.fee_recipient,
        gas_limit: env.gas_limit,
        basefee: env.base_fee,
        difficulty: env.difficulty,
        prevrandao: Some(env.prevrandao),
        blob_excess_gas_and_price: spec_id
            .is_enabled_in(SpecId::CANCUN)
            .then(|| BlobExcessGasAndPrice::new_with_spec(env.excess_blob_gas, spec_id)),
        ..Default::default()
    }
}

pub(crate) fn build_evm<DB: revm::Database>(
    spec: &ChainSpec,
    db: DB,
    block: RevmBlockEnv,
    for_call: bool,
) -> revm::MainnetEvm<MainnetContext<DB>, TransferLogger> {
    Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| {
            cfg.set_spec_and_mainnet_gas_params(spec.spec_id);
            cfg.chain_id = spec.chain_id;
            cfg.tx_chain_id_check = true;
            if for_call {
                cfg.disable_nonce_check = true;
                // As geth: a call may come from an address holding code (EIP-3607 guards
                // transactions, which such an address cannot sign).
                cfg.disable_eip3607 = true;
                cfg.tx_gas_limit_cap = Some(u64::MAX);
            }
        })
        .with_block(block)
        .build_mainnet_with_inspector(TransferLogger::default())
}

fn overlay_evm<'a, S: StateReader>(
    spec: &ChainSpec,
    state: &'a S,
    block: RevmBlockEnv,
    for_call: bool,
) -> Evm<'a, S> {
    let clear_empty = spec.spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    build_evm(spec, Overlay::new(state, clear_empty), block, for_call)
}

/// The revm transaction environment of a recovered transaction.
pub fn tx_env(tx: &RecoveredTx) -> TxEnv {
    let env = &tx.envelope;
    TxEnv {
        tx_type: env.ty(),
        caller: tx.sender,
        gas_limit: env.gas_limit(),
        gas_price: env.max_fee_per_gas(),
        kind: env.kind(),
        value: env.value(),
        data: env.input().clone(),
        nonce: env.nonce(),
        chain_id: env.chain_id(),
        access_list: env.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: env.max_priority_fee_per_gas(),
        blob_hashes: env
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: env.max_fee_per_blob_gas().unwrap_or_default(),
        ..Default::default()
    }
}

pub(crate) fn map_evm_error(hash: B256, e: EVMError<StateError>) -> ExecError {
    match e {
        EVMError::Transaction(reason) => ExecError::Invalid(TxInvalid::Rejected { hash, reason }),
        EVMError::Database(e) => ExecError::State(e),
        EVMError::Header(e) => ExecError::Header(e),
        other => ExecError::Evm(other.to_string()),
    }
}

/// What one executed transaction did, beyond its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    pub success: bool,
    pub gas_used: u64,
    pub output: Bytes,
}

/// A block's results so far, apart from any EVM (which cannot move between threads): the
/// changes over the parent state, the receipts and the gas used.
pub(crate) struct BlockParts<'a, S> {
    pub(crate) overlay: Overlay<'a, S>,
    fee_rules: FeeRules,
    env: BlockEnv,
    receipts: Vec<StoredReceipt>,
    gas_used: u64,
}

impl<'a, S: StateReader> BlockParts<'a, S> {
    pub(crate) fn new(spec: &ChainSpec, state: &'a S, env: BlockEnv) -> Self {
        let clear_empty = spec.spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        Self {
            overlay: Overlay::new(state, clear_empty),
            fee_rules: spec.fee_rules,
            env,
            receipts: Vec::new(),
            gas_used: 0,
        }
    }

    pub(crate) fn gas_left(&self) -> u64 {
        self.env.gas_limit - self.gas_used
    }

    /// Whether receipts carry BTTC's fee logs (which need the balances before each
    /// transaction).
    pub(crate) fn fee_logs(&self) -> bool {
        self.fee_rules == FeeRules::Bttc
    }

    /// Fails with [`TxInvalid::BlockFull`] when `tx`'s gas limit exceeds the gas left.
    pub(crate) fn check_fits(&self, tx: &RecoveredTx) -> Result<(), ExecError> {
        let gas_limit = tx.envelope.gas_limit();
        if gas_limit > self.gas_left() {
            return Err(TxInvalid::BlockFull {
                hash: tx.hash,
                gas_limit,
                gas_left: self.gas_left(),
            }
            .into());
        }
        Ok(())
    }

    /// Balances of the sender and the fee recipient before `tx`, for BTTC's fee log.
    fn balances_before(
        &self,
        overlay: &Overlay<'a, S>,
        tx: &RecoveredTx,
    ) -> Result<Option<(U256, U256)>, ExecError> {
        if self.fee_rules != FeeRules::Bttc {
            return Ok(None);
        }
        Ok(Some((
            overlay.balance(&tx.sender)?,
            overlay.balance(&self.env.fee_recipient)?,
        )))
    }

    /// Books an executed transaction: gas, its receipt, and BTTC's fee log from the sender's
    /// and the fee recipient's balances before it.
    pub(crate) fn record(
        &mut self,
        tx: &RecoveredTx,
        result: ExecutionResult,
        balances_before: Option<(U256, U256)>,
    ) -> TxOutcome {
        let gas_used = result.tx_gas_used();
        self.gas_used += gas_used;
        let success = result.is_success();
        let (output, mut logs) = match result {
            ExecutionResult::Success { output, logs, .. } => (output.into_data(), logs),
            ExecutionResult::Revert { output, .. } => (output, Vec::new()),
            ExecutionResult::Halt { .. } => (Bytes::new(), Vec::new()),
        };
        if let Some((sender_before, recipient_before)) = balances_before {
            let price = tx.envelope.effective_gas_price(Some(self.env.base_fee));
            let fee = U256::from(gas_used) * U256::from(price - u128::from(self.env.base_fee));
            if !fee.is_zero() {
                logs.push(transfer_log(
                    LOG_FEE_TRANSFER_TOPIC,
                    tx.sender,
                    self.env.fee_recipient,
                    [
                        fee,
                        sender_before,
                        recipient_before,
                        sender_before.saturating_sub(fee),
                        recipient_before.saturating_add(fee),
                    ],
                ));
            }
        }
        self.receipts.push(StoredReceipt {
            tx_type: tx.envelope.ty(),
            receipt: Receipt {
                status: Eip658Value::Eip658(success),
                cumulative_gas_used: self.gas_used,
                logs,
            },
        });
        TxOutcome {
            success,
            gas_used,
            output,
        }
    }

    pub(crate) fn finish(self) -> BlockOutcome {
        BlockOutcome {
            receipts: self.receipts,
            gas_used: self.gas_used,
            changes: self.overlay.changes,
        }
    }
}

/// A block being executed transaction by transaction (used by the block producer, which may
/// skip transactions that turn out invalid, and by block import).
pub struct SequentialBlock<'a, S: StateReader> {
    evm: Evm<'a, S>,
    /// Everything but the overlay, which the EVM holds as its database.
    parts: BlockParts<'a, S>,
}

impl<'a, S: StateReader> SequentialBlock<'a, S> {
    pub fn new(spec: &ChainSpec, state: &'a S, env: BlockEnv) -> Self {
        Self::from_parts(spec, BlockParts::new(spec, state, env))
    }

    /// Continues the block `parts` holds.
    pub(crate) fn from_parts(spec: &ChainSpec, mut parts: BlockParts<'a, S>) -> Self {
        let clear_empty = spec.spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        let parent = parts.overlay.parent();
        let overlay = std::mem::replace(&mut parts.overlay, Overlay::new(parent, clear_empty));
        let evm = build_evm(
            spec,
            overlay,
            revm_block_env(spec.spec_id, &parts.env),
            false,
        );
        Self { evm, parts }
    }

    /// The block so far, without its EVM.
    pub(crate) fn into_parts(self) -> BlockParts<'a, S> {
        let mut parts = self.parts;
        parts.overlay = self.evm.ctx.journaled_state.database;
        parts
    }

    pub fn gas_used(&self) -> u64 {
        self.parts.gas_used
    }

    pub fn gas_left(&self) -> u64 {
        self.parts.gas_left()
    }

    /// Fails with [`TxInvalid::BlockFull`] when `tx`'s gas limit exceeds the gas left.
    pub fn check_fits(&self, tx: &RecoveredTx) -> Result<(), ExecError> {
        self.parts.check_fits(tx)
    }

    /// Executes `tx` on top of the block so far. An invalid transaction changes nothing.
    pub fn execute(&mut self, tx: &RecoveredTx) -> Result<TxOutcome, ExecError> {
        self.parts.check_fits(tx)?;
        let balances_before = self
            .parts
            .balances_before(&self.evm.ctx.journaled_state.database, tx)?;
        self.evm.inspector = TransferLogger::default();
        let result = if balances_before.is_some() {
            self.evm.inspect_tx(tx_env(tx))
        } else {
            self.evm.transact(tx_env(tx))
        }
        .map_err(|e| map_evm_error(tx.hash, e))?;
        self.evm.ctx.journaled_state.database.apply(result.state);
        Ok(self.parts.record(tx, result.result, balances_before))
    }

    /// A system call (Bor's `commitState` and `commitSpan`): `caller` calls `to` with `input`
    /// outside any transaction: no gas is charged, no nonce used, no receipt made. Its state
    /// changes join the block's; its logs are returned and belong to no receipt.
    pub fn system_call(
        &mut self,
        caller: Address,
        to: Address,
        input: Bytes,
    ) -> Result<SystemCallOutcome, ExecError> {
        use revm::handler::SystemCallEvm;
        let result = self
            .evm
            .system_call_with_caller(caller, to, input)
            .map_err(|e| map_evm_error(B256::ZERO, e))?;
        self.evm.ctx.journaled_state.database.apply(result.state);
        let result = result.result;
        Ok(SystemCallOutcome {
            success: result.is_success(),
            gas_used: result.tx_gas_used(),
            logs: result.logs().to_vec(),
            output: match result {
                ExecutionResult::Success { output, .. } => output.into_data(),
                ExecutionResult::Revert { output, .. } => output,
                ExecutionResult::Halt { .. } => Bytes::new(),
            },
        })
    }

    pub fn finish(self) -> BlockOutcome {
        self.into_parts().finish()
    }
}

/// Runs a block's transactions one after another on one revm instance.
#[derive(Debug, Clone)]
pub struct SequentialExecutor {
    pub spec: ChainSpec,
}

impl BlockExecutor for SequentialExecutor {
    fn execute_block<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecError> {
        let mut block = SequentialBlock::new(&self.spec, state, *env);
        for tx in txs {
            block.execute(tx)?;
        }
        Ok(block.finish())
    }
}

/// What a system call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCallOutcome {
    pub success: bool,
    pub gas_used: u64,
    /// Return data, or revert data.
    pub output: Bytes,
    pub logs: Vec<Log>,
}

/// A read-only call (`eth_call`, `eth_estimateGas`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<u64>,
    pub gas_price: Option<u128>,
    pub value: U256,
    pub input: Bytes,
    /// EIP-2930 access list the call carries (its gas counts).
    pub access_list: alloy_eips::eip2930::AccessList,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    pub success: bool,
    /// True when the call ended with `REVERT` (its output is the revert data).
    pub reverted: bool,
    pub gas_used: u64,
    pub output: Bytes,
    /// Why the call halted (out of gas, invalid opcode, ...), when it did.
    pub halt: Option<String>,
}

/// Runs `request` on top of `state` in the block described by `env`, committing nothing.
pub fn call<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    env: &BlockEnv,
    request: &CallRequest,
) -> Result<CallOutcome, ExecError> {
    call_with(spec, state, env, request, None).map(|(outcome, _)| outcome)
}

/// geth's `eth_createAccessList`: the call's accesses, run again with them as its access list
/// until the list stops changing; returns the list and the outcome of the last run.
pub fn create_access_list<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    env: &BlockEnv,
    request: &CallRequest,
) -> Result<(alloy_eips::eip2930::AccessList, CallOutcome), ExecError> {
    /// Each round can only add entries; a call still growing its list after this many rounds
    /// is answered with the list so far.
    const ROUNDS_MAX: usize = 16;
    let mut excluded: std::collections::BTreeSet<Address> = revm::precompile::Precompiles::new(
        revm::precompile::PrecompileSpecId::from_spec_id(spec.spec_id),
    )
    .addresses()
    .copied()
    .collect();
    let from = request.from.unwrap_or_default();
    excluded.insert(from);
    match request.to {
        Some(to) => {
            excluded.insert(to);
        }
        // As geth: the contract a creation makes is not listed either.
        None => {
            let nonce = state
                .account(&from)
                .map_err(ExecError::State)?
                .map_or(0, |a| a.nonce);
            excluded.insert(from.create(nonce));
        }
    }
    let mut request = request.clone();
    let mut list = request.access_list.clone();
    for _ in 0..ROUNDS_MAX {
        request.access_list = list.clone();
        // Entries carry over between rounds (the caller's too, as geth keeps them), so the
        // list only grows and the loop ends.
        let recorder = crate::exec::bttc_logs::AccessRecorder {
            excluded: excluded.clone(),
            touched: list
                .0
                .iter()
                .map(|item| (item.address, item.storage_keys.iter().copied().collect()))
                .collect(),
        };
        let (outcome, recorder) = call_with(spec, state, env, &request, Some(recorder))?;
        let touched = recorder.expect("recorder returned").touched;
        let next = alloy_eips::eip2930::AccessList(
            touched
                .into_iter()
                .map(|(address, slots)| alloy_eips::eip2930::AccessListItem {
                    address,
                    storage_keys: slots.into_iter().collect(),
                })
                .collect(),
        );
        if next == list {
            return Ok((list, outcome));
        }
        list = next;
    }
    request.access_list = list.clone();
    let outcome = call(spec, state, env, &request)?;
    Ok((list, outcome))
}

fn call_with<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    env: &BlockEnv,
    request: &CallRequest,
    accesses: Option<crate::exec::bttc_logs::AccessRecorder>,
) -> Result<(CallOutcome, Option<crate::exec::bttc_logs::AccessRecorder>), ExecError> {
    let mut block = revm_block_env(spec.spec_id, env);
    let gas_price = request.gas_price.unwrap_or(0);
    if gas_price == 0 {
        // As geth: a call without a price runs without a base fee.
        block.basefee = 0;
    }
    let mut evm = overlay_evm(spec, state, block, true);
    let tx = TxEnv {
        // An access list needs an EIP-2930 transaction for revm to charge and warm it.
        tx_type: if request.access_list.is_empty() || !spec.spec_id.is_enabled_in(SpecId::BERLIN) {
            0
        } else {
            1
        },
        caller: request.from.unwrap_or_default(),
        gas_limit: request.gas.unwrap_or(env.gas_limit).min(env.gas_limit),
        gas_price,
        kind: request.to.map_or(TxKind::Create, TxKind::Call),
        value: request.value,
        data: request.input.clone(),
        nonce: 0,
        chain_id: Some(spec.chain_id),
        // Access lists exist from Berlin on; before, a call carries none.
        access_list: if spec.spec_id.is_enabled_in(SpecId::BERLIN) {
            request.access_list.clone()
        } else {
            Default::default()
        },
        ..Default::default()
    };
    let tracing = accesses.is_some();
    let result = if tracing {
        evm.inspector.accesses = accesses;
        evm.inspect_tx(tx)
    } else {
        evm.transact(tx)
    }
    .map_err(|e| map_evm_error(B256::ZERO, e))?
    .result;
    let accesses = evm.inspector.accesses.take();
    let gas_used = result.tx_gas_used();
    let outcome = match result {
        ExecutionResult::Success { output, .. } => CallOutcome {
            success: true,
            reverted: false,
            gas_used,
            output: output.into_data(),
            halt: None,
        },
        ExecutionResult::Revert { output, .. } => CallOutcome {
            success: false,
            reverted: true,
            gas_used,
            output,
            halt: None,
        },
        ExecutionResult::Halt { reason, .. } => CallOutcome {
            success: false,
            reverted: false,
            gas_used,
            output: Bytes::new(),
            halt: Some(format!("{reason:?}")),
        },
    };
    Ok((outcome, accesses))
}

/// The smallest gas limit with which `request` succeeds (binary search, as geth), or the
/// failing outcome at the block gas limit.
pub fn estimate_gas<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    env: &BlockEnv,
    request: &CallRequest,
) -> Result<Result<u64, CallOutcome>, ExecError> {
    let cap = request.gas.unwrap_or(env.gas_limit).min(env.gas_limit);
    let mut probe = request.clone();
    probe.gas = Some(cap);
    let first = call(spec, state, env, &probe)?;
    if !first.success {
        return Ok(Err(first));
    }
    // The gas used is a lower bound; refunds and the 63/64 rule can make more necessary.
    let mut low = first.gas_used.saturating_sub(1);
    let mut high = cap;
    let optimistic = (first.gas_used + 2300) * 64 / 63;
    if optimistic < high {
        probe.gas = Some(optimistic);
        if call(spec, state, env, &probe)?.success {
            high = optimistic;
        } else {
            low = optimistic;
        }
    }
    while low + 1 < high {
        let mid = low + (high - low) / 2;
        probe.gas = Some(mid);
        match call(spec, state, env, &probe) {
            Ok(outcome) if outcome.success => high = mid,
            Ok(_) | Err(ExecError::Invalid(_)) => low = mid,
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(high))
}
