//! The parallel executor: Block-STM over revm. Transactions execute optimistically on worker
//! threads against a multi-version memory, are validated by re-reading what they read, are
//! executed again when a lower transaction changed it, and are committed in order into the
//! same block accumulator the sequential executor uses, so receipts, gas, logs and state
//! changes are those of sequential execution by construction.

mod handler;
mod memory;
mod scheduler;
mod view;

use super::{
    AccountChange, BlockEnv, BlockExecutor, BlockOutcome, ExecError, SequentialBlock, StateError,
    StateReader, TxInvalid,
    bttc_logs::TransferLogger,
    sequential::{BlockParts, build_evm, revm_block_env, tx_env},
};
use crate::{
    chain::spec::{ChainSpec, FeeRules},
    primitives::{Account, RecoveredTx},
};
use alloy_primitives::{Address, B256, U256, map::HashMap};
use handler::DeferredFee;
use memory::{AccountEntry, CoinbaseCell, Incarnation, Location, MvMemory, TxIdx, Value};
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use revm::{
    ExecuteEvm, MainnetEvm,
    bytecode::Bytecode,
    context::result::{EVMError, ExecutionResult, InvalidTransaction},
    handler::{Handler, MainnetContext},
    inspector::InspectorHandler,
    primitives::hardfork::SpecId,
    state::EvmState,
};
use scheduler::{Scheduler, Status, Task};
use std::{
    collections::HashSet,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};
use view::{ReadEntry, Shared, StorageRule, TxView, ViewError, reads_valid};

/// Blocks with fewer transactions run sequentially: starting workers costs more than it saves.
pub const PARALLEL_TXS_MIN: usize = 8;
/// Blocks whose transactions may use less gas than this in all run sequentially: too little
/// work to share (the mainnet data set's blocks below it ran slower in parallel).
pub const PARALLEL_GAS_MIN: u64 = 1_000_000;
/// A block whose longest chain of one sender's transactions is more than this share of the
/// block runs sequentially: the chain's nonces order it.
const SENDER_CHAIN_SHARE_MAX: f64 = 0.6;
/// Executions counted before the abort rate is judged.
const FALLBACK_SAMPLE: u32 = 64;
/// When more than one execution in this many was wasted (aborted), the rest of the block runs
/// sequentially: on two cores parallel execution no longer pays for its bookkeeping.
const FALLBACK_ABORT_RATIO: u32 = 3;
/// How far execution may run ahead of the commit point when building a block, which may end
/// before its last candidate: bounds the work lost. Importing, execution runs ahead freely: a
/// window there left workers idle whenever committing fell behind.
const PRODUCE_WINDOW: TxIdx = 2048;
/// Commits between checkpoints of the fee recipient's account.
const COINBASE_CHECKPOINT_EVERY: TxIdx = 256;

/// Executes a block's transactions in parallel (Block-STM) with exactly the outcome of
/// [`super::SequentialExecutor`].
#[derive(Debug, Clone)]
pub struct ParallelExecutor {
    pub spec: ChainSpec,
    /// Worker threads; 0 means one per thread of rayon's global pool.
    pub workers: usize,
}

/// How a parallel run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecStats {
    /// Worker threads used; 0 when the block ran sequentially from the start.
    pub workers: usize,
    /// Transaction executions, re-executions included.
    pub executions: u32,
    /// Executions thrown away: failed validation, or stopped on an aborted dependency.
    pub aborts: u32,
    /// Index from which the block ran sequentially after too many aborts.
    pub fell_back_at: Option<usize>,
}

/// A block built from candidates in parallel.
#[derive(Debug)]
pub struct ProducedBlock {
    pub outcome: BlockOutcome,
    /// Indexes of the candidates the block holds, in order.
    pub included: Vec<usize>,
    /// Candidates found invalid, with the reason (the first of each sender).
    pub rejected: Vec<(B256, InvalidTransaction)>,
    pub stats: ExecStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every transaction must be valid and fit (block import).
    Import,
    /// Invalid candidates are left out; the block ends when gas runs out (block building).
    Produce,
}

