//! The `eth_*`, `net_*` and `web3_*` method handlers.

use super::{RpcBackend, SubmitError, convert};
use alloy_consensus::Header;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256, keccak256};
use alloy_rpc_types_eth::{
    AccessListResult, Block, BlockId, BlockNumberOrTag, FeeHistory, Filter, FilterBlockOption, Log,
    Transaction, TransactionReceipt, TransactionRequest,
};
use alloy_sol_types::{Panic, Revert, SolError};
use bttc_engine::{
    chain::{BlockReader, mempool::PoolError},
    exec::{BlockEnv, CallOutcome, CallRequest, ExecError, StateReader, call, estimate_gas},
};
use jsonrpsee::{
    core::{RpcResult, async_trait},
    proc_macros::rpc,
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
const REVERTED: i32 = 3;

pub(super) fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), None::<()>)
}

pub(super) fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(INTERNAL, e.to_string())
}

/// A failed call as geth reports it: code 3 with the revert data, or -32000 for a halt.
fn call_error(outcome: &CallOutcome) -> ErrorObjectOwned {
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

fn exec_error(e: ExecError) -> ErrorObjectOwned {
    match e {
        ExecError::Invalid(invalid) => err(SERVER, invalid.to_string()),
        other => internal(other),
    }
}

fn submit_error(e: SubmitError) -> ErrorObjectOwned {
    match e {
        SubmitError::Decode(_) => err(INVALID_PARAMS, e.to_string()),
        SubmitError::Pool(PoolError::InvalidSignature(_)) => err(INVALID_PARAMS, e.to_string()),
        SubmitError::Busy => err(LIMIT_EXCEEDED, e.to_string()),
        _ => err(SERVER, e.to_string()),
    }
}

#[rpc(server, namespace = "eth")]
pub trait EthApi {
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    #[method(name = "blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    #[method(name = "getBalance")]
    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    #[method(name = "getTransactionCount")]
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    #[method(name = "getCode")]
    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    #[method(name = "getStorageAt")]
    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256>;
    #[method(name = "call")]
    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes>;
    #[method(name = "estimateGas")]
    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64>;
    #[method(name = "gasPrice")]
    fn gas_price(&self) -> RpcResult<U256>;
    #[method(name = "maxPriorityFeePerGas")]
    fn max_priority_fee(&self) -> RpcResult<U256>;
    #[method(name = "feeHistory")]
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    #[method(name = "getTransactionByHash")]
    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionReceipt")]
    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    #[method(name = "getBlockByNumber")]
    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>>;
    #[method(name = "getBlockByHash")]
    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    #[method(name = "getLogs")]
    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    #[method(name = "getBlockTransactionCountByHash")]
    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getBlockTransactionCountByNumber")]
    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    #[method(name = "getTransactionByBlockHashAndIndex")]
    fn tx_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    fn tx_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    #[method(name = "createAccessList", blocking)]
    fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult>;
    /// EIP-1186 proofs of an account and its slots, from the stored trie (latest state only).
    #[method(name = "getProof", blocking)]
    fn proof(
        &self,
        address: Address,
        keys: Vec<String>,
        block: Option<BlockId>,
    ) -> RpcResult<AccountProof>;
    #[method(name = "getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// The node holds no keys.
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    #[method(name = "getUncleCountByBlockHash")]
    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getUncleCountByBlockNumber")]
    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    /// This node is never syncing: it produces or imports its chain.
    #[method(name = "syncing")]
    fn syncing(&self) -> RpcResult<bool>;
}

#[rpc(server, namespace = "bor")]
pub trait BorApi {
    /// The checkpoint root of blocks `start..=end` (spec §1.2), hex without `0x` as Bor
    /// answers it.
    #[method(name = "getRootHash", blocking)]
    fn root_hash(&self, start: u64, end: u64) -> RpcResult<String>;
    /// Who made a block (latest by default): the sealer of a Bor-sealed header (spec §4.2),
    /// else the header's beneficiary.
    #[method(name = "getAuthor")]
    fn author(&self, block: Option<BlockId>) -> RpcResult<Address>;
    /// The producers of the next block: `BorValidatorSet.getBorValidators(tip + 1)` where
    /// the chain has that contract, else the tip's author alone.
    #[method(name = "getCurrentValidators", blocking)]
    fn current_validators(&self) -> RpcResult<Vec<BorValidator>>;
}

/// A producer as Bor's `bor_getCurrentValidators` reports it. `ID` and `accum` (the proposer
/// priority) belong to Bor's consensus snapshot, which this node does not keep: both are 0.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BorValidator {
    #[serde(rename = "ID")]
    pub id: u64,
    pub signer: Address,
    pub power: u64,
    pub accum: i64,
}

