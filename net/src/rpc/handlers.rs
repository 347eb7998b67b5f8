//! What every namespace's handlers share: the handler type over a node, limits, error codes,
//! and block, transaction and log lookups.

use super::{RpcBackend, convert};
use alloy_consensus::Header;
use alloy_primitives::{B256, Bytes, TxKind, U64, U256};
use alloy_rpc_types_eth::{
    Block, BlockId, BlockNumberOrTag, Filter, FilterBlockOption, Log, Transaction,
    TransactionRequest,
};
use alloy_sol_types::{Panic, Revert, SolError};
use bttc_engine::{
    chain::BlockReader,
    exec::{BlockEnv, CallOutcome, CallRequest, ExecError, call, estimate_gas},
};
use jsonrpsee::{
    core::RpcResult,
    types::{ErrorObject, ErrorObjectOwned},
};
use std::sync::Arc;
/// Most blocks one `eth_getLogs` query may scan.
pub const LOGS_BLOCK_RANGE_MAX: u64 = 10_000;
/// Most logs one `eth_getLogs` answer may hold.
pub const LOGS_RESULT_MAX: usize = 10_000;
/// Blocks one `bor_getRootHash` covers (Bor's MaxCheckpointLength, spec §1.2).
pub const ROOT_HASH_BLOCKS_MAX: u64 = 1 << 15;
/// Storage keys one `eth_getProof` may ask for.
pub const PROOF_KEYS_MAX: usize = 1_024;
/// Most blocks one `eth_feeHistory` query may cover.
pub const FEE_HISTORY_BLOCKS_MAX: u64 = 1_024;
/// Most gas one `eth_call` or `eth_estimateGas` may use (geth's default RPC gas cap), so that
/// a caller cannot make the node run a billion-gas call.
pub const RPC_GAS_CAP: u64 = 50_000_000;
/// The priority fee suggested to wallets.
pub const SUGGESTED_TIP: u128 = 1_000_000_000;

pub(super) const INVALID_PARAMS: i32 = -32602;
pub(super) const INTERNAL: i32 = -32603;
pub(super) const SERVER: i32 = -32000;
pub(super) const LIMIT_EXCEEDED: i32 = -32005;
pub(super) const REVERTED: i32 = 3;

pub(super) fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), None::<()>)
}

pub(super) fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(INTERNAL, e.to_string())
}

/// A block's header and hash; `None` past the tip.
pub(super) fn header_and_hash<V: BlockReader>(
    view: &V,
    number: u64,
) -> RpcResult<Option<(Header, B256)>> {
    let Some(header) = view.header(number).map_err(internal)? else {
        return Ok(None);
    };
    let hash = view
        .canonical_hash(number)
        .map_err(internal)?
        .ok_or_else(|| internal("canonical hash missing"))?;
    Ok(Some((header, hash)))
}

/// The blocks a log filter names, with tags and numbers past the tip read as the tip.
pub(super) fn filter_range<V: BlockReader>(
    view: &V,
    filter: &Filter,
    tip: u64,
) -> RpcResult<(u64, u64)> {
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let n = view
                .block_number(&hash)
                .map_err(internal)?
                .ok_or_else(|| err(SERVER, "unknown block"))?;
            (n, n)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let bound = |tag: Option<BlockNumberOrTag>| match tag {
                Some(BlockNumberOrTag::Earliest) => 0,
                Some(BlockNumberOrTag::Number(n)) => n.min(tip),
                _ => tip,
            };
            (bound(from_block), bound(to_block))
        }
    };
    if from > to {
        return Err(err(
            INVALID_PARAMS,
            format!("invalid block range: from {from} is after to {to}"),
        ));
    }
    Ok((from, to))
}

/// The logs of blocks `from..=to` that match `filter`, in chain order; more than
/// `results_max` is refused.
pub(super) fn collect_logs<V: BlockReader>(
    view: &V,
    from: u64,
    to: u64,
    filter: &Filter,
    results_max: usize,
) -> RpcResult<Vec<Log>> {
    scan_logs(view, from, to, filter, results_max, false).map(|(logs, _)| logs)
}