impl BlockExecutor for ParallelExecutor {
    fn execute_block<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecError> {
        self.execute_with_stats(state, env, txs)
            .map(|(outcome, _)| outcome)
    }
}

impl ParallelExecutor {
    /// [`BlockExecutor::execute_block`], with how the run went.
    pub fn execute_with_stats<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<(BlockOutcome, ExecStats), ExecError> {
        let txs: Vec<&RecoveredTx> = txs.iter().collect();
        let (outcome, _, _, stats) = self.run(state, env, &txs, Mode::Import)?;
        Ok((outcome, stats))
    }

    /// Builds a block from `candidates` (in block order): invalid ones are left out, and the
    /// block ends at the first candidate whose gas limit exceeds the gas left.
    pub fn produce<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        candidates: &[&RecoveredTx],
    ) -> Result<ProducedBlock, ExecError> {
        let (outcome, included, rejected, stats) =
            self.run(state, env, candidates, Mode::Produce)?;
        Ok(ProducedBlock {
            included: included.into_iter().map(|i| i as usize).collect(),
            outcome,
            rejected,
            stats,
        })
    }

    fn run<'a, S: StateReader>(
        &self,
        state: &'a S,
        env: &BlockEnv,
        txs: &[&'a RecoveredTx],
        mode: Mode,
    ) -> Result<RunOutcome, ExecError> {
        let len = TxIdx::try_from(txs.len()).map_err(|_| ExecError::TooManyTxs(txs.len()))?;
        let clear_empty = self.spec.spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        let coinbase_base = state.account(&env.fee_recipient)?;
        let mut committer = Committer {
            spec: &self.spec,
            env: *env,
            clear_empty,
            parts: Some(BlockParts::new(&self.spec, state, *env)),
            changes: (0..CHANGE_SHARDS)
                .map(|_| {
                    let capacity = (txs.len() * 2 / CHANGE_SHARDS).min(4096);
                    HashMap::with_capacity_and_hasher(capacity, Default::default())
                })
                .collect(),
            codes: Vec::new(),
            coinbase: coinbase_base,
            coinbase_touched: false,
            mode,
            included: Vec::with_capacity(txs.len()),
            rejected: Vec::new(),
            failed_senders: HashSet::new(),
            error: None,
        };
        let workers = match self.workers {
            0 => rayon::current_num_threads(),
            n => n,
        }
        .min(txs.len());
        let chains = SenderChains::of(txs);
        let gas: u64 = txs
            .iter()
            .map(|tx| alloy_consensus::Transaction::gas_limit(&tx.envelope))
            .fold(0, u64::saturating_add);
        if workers < 2
            || txs.len() < PARALLEL_TXS_MIN
            || gas < PARALLEL_GAS_MIN
            || chains.longest as f64 > SENDER_CHAIN_SHARE_MAX * txs.len() as f64
        {
            committer.run_sequentially(txs, 0);
            return committer.finish(ExecStats::default());
        }

        let clear_empty = self.spec.spec_id.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        let run = Run {
            spec: &self.spec,
            env,
            txs,
            shared: Shared {
                state,
                memory: MvMemory::new(txs.len(), clear_empty),
                codes: RwLock::new(HashMap::default()),
                coinbase: env.fee_recipient,
                coinbase_base,
            },
            scheduler: Scheduler::new(
                len,
                match mode {
                    Mode::Import => len,
                    Mode::Produce => PRODUCE_WINDOW,
                },
            ),
            executions: (0..len).map(|_| Mutex::new(None)).collect(),
            previous_of_sender: chains.previous,
            committed: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            executed: AtomicU32::new(0),
            aborted: AtomicU32::new(0),
            fell_back_at: Mutex::new(None),
            panic: Mutex::new(None),
            committer: Mutex::new(committer),
            clear_empty,
        };
        rayon::in_place_scope(|scope| {
            for _ in 1..workers {
                scope.spawn(|_| run.work_guarded());
            }
            run.work_guarded();
        });
        if let Some(payload) = run.panic.into_inner() {
            std::panic::resume_unwind(payload);
        }
        let stats = ExecStats {
            workers,
            executions: run.executed.into_inner(),
            aborts: run.aborted.into_inner(),
            fell_back_at: run.fell_back_at.into_inner(),
        };
        run.committer.into_inner().finish(stats)
    }
}