#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    #[method(name = "getRawHeader")]
    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes>;
    #[method(name = "getRawBlock")]
    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes>;
    #[method(name = "getRawReceipts")]
    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>>;
    #[method(name = "getRawTransaction")]
    fn raw_transaction(&self, hash: PrefixedHash) -> RpcResult<Bytes>;
}

/// `eth_getProof`'s answer (EIP-1186). Storage keys are echoed as the caller wrote them, as
/// geth does.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProof {
    pub address: Address,
    pub account_proof: Vec<Bytes>,
    pub balance: U256,
    pub code_hash: B256,
    pub nonce: U64,
    pub storage_hash: B256,
    pub storage_proof: Vec<StorageProof>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageProof {
    pub key: String,
    pub value: U256,
    pub proof: Vec<Bytes>,
}

/// A storage key as geth reads it: `0x`-prefixed hex of at most 32 bytes, left-padded.
fn storage_key(text: &str) -> RpcResult<B256> {
    let digits = text.strip_prefix("0x").ok_or_else(|| {
        err(
            INVALID_PARAMS,
            format!("storage key {text:?}: hex string without 0x prefix"),
        )
    })?;
    let value = U256::from_str_radix(digits, 16)
        .ok()
        .filter(|_| digits.len() <= 64)
        .ok_or_else(|| {
            err(
                INVALID_PARAMS,
                format!("storage key {text:?}: not a hex number of at most 32 bytes"),
            )
        })?;
    Ok(B256::from(value))
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

#[rpc(server, namespace = "net")]
pub trait NetApi {
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
}

#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    /// geth's `txpool_status`: counts of pending and queued transactions.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<TxpoolStatus>;
    /// geth's `txpool_content`: pending and queued transactions by sender and nonce.
    #[method(name = "content")]
    fn content(&self) -> RpcResult<TxpoolContent>;
}