/// Like [`collect_logs`], but past `results_max` it stops at the end of a block instead of
/// refusing (always after at least one block); returns the logs and the last block covered.
pub(super) fn collect_logs_in_steps<V: BlockReader>(
    view: &V,
    from: u64,
    to: u64,
    filter: &Filter,
    results_max: usize,
) -> RpcResult<(Vec<Log>, u64)> {
    scan_logs(view, from, to, filter, results_max, true)
}

pub(super) fn scan_logs<V: BlockReader>(
    view: &V,
    from: u64,
    to: u64,
    filter: &Filter,
    results_max: usize,
    stop_at_block_end: bool,
) -> RpcResult<(Vec<Log>, u64)> {
    // Blooms first, in one sequential scan; only the blocks they admit are read.
    let mut candidates = Vec::new();
    view.visit_blooms(from, to, &mut |number, bloom| {
        if filter.matches_bloom(*bloom) {
            candidates.push(number);
        }
        true
    })
    .map_err(internal)?;
    let mut out = Vec::new();
    for number in candidates {
        let Some((header, hash)) = header_and_hash(view, number)? else {
            break;
        };
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let receipts = view.receipts(number).map_err(internal)?.unwrap_or_default();
        let mut log_index = 0u64;
        for (i, (tx, receipt)) in txs.iter().zip(&receipts).enumerate() {
            for log in convert::rpc_logs(receipt, tx, hash, &header, i as u64, log_index) {
                if filter.matches(&log.inner) {
                    if out.len() == results_max && !stop_at_block_end {
                        return Err(err(
                            LIMIT_EXCEEDED,
                            format!("query returned more than {results_max} results"),
                        ));
                    }
                    out.push(log);
                }
            }
            log_index += receipt.receipt.logs.len() as u64;
        }
        if stop_at_block_end && out.len() >= results_max && number < to {
            return Ok((out, number));
        }
    }
    Ok((out, to))
}

/// The handlers, over any node that implements [`RpcBackend`].
pub struct EthRpc<B> {
    pub(super) backend: Arc<B>,
    pub(super) limits: super::RpcLimits,
    pub(super) filters: Arc<super::filter::Filters>,
}

impl<B> Clone for EthRpc<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            limits: self.limits,
            filters: self.filters.clone(),
        }
    }
}

impl<B: RpcBackend> EthRpc<B> {
    pub fn new(backend: Arc<B>, limits: super::RpcLimits) -> Self {
        let filters = Arc::new(super::filter::Filters::new(
            limits.filters_max,
            limits.filter_idle,
        ));
        Self {
            backend,
            limits,
            filters,
        }
    }