/// The block, the candidates it includes, those rejected, and how the run went.
type RunOutcome = (
    BlockOutcome,
    Vec<TxIdx>,
    Vec<(B256, InvalidTransaction)>,
    ExecStats,
);

/// For each transaction, the previous one of its sender in the block; and the longest chain.
struct SenderChains {
    previous: Box<[Option<TxIdx>]>,
    longest: usize,
}

impl SenderChains {
    fn of(txs: &[&RecoveredTx]) -> Self {
        // Keyed by the last 8 bytes of the address (the first are often zeros): a small table.
        // Two senders sharing them only add a needless wait (a hint) or count as one chain.
        let mut last: HashMap<u64, (TxIdx, usize)> = HashMap::default();
        last.reserve(txs.len());
        let mut longest = 0;
        let previous = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let i = i as TxIdx;
                let key = u64::from_le_bytes(tx.sender.0[12..].try_into().expect("8 bytes"));
                match last.entry(key) {
                    alloy_primitives::map::Entry::Occupied(mut seen) => {
                        let (previous, count) = *seen.get();
                        *seen.get_mut() = (i, count + 1);
                        longest = longest.max(count + 1);
                        Some(previous)
                    }
                    alloy_primitives::map::Entry::Vacant(slot) => {
                        slot.insert((i, 1));
                        longest = longest.max(1);
                        None
                    }
                }
            })
            .collect();
        Self { previous, longest }
    }
}

/// What one incarnation produced.
struct Execution {
    incarnation: Incarnation,
    reads: Vec<ReadEntry>,
    /// Locations written, sorted (the fee recipient's account is not among them).
    writes: Vec<Location>,
    /// Taken when the transaction is committed.
    outcome: Option<Result<Executed, ExecError>>,
}

struct Executed {
    result: ExecutionResult,
    /// The accounts it touched, without the fee.
    touched: Vec<Touched>,
    fee: U256,
    /// It destroyed the fee recipient, which then gets no fee (as in revm).
    coinbase_destroyed: bool,
    /// The sender's balance before it.
    sender_balance: U256,
}

/// One account a transaction touched, in the form the block's change set folds (what the
/// sequential overlay's `apply_account` does with revm's account).
struct Touched {
    address: Address,
    destroyed: bool,
    created: bool,
    /// After the transaction; `None` when destroyed or removed as empty (EIP-161).
    account: Option<Account>,
    /// Slots changed, when the account exists afterwards.
    storage: Vec<(U256, U256)>,
    /// Code deployed by its creation.
    code: Option<(B256, Bytecode)>,
}

type WorkerEvm<'a, S> = MainnetEvm<MainnetContext<TxView<'a, S>>, TransferLogger>;

/// One parallel run of a block.
struct Run<'r, 's, 'a, S: StateReader> {
    spec: &'r ChainSpec,
    env: &'r BlockEnv,
    txs: &'r [&'a RecoveredTx],
    shared: Shared<'a, S>,
    scheduler: Scheduler,
    /// The last execution of each transaction (boxed: the slots stay small).
    executions: Box<[Mutex<Option<Box<Execution>>>]>,
    previous_of_sender: Box<[Option<TxIdx>]>,
    /// Transactions committed: a prefix of the block.
    committed: AtomicU32,
    /// Set when the block is done, failed, was cut short or fell back to sequential.
    stop: AtomicBool,
    executed: AtomicU32,
    aborted: AtomicU32,
    fell_back_at: Mutex<Option<usize>>,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    committer: Mutex<Committer<'s, 'a, S>>,
    clear_empty: bool,
}