/// Transactions by checksummed sender address, then by nonce (decimal), as geth writes them.
pub type TxpoolSide =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Transaction>>;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TxpoolContent {
    pub pending: TxpoolSide,
    pub queued: TxpoolSide,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TxpoolStatus {
    pub pending: U64,
    pub queued: U64,
}

#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
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

fn scan_logs<V: BlockReader>(
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
        Self::check_latest_state(&view, block)?;
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
        Self::check_latest_state(&view, block)?;
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
    fn resolve(view: &B::View<'_>, tag: BlockNumberOrTag) -> RpcResult<Option<u64>> {
        let tip = Self::tip(view)?;
        Ok(match tag {
            BlockNumberOrTag::Earliest => Some(0),
            BlockNumberOrTag::Number(n) => (n <= tip).then_some(n),
            _ => Some(tip),
        })
    }

    /// Only the latest state is kept: any other block is refused with a clear error.
    fn check_latest_state(view: &B::View<'_>, block: Option<BlockId>) -> RpcResult<()> {
        let tip = Self::tip(view)?;
        let number = match block {
            None => return Ok(()),
            Some(BlockId::Number(tag)) => Self::resolve(view, tag)?,
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

    fn header_and_hash(view: &B::View<'_>, number: u64) -> RpcResult<Option<(Header, B256)>> {
        header_and_hash(view, number)
    }

    fn block(&self, view: &B::View<'_>, number: u64, full: bool) -> RpcResult<Option<Block>> {
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
    fn total_difficulty(&self, view: &B::View<'_>, number: u64) -> RpcResult<Option<U256>> {
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
    fn block_id_number(view: &B::View<'_>, block: BlockId) -> RpcResult<Option<u64>> {
        match block {
            BlockId::Number(tag) => Self::resolve(view, tag),
            BlockId::Hash(h) => view.block_number(&h.block_hash).map_err(internal),
        }
    }

    /// Transaction `index` of block `number`, as an RPC object.
    fn tx_at(
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

    fn tx_count(view: &B::View<'_>, number: Option<u64>) -> RpcResult<Option<U64>> {
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
    fn uncle_count(view: &B::View<'_>, number: Option<u64>) -> RpcResult<Option<U64>> {
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

    fn known_block(view: &B::View<'_>, block: BlockId) -> RpcResult<u64> {
        Self::block_id_number(view, block)?.ok_or_else(|| err(SERVER, "header not found"))
    }

    /// The environment of the block after the tip: where calls and estimates run.
    fn pending_env(&self, view: &B::View<'_>) -> RpcResult<BlockEnv> {
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

    fn call_request(&self, request: &TransactionRequest) -> RpcResult<CallRequest> {
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

    fn next_base_fee(&self, view: &B::View<'_>) -> RpcResult<u64> {
        Ok(self.pending_env(view)?.base_fee)
    }
}

#[async_trait]
impl<B: RpcBackend> EthApiServer for EthRpc<B> {
    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        let rpc = self.clone();
        super::on_cpu(move || rpc.call_now(request, block)).await?
    }

    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64> {
        let rpc = self.clone();
        super::on_cpu(move || rpc.estimate_gas_now(request, block)).await?
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        let rpc = self.clone();
        super::on_cpu(move || rpc.logs_now(filter)).await?
    }

    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.backend.spec().chain_id))
    }

    /// The announced tip: set right after each commit, so no read transaction is needed.
    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.backend.events().tip()))
    }

    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        Ok(view
            .account(&address)
            .map_err(internal)?
            .map_or(U256::ZERO, |a| a.balance))
    }

    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok(U64::from(
                self.backend.pending_nonce(&address).map_err(internal)?,
            ));
        }
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        Ok(U64::from(
            view.account(&address)
                .map_err(internal)?
                .map_or(0, |a| a.nonce),
        ))
    }

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        let Some(account) = view.account(&address).map_err(internal)? else {
            return Ok(Bytes::new());
        };
        if !account.has_code() {
            return Ok(Bytes::new());
        }
        Ok(view
            .code(&account.code_hash)
            .map_err(internal)?
            .unwrap_or_default())
    }

    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        Ok(B256::from(view.storage(&address, &slot).map_err(internal)?))
    }

    fn gas_price(&self) -> RpcResult<U256> {
        let view = self.view()?;
        let spec = self.backend.spec();
        let base = u128::from(self.next_base_fee(&view)?);
        let tip = if spec.is_london() { SUGGESTED_TIP } else { 0 };
        Ok(U256::from((base + tip).max(spec.min_gas_price)))
    }

    fn max_priority_fee(&self) -> RpcResult<U256> {
        let spec = self.backend.spec();
        Ok(U256::from(if spec.is_london() {
            SUGGESTED_TIP
        } else {
            spec.min_gas_price
        }))
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let view = self.view()?;
        let newest =
            Self::resolve(&view, newest)?.ok_or_else(|| err(SERVER, "header not found"))?;
        let count = block_count
            .to::<u64>()
            .clamp(1, FEE_HISTORY_BLOCKS_MAX)
            .min(newest + 1);
        if let Some(p) = &percentiles
            && (p.len() > 100
                || p.windows(2).any(|w| w[0] > w[1])
                || p.iter().any(|x| !(0.0..=100.0).contains(x)))
        {
            return Err(err(
                INVALID_PARAMS,
                "reward percentiles must be ascending values in [0, 100]",
            ));
        }
        let oldest = newest + 1 - count;
        let mut history = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = Vec::new();
        let mut last: Option<Header> = None;
        for number in oldest..=newest {
            let (header, _) =
                Self::header_and_hash(&view, number)?.ok_or_else(|| internal("header missing"))?;
            let base_fee = header.base_fee_per_gas.unwrap_or_default();
            history.base_fee_per_gas.push(u128::from(base_fee));
            history
                .gas_used_ratio
                .push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
            if let Some(p) = &percentiles {
                let txs = view.body(number).map_err(internal)?.unwrap_or_default();
                let receipts = view.receipts(number).map_err(internal)?.unwrap_or_default();
                let mut tips: Vec<(u128, u64)> = txs
                    .iter()
                    .zip(receipts.iter().enumerate())
                    .map(|(tx, (i, r))| {
                        let before = i
                            .checked_sub(1)
                            .map_or(0, |j| receipts[j].receipt.cumulative_gas_used);
                        let tip = alloy_consensus::Transaction::effective_tip_per_gas(
                            &tx.envelope,
                            base_fee,
                        )
                        .unwrap_or(0);
                        (tip, r.receipt.cumulative_gas_used - before)
                    })
                    .collect();
                tips.sort_unstable();
                let total: u64 = tips.iter().map(|t| t.1).sum();
                rewards.push(
                    p.iter()
                        .map(|pct| {
                            let threshold = (total as f64 * pct / 100.0) as u64;
                            let mut sum = 0;
                            tips.iter()
                                .find(|(_, gas)| {
                                    sum += gas;
                                    sum >= threshold
                                })
                                .map_or(0, |t| t.0)
                        })
                        .collect(),
                );
            }
            last = Some(header);
        }
        let last = last.expect("count >= 1");
        let next = self.backend.spec().next_base_fee(
            last.gas_used,
            last.gas_limit,
            last.base_fee_per_gas.unwrap_or_default(),
        );
        history.base_fee_per_gas.push(u128::from(next));
        history.reward = percentiles.map(|_| rewards);
        Ok(history)
    }

    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        self.backend.submit(raw).await.map_err(submit_error)
    }

    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        let view = self.view()?;
        if let Some((number, index)) = view.tx_location(&hash).map_err(internal)? {
            let (header, block_hash) =
                Self::header_and_hash(&view, number)?.ok_or_else(|| internal("header missing"))?;
            let txs = view.body(number).map_err(internal)?.unwrap_or_default();
            let tx = txs
                .get(index as usize)
                .ok_or_else(|| internal("transaction index out of range"))?;
            return Ok(Some(convert::rpc_transaction(
                tx,
                Some((block_hash, &header, u64::from(index))),
            )));
        }
        Ok(self
            .backend
            .pool_tx(&hash)
            .map(|tx| convert::rpc_transaction(&tx, None)))
    }

    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let view = self.view()?;
        let Some((number, index)) = view.tx_location(&hash).map_err(internal)? else {
            return Ok(None);
        };
        let (header, block_hash) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| internal("header missing"))?;
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let receipts = view.receipts(number).map_err(internal)?.unwrap_or_default();
        if index as usize >= txs.len() || txs.len() != receipts.len() {
            return Err(internal(format!(
                "block {number} body and receipts disagree"
            )));
        }
        Ok(Some(convert::rpc_receipt(
            &header,
            block_hash,
            &txs,
            &receipts,
            index as usize,
        )))
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        let view = self.view()?;
        match Self::resolve(&view, number)? {
            Some(n) => self.block(&view, n, full),
            None => Ok(None),
        }
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        let view = self.view()?;
        match view.block_number(&hash).map_err(internal)? {
            Some(n) => self.block(&view, n, full),
            None => Ok(None),
        }
    }

    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        let view = self.view()?;
        let number = view.block_number(&hash).map_err(internal)?;
        Self::tx_count(&view, number)
    }

    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        let view = self.view()?;
        let number = Self::resolve(&view, number)?;
        Self::tx_count(&view, number)
    }

    fn tx_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Transaction>> {
        let view = self.view()?;
        let number = view.block_number(&hash).map_err(internal)?;
        Self::tx_at(&view, number, index)
    }

    fn tx_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let view = self.view()?;
        let number = Self::resolve(&view, number)?;
        Self::tx_at(&view, number, index)
    }

    fn syncing(&self) -> RpcResult<bool> {
        Ok(false)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let view = self.view()?;
        let Some(number) = Self::block_id_number(&view, block)? else {
            return Ok(None);
        };
        let Some((header, hash)) = Self::header_and_hash(&view, number)? else {
            return Ok(None);
        };
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let receipts = view.receipts(number).map_err(internal)?.unwrap_or_default();
        if txs.len() != receipts.len() {
            return Err(internal(format!(
                "block {number} body and receipts disagree"
            )));
        }
        Ok(Some(
            (0..txs.len())
                .map(|i| convert::rpc_receipt(&header, hash, &txs, &receipts, i))
                .collect(),
        ))
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    }

    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        let view = self.view()?;
        let number = view.block_number(&hash).map_err(internal)?;
        Self::uncle_count(&view, number)
    }

    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        let view = self.view()?;
        let number = Self::resolve(&view, number)?;
        Self::uncle_count(&view, number)
    }

    fn proof(
        &self,
        address: Address,
        keys: Vec<String>,
        block: Option<BlockId>,
    ) -> RpcResult<AccountProof> {
        use bttc_engine::merkle::{proof::trie_proof, trie::stored_root};
        if keys.len() > PROOF_KEYS_MAX {
            return Err(err(
                LIMIT_EXCEEDED,
                format!("at most {PROOF_KEYS_MAX} storage keys per proof"),
            ));
        }
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        let hashed = keccak256(address);
        let account = view.account(&address).map_err(internal)?;
        let storage_hash = stored_root(&view, Some(hashed)).map_err(internal)?;
        let account_proof = trie_proof(&view, None, hashed).map_err(internal)?;
        let storage_proof = keys
            .into_iter()
            .map(|key| {
                let slot = storage_key(&key)?;
                let value = view
                    .storage(&address, &U256::from_be_bytes(slot.0))
                    .map_err(internal)?;
                let proof = trie_proof(&view, Some(hashed), keccak256(slot)).map_err(internal)?;
                Ok(StorageProof { key, value, proof })
            })
            .collect::<RpcResult<Vec<_>>>()?;
        Ok(AccountProof {
            address,
            balance: account.map(|a| a.balance).unwrap_or_default(),
            // As geth: an absent account has a zero code hash.
            code_hash: account.map_or(B256::ZERO, |a| a.code_hash),
            nonce: U64::from(account.map(|a| a.nonce).unwrap_or_default()),
            storage_hash,
            account_proof,
            storage_proof,
        })
    }

    fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult> {
        let view = self.view()?;
        Self::check_latest_state(&view, block)?;
        let env = self.pending_env(&view)?;
        let call = self.call_request(&request)?;
        let (access_list, outcome) =
            bttc_engine::exec::create_access_list(self.backend.spec(), &view, &env, &call)
                .map_err(exec_error)?;
        let error = (!outcome.success).then(|| {
            outcome
                .halt
                .clone()
                .unwrap_or_else(|| "execution reverted".to_owned())
        });
        Ok(AccessListResult {
            access_list,
            gas_used: U256::from(outcome.gas_used),
            error,
        })
    }
}

