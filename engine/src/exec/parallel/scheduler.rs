//! Block-STM's collaborative scheduler (Gelashvili et al., PPoPP 2023, Algorithms 4 and 5):
//! execution and validation tasks handed out in transaction order, dependencies that suspend
//! a transaction until the one it waits for has executed, and a commit state that ends a
//! transaction's life once every lower transaction is final.

use super::memory::{Incarnation, TxIdx};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    /// Aborted by validation, or suspended on a dependency, until it is ready again.
    Aborting,
    /// Validated with every lower transaction final: never executes again.
    Committed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    Execute(TxIdx, Incarnation),
    Validate(TxIdx, Incarnation),
}

pub(crate) struct Scheduler {
    len: TxIdx,
    execution_idx: AtomicU32,
    validation_idx: AtomicU32,
    status: Box<[Mutex<(Incarnation, Status)>]>,
    dependents: Box<[Mutex<Vec<TxIdx>>]>,
    /// Execution runs at most this far ahead of the commit point, which bounds the work lost
    /// when a block is cut short and the results held in memory.
    window: TxIdx,
}

impl Scheduler {
    pub(crate) fn new(len: TxIdx, window: TxIdx) -> Self {
        Self {
            len,
            execution_idx: AtomicU32::new(0),
            validation_idx: AtomicU32::new(0),
            status: (0..len)
                .map(|_| Mutex::new((0, Status::ReadyToExecute)))
                .collect(),
            dependents: (0..len).map(|_| Mutex::new(Vec::new())).collect(),
            window,
        }
    }

    pub(crate) fn status(&self, txn: TxIdx) -> (Incarnation, Status) {
        *self.status[txn as usize].lock()
    }

    /// The next task, validation first when it lags behind execution; `committed` is the
    /// number of committed transactions.
    pub(crate) fn next_task(&self, committed: TxIdx) -> Option<Task> {
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst)
            && let Some(task) = self.next_validation()
        {
            return Some(task);
        }
        self.next_execution(committed)
    }

    fn next_validation(&self) -> Option<Task> {
        if self.validation_idx.load(SeqCst) >= self.len {
            return None;
        }
        let txn = self.validation_idx.fetch_add(1, SeqCst);
        if txn >= self.len {
            return None;
        }
        match self.status(txn) {
            (inc, Status::Executed) => Some(Task::Validate(txn, inc)),
            _ => None,
        }
    }

    fn next_execution(&self, committed: TxIdx) -> Option<Task> {
        let next = self.execution_idx.load(SeqCst);
        if next >= self.len || next >= committed.saturating_add(self.window) {
            return None;
        }
        let txn = self.execution_idx.fetch_add(1, SeqCst);
        if txn >= self.len {
            return None;
        }
        self.try_incarnate(txn).map(|inc| Task::Execute(txn, inc))
    }

    fn try_incarnate(&self, txn: TxIdx) -> Option<Incarnation> {
        let mut status = self.status[txn as usize].lock();
        if status.1 == Status::ReadyToExecute {
            status.1 = Status::Executing;
            Some(status.0)
        } else {
            None
        }
    }

    /// Suspends executing `txn` until `blocking` has executed. False if it already has: the
    /// caller executes `txn` again at once.
    pub(crate) fn add_dependency(&self, txn: TxIdx, blocking: TxIdx) -> bool {
        let mut dependents = self.dependents[blocking as usize].lock();
        if matches!(
            self.status(blocking).1,
            Status::Executed | Status::Committed
        ) {
            return false;
        }
        self.status[txn as usize].lock().1 = Status::Aborting;
        dependents.push(txn);
        true
    }

    fn set_ready(&self, txn: TxIdx) {
        let mut status = self.status[txn as usize].lock();
        *status = (status.0 + 1, Status::ReadyToExecute);
    }

    /// Records that incarnation `inc` of `txn` executed; returns its validation when the
    /// validation wave has already passed it.
    pub(crate) fn finish_execution(
        &self,
        txn: TxIdx,
        inc: Incarnation,
        wrote_new_location: bool,
    ) -> Option<Task> {
        *self.status[txn as usize].lock() = (inc, Status::Executed);
        let resumed = std::mem::take(&mut *self.dependents[txn as usize].lock());
        if let Some(&lowest) = resumed.iter().min() {
            for &dependent in &resumed {
                self.set_ready(dependent);
            }
            self.execution_idx.fetch_min(lowest, SeqCst);
        }
        if self.validation_idx.load(SeqCst) > txn {
            if wrote_new_location {
                // Higher transactions may have read past a location this one now writes.
                self.validation_idx.fetch_min(txn, SeqCst);
            } else {
                return Some(Task::Validate(txn, inc));
            }
        }
        None
    }

    /// Marks `txn` aborted if incarnation `inc` is still its executed one.
    pub(crate) fn try_validation_abort(&self, txn: TxIdx, inc: Incarnation) -> bool {
        let mut status = self.status[txn as usize].lock();
        if *status == (inc, Status::Executed) {
            status.1 = Status::Aborting;
            true
        } else {
            false
        }
    }

    /// After a validation of `txn`: an aborted transaction is made ready again (and returned
    /// for execution when the execution wave has passed it), and everything above it is
    /// validated again.
    pub(crate) fn finish_validation(&self, txn: TxIdx, aborted: bool) -> Option<Task> {
        if !aborted {
            return None;
        }
        self.set_ready(txn);
        self.validation_idx.fetch_min(txn + 1, SeqCst);
        if self.execution_idx.load(SeqCst) > txn {
            return self.try_incarnate(txn).map(|inc| Task::Execute(txn, inc));
        }
        None
    }

    /// Commits incarnation `inc` of `txn` if it is still the executed one.
    pub(crate) fn try_commit(&self, txn: TxIdx, inc: Incarnation) -> bool {
        let mut status = self.status[txn as usize].lock();
        if *status == (inc, Status::Executed) {
            status.1 = Status::Committed;
            true
        } else {
            false
        }
    }
}