impl<'a, S: StateReader> Run<'_, '_, 'a, S> {
    /// A worker; a panic stops every worker and is raised again by the caller.
    fn work_guarded(&self) {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work()))
        {
            self.stop.store(true, Ordering::SeqCst);
            self.panic.lock().get_or_insert(payload);
        }
    }

    fn work(&self) {
        let forked = self.shared.state.fork();
        let base: &dyn StateReader = match &forked {
            Some(reader) => &**reader,
            None => self.shared.state,
        };
        let mut evm: WorkerEvm<'_, S> = build_evm(
            self.spec,
            TxView::new(&self.shared, base),
            revm_block_env(self.spec.spec_id, self.env),
            false,
        );
        let mut handler = DeferredFee::default();
        let mut task = None;
        let mut idle = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            task = match task {
                Some(Task::Execute(txn, inc)) => self.execute(&mut evm, &mut handler, txn, inc),
                Some(Task::Validate(txn, inc)) => self.validate(txn, inc),
                None => {
                    let next = self.try_commit().or_else(|| {
                        self.scheduler
                            .next_task(self.committed.load(Ordering::Acquire))
                    });
                    if next.is_some() {
                        idle = 0;
                    } else {
                        idle += 1;
                        if idle < 64 {
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                    next
                }
            };
        }
    }

    fn execute<'v>(
        &'v self,
        evm: &mut WorkerEvm<'v, S>,
        handler: &mut DeferredFee<WorkerEvm<'v, S>>,
        txn: TxIdx,
        inc: Incarnation,
    ) -> Option<Task> {
        // A sender's nonces order its transactions: wait for the previous one rather than
        // execute with a nonce that cannot be right yet.
        if let Some(previous) = self.previous_of_sender[txn as usize]
            && self.scheduler.add_dependency(txn, previous)
        {
            return None;
        }
        let tx = self.txs[txn as usize];
        let bttc = self.spec.fee_rules == FeeRules::Bttc;
        let (result, state) = loop {
            evm.ctx.journaled_state.database.begin(txn, tx.sender);
            evm.inspector = TransferLogger::default();
            evm.ctx.tx = tx_env(tx);
            handler.fee.set(U256::ZERO);
            let result = if bttc {
                handler.inspect_run(evm)
            } else {
                handler.run(evm)
            };
            let state = evm.finalize();
            self.executed.fetch_add(1, Ordering::Relaxed);
            match result {
                Err(EVMError::Database(ViewError::Blocked(blocking))) => {
                    if self.scheduler.add_dependency(txn, blocking) {
                        self.aborted.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    // It executed meanwhile: run again with its writes.
                }
                result => break (result, state),
            }
        };
        let view = &mut evm.ctx.journaled_state.database;
        let reads = std::mem::take(&mut view.reads);
        let (outcome, writes, coinbase) = match result {
            Ok(result) => {
                let fee = handler.fee.get();
                let (writes, coinbase, touched) = self.writes_of(txn, &state, &view.rules, fee);
                let executed = Executed {
                    result,
                    touched,
                    fee,
                    coinbase_destroyed: state
                        .get(&self.shared.coinbase)
                        .is_some_and(|a| a.is_selfdestructed()),
                    sender_balance: view.sender_balance,
                };
                (Ok(executed), writes, coinbase)
            }
            Err(e) => (Err(map_error(tx.hash, e)), Vec::new(), CoinbaseCell::None),
        };
        let locations: Vec<Location> = writes.iter().map(|(location, _)| *location).collect();
        let mut slot = self.executions[txn as usize].lock();
        let previous = slot.as_ref().map_or(&[][..], |e| &e.writes[..]);
        let mut wrote_new = self.shared.memory.record(txn, inc, previous, &writes);
        wrote_new |= self.shared.memory.set_coinbase(txn, coinbase);
        *slot = Some(Box::new(Execution {
            incarnation: inc,
            reads,
            writes: locations,
            outcome: Some(outcome),
        }));
        drop(slot);
        self.scheduler.finish_execution(txn, inc, wrote_new)
    }

    /// The multi-version writes of a transaction's changes: what the sequential overlay would
    /// hold for each touched account afterwards.
    fn writes_of(
        &self,
        txn: TxIdx,
        state: &EvmState,
        rules: &HashMap<Address, StorageRule>,
        fee: U256,
    ) -> (Vec<(Location, Value)>, CoinbaseCell, Vec<Touched>) {
        let coinbase = self.shared.coinbase;
        let mut writes = Vec::with_capacity(state.len() + 4);
        let mut touched = Vec::with_capacity(state.len());
        let mut coinbase_cell = CoinbaseCell::Delta(fee);
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let read = rules.get(address).map(|r| r.entry);
            let read_wiped_by = read.map_or(0, |r| r.wiped_by);
            let destroyed = account.is_selfdestructed();
            let created = account.is_created();
            let wiped_by = if destroyed || created {
                txn + 1
            } else {
                read_wiped_by
            };
            let exists = !(destroyed || self.clear_empty && account.is_empty());
            let entry = AccountEntry {
                account: exists.then_some(Account {
                    nonce: account.info.nonce,
                    balance: account.info.balance,
                    code_hash: account.info.code_hash,
                }),
                wiped_by,
            };
            let mut record = Touched {
                address: *address,
                destroyed,
                created,
                account: entry.account,
                storage: Vec::new(),
                code: None,
            };
            if exists {
                if created
                    && let Some(code) = &account.info.code
                    && !code.is_empty()
                {
                    self.shared
                        .codes
                        .write()
                        .insert(account.info.code_hash, code.clone());
                    record.code = Some((account.info.code_hash, code.clone()));
                }
                for (slot, value) in &account.storage {
                    if value.is_changed() {
                        writes.push((
                            Location::Storage(*address, *slot),
                            Value::Storage(value.present_value),
                        ));
                        record.storage.push((*slot, value.present_value));
                    }
                }
            }
            touched.push(record);
            if *address != coinbase && read == Some(entry) {
                // Touched but unchanged (a call to a hot contract): readers above see the
                // same value from below, so no write makes them depend on this one.
                continue;
            }
            if *address == coinbase {
                coinbase_cell = CoinbaseCell::Absolute(Box::new(if destroyed {
                    entry
                } else {
                    AccountEntry {
                        account: self.shared.memory.credit(entry.account, fee),
                        ..entry
                    }
                }));
            } else {
                writes.push((Location::Account(*address), Value::Account(entry)));
            }
        }
        writes.sort_unstable_by_key(|write| write.0);
        (writes, coinbase_cell, touched)
    }

    fn validate(&self, txn: TxIdx, inc: Incarnation) -> Option<Task> {
        let slot = self.executions[txn as usize].lock();
        let execution = slot.as_ref().filter(|e| e.incarnation == inc)?;
        if reads_valid(&self.shared, txn, &execution.reads) {
            return None;
        }
        if !self.scheduler.try_validation_abort(txn, inc) {
            return None;
        }
        self.shared.memory.mark_estimates(txn, &execution.writes);
        drop(slot);
        self.aborted.fetch_add(1, Ordering::Relaxed);
        self.scheduler.finish_validation(txn, true)
    }

    /// Commits every transaction at the commit point that is executed and valid, if no other
    /// worker is committing. Returns the re-execution of one found invalid.
    fn try_commit(&self) -> Option<Task> {
        let mut committer = self.committer.try_lock()?;
        let len = self.txs.len() as TxIdx;
        loop {
            // The block may have ended (an error, a cut, a fallback) under another worker.
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            let txn = self.committed.load(Ordering::Acquire);
            if txn >= len {
                self.stop.store(true, Ordering::Release);
                return None;
            }
            let (inc, status) = self.scheduler.status(txn);
            if status != Status::Executed {
                return None;
            }
            let mut slot = self.executions[txn as usize].lock();
            let execution = slot.as_mut()?;
            if execution.incarnation != inc {
                return None;
            }
            // Every lower transaction is final: a valid read set is valid for good.
            if !reads_valid(&self.shared, txn, &execution.reads) {
                if !self.scheduler.try_validation_abort(txn, inc) {
                    return None;
                }
                self.shared.memory.mark_estimates(txn, &execution.writes);
                drop(slot);
                self.aborted.fetch_add(1, Ordering::Relaxed);
                return self.scheduler.finish_validation(txn, true);
            }
            if !self.scheduler.try_commit(txn, inc) {
                return None;
            }
            let outcome = execution
                .outcome
                .take()
                .expect("an executed transaction has an outcome");
            drop(slot);
            let go_on = committer.commit(txn, self.txs[txn as usize], outcome);
            self.committed.store(txn + 1, Ordering::Release);
            if (txn + 1).is_multiple_of(COINBASE_CHECKPOINT_EVERY) {
                self.shared
                    .memory
                    .checkpoint_coinbase(txn + 1, self.shared.coinbase_base);
            }
            if !go_on {
                self.stop.store(true, Ordering::Release);
                return None;
            }
            if self.too_many_aborts() {
                // Mostly dependent: finish here, one transaction after another.
                self.stop.store(true, Ordering::Release);
                *self.fell_back_at.lock() = Some(txn as usize + 1);
                committer.run_sequentially(self.txs, txn as usize + 1);
                self.committed.store(len, Ordering::Release);
                return None;
            }
        }
    }

    fn too_many_aborts(&self) -> bool {
        let executed = self.executed.load(Ordering::Relaxed);
        executed >= FALLBACK_SAMPLE
            && self.aborted.load(Ordering::Relaxed) * FALLBACK_ABORT_RATIO > executed
    }
}