impl<B: RpcBackend> DebugApiServer for EthRpc<B> {
    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes> {
        let view = self.view()?;
        let number = Self::known_block(&view, block)?;
        let (header, _) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| err(SERVER, "header not found"))?;
        Ok(alloy_rlp::encode(&header).into())
    }

    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes> {
        let view = self.view()?;
        let number = Self::known_block(&view, block)?;
        let (header, _) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| err(SERVER, "header not found"))?;
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        Ok(convert::raw_block(&header, &txs).into())
    }

    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>> {
        let view = self.view()?;
        let number = Self::known_block(&view, block)?;
        let receipts = view
            .receipts(number)
            .map_err(internal)?
            .ok_or_else(|| err(SERVER, "header not found"))?;
        Ok(receipts
            .iter()
            .map(|r| convert::raw_receipt(r).into())
            .collect())
    }

    fn raw_transaction(&self, hash: PrefixedHash) -> RpcResult<Bytes> {
        let hash = hash.0;
        let view = self.view()?;
        let Some((number, index)) = view.tx_location(&hash).map_err(internal)? else {
            return Ok(self
                .backend
                .pool_tx(&hash)
                .map(|tx| tx.envelope.encoded_2718().into())
                .unwrap_or_default());
        };
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        let tx = txs
            .get(index as usize)
            .ok_or_else(|| internal("transaction index out of range"))?;
        Ok(tx.envelope.encoded_2718().into())
    }
}