    pub(super) fn view(&self) -> RpcResult<B::View<'_>> {
        self.backend.view().map_err(internal)
    }

    pub(super) fn call_now(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<Bytes> {
        let view = self.view()?;
        self.check_latest_state(&view, block)?;
        let env = self.pending_env(&view)?;
        let outcome = call(
            self.backend.spec(),
            &view,
            &env,
            &self.call_request(&request)?,
        )
        .map_err(exec_error)?;
        if outcome.success {
            Ok(outcome.output)
        } else {
            Err(call_error(&outcome))
        }
    }

    pub(super) fn estimate_gas_now(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64> {
        let view = self.view()?;
        self.check_latest_state(&view, block)?;
        let env = self.pending_env(&view)?;
        match estimate_gas(
            self.backend.spec(),
            &view,
            &env,
            &self.call_request(&request)?,
        )
        .map_err(exec_error)?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(outcome) => Err(call_error(&outcome)),
        }
    }

    pub(super) fn logs_now(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        let view = self.view()?;
        let tip = Self::tip(&view)?;
        let (from, to) = filter_range(&view, &filter, tip)?;
        let range_max = self.limits.logs_block_range_max;
        if to - from >= range_max {
            return Err(err(
                LIMIT_EXCEEDED,
                format!("block range larger than {range_max} blocks"),
            ));
        }
        collect_logs(&view, from, to, &filter, self.limits.logs_results_max)
    }

    pub(super) fn tip(view: &B::View<'_>) -> RpcResult<u64> {
        view.tip()
            .map_err(internal)?
            .ok_or_else(|| internal("no block committed yet"))
    }

    /// A block number from a tag; `None` when the number is past the tip.
    pub(super) fn resolve(
        &self,
        view: &B::View<'_>,
        tag: BlockNumberOrTag,
    ) -> RpcResult<Option<u64>> {
        let tip = Self::tip(view)?;
        Ok(match tag {
            BlockNumberOrTag::Earliest => Some(0),
            BlockNumberOrTag::Number(n) => (n <= tip).then_some(n),
            // A chain with milestones answers with the last one; a single producer's chain
            // has no reorganizations, so its tip is final.
            BlockNumberOrTag::Finalized | BlockNumberOrTag::Safe => {
                Some(self.backend.milestone().map_or(tip, |m| m.number.min(tip)))
            }
            _ => Some(tip),
        })
    }

    /// Only the latest state is kept: any other block is refused with a clear error.
    pub(super) fn check_latest_state(
        &self,
        view: &B::View<'_>,
        block: Option<BlockId>,
    ) -> RpcResult<()> {
        let tip = Self::tip(view)?;
        let number = match block {
            None => return Ok(()),
            Some(BlockId::Number(tag)) => self.resolve(view, tag)?,
            Some(BlockId::Hash(h)) => view.block_number(&h.block_hash).map_err(internal)?,
        };
        match number {
            Some(n) if n == tip => Ok(()),
            Some(n) => Err(err(
                SERVER,
                format!("historical state unavailable: block {n} is not the tip {tip}"),
            )),
            None => Err(err(SERVER, "header not found")),
        }
    }

    pub(super) fn header_and_hash(
        view: &B::View<'_>,
        number: u64,
    ) -> RpcResult<Option<(Header, B256)>> {
        header_and_hash(view, number)
    }

    pub(super) fn block(
        &self,
        view: &B::View<'_>,
        number: u64,
        full: bool,
    ) -> RpcResult<Option<Block>> {
        let Some((header, hash)) = Self::header_and_hash(view, number)? else {
            return Ok(None);
        };
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let total_difficulty = self.total_difficulty(view, number)?;
        Ok(Some(convert::rpc_block(
            &header,
            hash,
            &txs,
            full,
            total_difficulty,
        )))
    }

    /// The chain's total difficulty up to `number`, on proof-of-work chains (imported ones);
    /// summed from the headers, O(number): imported chains are short (a stored running total
    /// is needed before long ones are).
    pub(super) fn total_difficulty(
        &self,
        view: &B::View<'_>,
        number: u64,
    ) -> RpcResult<Option<U256>> {
        // Only proof-of-work chains (imported, with block rewards) have a total difficulty.
        if self.backend.spec().block_reward.is_none() {
            return Ok(None);
        }
        let mut total = U256::ZERO;
        for n in 0..=number {
            let header = view
                .header(n)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("header {n} missing")))?;
            total += header.difficulty;
        }
        Ok(Some(total))
    }

    /// A block's number from a block id; `None` if unknown.
    pub(super) fn block_id_number(
        &self,
        view: &B::View<'_>,
        block: BlockId,
    ) -> RpcResult<Option<u64>> {
        match block {
            BlockId::Number(tag) => self.resolve(view, tag),
            BlockId::Hash(h) => view.block_number(&h.block_hash).map_err(internal),
        }
    }

    /// Transaction `index` of block `number`, as an RPC object.
    pub(super) fn tx_at(
        view: &B::View<'_>,
        number: Option<u64>,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let Some(number) = number else {
            return Ok(None);
        };
        let Some((header, hash)) = Self::header_and_hash(view, number)? else {
            return Ok(None);
        };
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let index = index.to::<u64>();
        Ok(txs
            .get(index as usize)
            .map(|tx| convert::rpc_transaction(tx, Some((hash, &header, index)))))
    }

    pub(super) fn tx_count(view: &B::View<'_>, number: Option<u64>) -> RpcResult<Option<U64>> {
        let Some(number) = number else {
            return Ok(None);
        };
        Ok(view
            .body(number)
            .map_err(internal)?
            .map(|txs| U64::from(txs.len())))
    }

    /// Blocks made here never have uncles; imported ones with uncles are answered with an
    /// error, as their uncles are not stored.
    pub(super) fn uncle_count(view: &B::View<'_>, number: Option<u64>) -> RpcResult<Option<U64>> {
        let Some(number) = number else {
            return Ok(None);
        };
        let Some((header, _)) = Self::header_and_hash(view, number)? else {
            return Ok(None);
        };
        if header.ommers_hash != alloy_consensus::EMPTY_OMMER_ROOT_HASH {
            return Err(err(
                SERVER,
                format!("block {number} has uncles, which this node does not keep"),
            ));
        }
        Ok(Some(U64::ZERO))
    }

    pub(super) fn known_block(&self, view: &B::View<'_>, block: BlockId) -> RpcResult<u64> {
        self.block_id_number(view, block)?
            .ok_or_else(|| err(SERVER, "header not found"))
    }

    /// The environment of the block after the tip: where calls and estimates run.
    pub(super) fn pending_env(&self, view: &B::View<'_>) -> RpcResult<BlockEnv> {
        let tip = Self::tip(view)?;
        let (header, _) =
            Self::header_and_hash(view, tip)?.ok_or_else(|| internal("tip header missing"))?;
        let spec = self.backend.spec();
        Ok(BlockEnv {
            number: tip + 1,
            timestamp: header.timestamp + 1,
            fee_recipient: header.beneficiary,
            gas_limit: spec.gas_limit,
            base_fee: spec.next_base_fee(
                header.gas_used,
                header.gas_limit,
                header.base_fee_per_gas.unwrap_or_default(),
            ),
            difficulty: header.difficulty,
            prevrandao: header.mix_hash,
            excess_blob_gas: 0,
        })
    }

    pub(super) fn call_request(&self, request: &TransactionRequest) -> RpcResult<CallRequest> {
        let cap = self.limits.gas_cap;
        let input = request
            .input
            .clone()
            .try_into_unique_input()
            .map_err(|e| err(INVALID_PARAMS, e.to_string()))?
            .unwrap_or_default();
        Ok(CallRequest {
            from: request.from,
            to: match request.to {
                Some(TxKind::Call(to)) => Some(to),
                _ => None,
            },
            gas: Some(request.gas.unwrap_or(cap).min(cap)),
            gas_price: request.gas_price.or(request.max_fee_per_gas),
            value: request.value.unwrap_or_default(),
            input,
            access_list: request.access_list.clone().unwrap_or_default(),
        })
    }

    pub(super) fn next_base_fee(&self, view: &B::View<'_>) -> RpcResult<u64> {
        Ok(self.pending_env(view)?.base_fee)
    }
}