fn map_error(hash: B256, e: EVMError<ViewError>) -> ExecError {
    match e {
        EVMError::Transaction(reason) => ExecError::Invalid(TxInvalid::Rejected { hash, reason }),
        EVMError::Database(ViewError::State(e)) => ExecError::State(e),
        EVMError::Database(ViewError::Blocked(_)) => ExecError::State(StateError::Unfinished),
        EVMError::Header(e) => ExecError::Header(e),
        other => ExecError::Evm(other.to_string()),
    }
}

/// The block so far, in order: receipts are made and changes folded as transactions commit
/// (into a hash map, sorted once at the end), from what the workers digested.
struct Committer<'s, 'a, S: StateReader> {
    spec: &'s ChainSpec,
    env: BlockEnv,
    clear_empty: bool,
    /// Receipts and gas; its overlay is filled from `changes` when the block ends or continues
    /// sequentially.
    parts: Option<BlockParts<'a, S>>,
    /// By the first bits of the address, so that the shards, sorted, join in order.
    changes: Vec<HashMap<Address, AccountChange>>,
    codes: Vec<(B256, Bytecode)>,
    /// The fee recipient's account as the block left it so far, kept out of `changes` (every
    /// transaction pays it) until the end.
    coinbase: Option<Account>,
    /// Some transaction touched the fee recipient.
    coinbase_touched: bool,
    mode: Mode,
    included: Vec<TxIdx>,
    rejected: Vec<(B256, InvalidTransaction)>,
    failed_senders: HashSet<Address>,
    error: Option<ExecError>,
}