impl<B: RpcBackend> BorApiServer for EthRpc<B> {
    fn root_hash(&self, start: u64, end: u64) -> RpcResult<String> {
        use bttc_engine::merkle::checkpoint::{CheckpointTree, HeaderLeaf};
        let view = self.view()?;
        let tip = Self::tip(&view)?;
        if start > end || end > tip {
            return Err(err(
                INVALID_PARAMS,
                format!("invalid range: start {start}, end {end}, tip {tip}"),
            ));
        }
        if end - start + 1 > ROOT_HASH_BLOCKS_MAX {
            return Err(err(
                INVALID_PARAMS,
                format!("at most {ROOT_HASH_BLOCKS_MAX} blocks per root hash"),
            ));
        }
        let leaves = (start..=end)
            .map(|n| {
                let header = view
                    .header(n)
                    .map_err(internal)?
                    .ok_or_else(|| internal(format!("header {n} missing")))?;
                Ok(HeaderLeaf {
                    number: n,
                    time: header.timestamp,
                    tx_root: header.transactions_root,
                    receipt_root: header.receipts_root,
                })
            })
            .collect::<RpcResult<Vec<_>>>()?;
        let root = CheckpointTree::from_headers(&leaves).root();
        Ok(alloy_primitives::hex::encode(root))
    }