/// A failed call as geth reports it: code 3 with the revert data, or -32000 for a halt.
pub(super) fn call_error(outcome: &CallOutcome) -> ErrorObjectOwned {
    if !outcome.reverted {
        let why = outcome.halt.as_deref().unwrap_or("execution failed");
        return err(SERVER, format!("execution halted: {why}"));
    }
    let data = &outcome.output;
    let message = if let Ok(revert) = Revert::abi_decode(data) {
        format!("execution reverted: {}", revert.reason)
    } else if let Ok(panic) = Panic::abi_decode(data) {
        format!("execution reverted: panic code {:#x}", panic.code)
    } else {
        "execution reverted".to_owned()
    };
    ErrorObject::owned(REVERTED, message, Some(data.clone()))
}

pub(super) fn exec_error(e: ExecError) -> ErrorObjectOwned {
    match e {
        ExecError::Invalid(invalid) => err(SERVER, invalid.to_string()),
        other => internal(other),
    }
}

/// A 32-byte hash parameter that must carry its `0x` prefix, as geth requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixedHash(pub B256);

impl<'de> serde::Deserialize<'de> for PrefixedHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if !text.starts_with("0x") {
            return Err(serde::de::Error::custom("hex string without 0x prefix"));
        }
        text.parse()
            .map(PrefixedHash)
            .map_err(serde::de::Error::custom)
    }
}