impl<'a, S: StateReader> Committer<'_, 'a, S> {
    fn parts(&mut self) -> &mut BlockParts<'a, S> {
        self.parts
            .as_mut()
            .expect("block parts are back after sequential execution")
    }

    /// Adds transaction `txn`, executed in parallel and final. False when the block ends here.
    fn commit(
        &mut self,
        txn: TxIdx,
        tx: &RecoveredTx,
        outcome: Result<Executed, ExecError>,
    ) -> bool {
        let mode = self.mode;
        let parts = self.parts();
        if mode == Mode::Produce && parts.gas_left() < 21_000 {
            return false;
        }
        if let Err(e) = parts.check_fits(tx) {
            if mode == Mode::Import {
                self.error = Some(e);
            }
            return false;
        }
        let executed = match outcome {
            Ok(executed) => executed,
            Err(e) => return self.settle(txn, tx, Err(e)),
        };
        let coinbase = self.env.fee_recipient;
        let before = self.parts().fee_logs().then(|| {
            (
                executed.sender_balance,
                self.coinbase.map_or(U256::ZERO, |a| a.balance),
            )
        });
        for touched in executed.touched {
            let address = touched.address;
            let change = self.changes[change_shard(&address)]
                .entry(address)
                .or_default();
            if address == coinbase {
                self.coinbase_touched = true;
                // Folded through the map so that its storage is kept too.
                change.account = self.coinbase;
                fold(change, &mut self.codes, touched);
                self.coinbase = change.account;
            } else {
                fold(change, &mut self.codes, touched);
            }
        }
        if !executed.coinbase_destroyed {
            self.coinbase_touched = true;
            let mut account = self.coinbase.unwrap_or(Account {
                nonce: 0,
                balance: U256::ZERO,
                code_hash: alloy_primitives::KECCAK256_EMPTY,
            });
            // As revm's `incr_balance`: an overflowing payment leaves the balance as it was.
            if let Some(balance) = account.balance.checked_add(executed.fee) {
                account.balance = balance;
            }
            self.coinbase = (!(self.clear_empty && account.is_empty())).then_some(account);
        }
        self.parts().record(tx, executed.result, before);
        self.settle(txn, tx, Ok(()))
    }

    /// The block so far as the sequential accumulator holds it.
    fn assemble(&mut self) -> BlockParts<'a, S> {
        let mut parts = self.parts.take().expect("block parts");
        if !self.coinbase_touched && self.changes.iter().all(HashMap::is_empty) {
            // Nothing committed in parallel (a sequential run, or an empty block).
            return parts;
        }
        let coinbase = self.env.fee_recipient;
        if std::mem::take(&mut self.coinbase_touched) {
            self.changes[change_shard(&coinbase)]
                .entry(coinbase)
                .or_default()
                .account = self.coinbase;
        }
        let shards: Vec<Vec<(Address, AccountChange)>> = std::mem::take(&mut self.changes)
            .into_par_iter()
            .map(|shard| {
                let mut sorted: Vec<_> = shard.into_iter().collect();
                sorted.sort_unstable_by_key(|(address, _)| *address);
                sorted
            })
            .collect();
        parts.overlay.set_changes(
            shards.into_iter().flatten(),
            std::mem::take(&mut self.codes),
        );
        self.changes = (0..CHANGE_SHARDS).map(|_| HashMap::default()).collect();
        parts
    }

    /// Executes transactions from `start` on, one after another (a fallback).
    fn run_sequentially(&mut self, txs: &[&RecoveredTx], start: usize) {
        let parts = self.assemble();
        let mut block = SequentialBlock::from_parts(self.spec, parts);
        for (txn, tx) in txs.iter().enumerate().skip(start) {
            // Building a block, the rules of the parallel commit hold here too, so that where
            // the fallback starts does not change the block: it ends at the first candidate
            // that does not fit, and an invalid candidate is left out.
            if self.mode == Mode::Produce
                && (block.gas_left() < 21_000 || block.check_fits(tx).is_err())
            {
                break;
            }
            let outcome = block.execute(tx).map(|_| ());
            if !self.settle(txn as TxIdx, tx, outcome) {
                break;
            }
        }
        // Nothing is committed after a sequential tail: the block stays in the overlay.
        self.parts = Some(block.into_parts());
    }

    /// Books the outcome of transaction `txn`; false when the block ends.
    fn settle(&mut self, txn: TxIdx, tx: &RecoveredTx, outcome: Result<(), ExecError>) -> bool {
        match (outcome, self.mode) {
            (Ok(()), _) => {
                self.included.push(txn);
                true
            }
            (Err(ExecError::Invalid(TxInvalid::Rejected { hash, reason })), Mode::Produce) => {
                if self.failed_senders.insert(tx.sender) {
                    self.rejected.push((hash, reason));
                }
                true
            }
            (Err(e), _) => {
                self.error = Some(e);
                false
            }
        }
    }

    fn finish(mut self, stats: ExecStats) -> Result<RunOutcome, ExecError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let parts = self.assemble();
        Ok((parts.finish(), self.included, self.rejected, stats))
    }
}

/// Shards of the committed changes: by the address's first bits, so that they join in order.
const CHANGE_SHARDS: usize = 64;

fn change_shard(address: &Address) -> usize {
    address.0[0] as usize * CHANGE_SHARDS / 256
}

/// The sequential overlay's `apply_account`, on a transaction's digested account.
fn fold(change: &mut AccountChange, codes: &mut Vec<(B256, Bytecode)>, touched: Touched) {
    if touched.destroyed {
        *change = AccountChange {
            account: None,
            storage_wiped: true,
            ..Default::default()
        };
        return;
    }
    if touched.created {
        change.storage_wiped = true;
        change.storage.clear();
    }
    change.account = touched.account;
    change.storage.extend(touched.storage);
    codes.extend(touched.code);
}