    fn author(&self, block: Option<BlockId>) -> RpcResult<Address> {
        let view = self.view()?;
        let number = Self::block_id_number(&view, block.unwrap_or_default())?
            .ok_or_else(|| err(SERVER, "unknown block"))?;
        let (header, _) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| err(SERVER, "unknown block"))?;
        Ok(bttc_engine::chain::bor::author(&header))
    }

    fn current_validators(&self) -> RpcResult<Vec<BorValidator>> {
        use alloy_sol_types::SolCall;
        use bttc_engine::root::contracts::{BOR_VALIDATOR_SET, child::BorValidatorSet};
        let view = self.view()?;
        let tip = Self::tip(&view)?;
        let has_set = view
            .account(&BOR_VALIDATOR_SET)
            .map_err(internal)?
            .is_some_and(|a| a.code_hash != alloy_primitives::KECCAK256_EMPTY);
        if !has_set {
            let (header, _) =
                Self::header_and_hash(&view, tip)?.ok_or_else(|| internal("tip header missing"))?;
            return Ok(vec![BorValidator {
                id: 0,
                signer: bttc_engine::chain::bor::author(&header),
                power: 1,
                accum: 0,
            }]);
        }
        let env = self.pending_env(&view)?;
        let request = CallRequest {
            from: None,
            to: Some(BOR_VALIDATOR_SET),
            gas: Some(self.limits.gas_cap),
            gas_price: None,
            value: U256::ZERO,
            input: BorValidatorSet::getBorValidatorsCall {
                number: U256::from(tip + 1),
            }
            .abi_encode()
            .into(),
            access_list: Default::default(),
        };
        let outcome = call(self.backend.spec(), &view, &env, &request).map_err(exec_error)?;
        if !outcome.success {
            return Err(call_error(&outcome));
        }
        let set = BorValidatorSet::getBorValidatorsCall::abi_decode_returns(&outcome.output)
            .map_err(|e| internal(format!("getBorValidators answer: {e}")))?;
        let mut validators = set
            ._0
            .into_iter()
            .zip(set._1)
            .map(|(signer, power)| BorValidator {
                id: 0,
                signer,
                power: power.saturating_to(),
                accum: 0,
            })
            .collect::<Vec<_>>();
        // Bor keeps its set sorted by address.
        validators.sort_by_key(|v| v.signer);
        Ok(validators)
    }
}

impl<B: RpcBackend> NetApiServer for EthRpc<B> {
    fn version(&self) -> RpcResult<String> {
        Ok(self.backend.spec().chain_id.to_string())
    }
}

impl<B: RpcBackend> TxpoolApiServer for EthRpc<B> {
    fn content(&self) -> RpcResult<TxpoolContent> {
        let (pending, queued) = self.backend.pool_content();
        let side = |content: bttc_engine::chain::mempool::PoolContent| -> TxpoolSide {
            content
                .into_iter()
                .map(|(sender, txs)| {
                    (
                        sender.to_checksum(None),
                        txs.into_iter()
                            .map(|(nonce, tx)| {
                                (nonce.to_string(), convert::rpc_transaction(&tx, None))
                            })
                            .collect(),
                    )
                })
                .collect()
        };
        Ok(TxpoolContent {
            pending: side(pending),
            queued: side(queued),
        })
    }

    fn status(&self) -> RpcResult<TxpoolStatus> {
        let (pending, queued) = self.backend.pool_counts();
        Ok(TxpoolStatus {
            pending: U64::from(pending),
            queued: U64::from(queued),
        })
    }
}

impl<B: RpcBackend> Web3ApiServer for EthRpc<B> {
    fn client_version(&self) -> RpcResult<String> {
        Ok(format!(
            "bttc/v{}/{}-{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    }
}
