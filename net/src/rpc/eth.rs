//! The `eth_*` methods.

use super::{RpcBackend, SubmitError, convert, handlers::*};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use alloy_rpc_types_eth::{
    AccessListResult, Block, BlockId, BlockNumberOrTag, FeeHistory, Filter, Log, Transaction,
    TransactionReceipt, TransactionRequest,
};
use bttc_engine::{
    chain::{BlockReader, mempool::PoolError},
    exec::StateReader,
};
use jsonrpsee::{
    core::{RpcResult, async_trait},
    proc_macros::rpc,
    types::ErrorObjectOwned,
};
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
        self.check_latest_state(&view, block)?;
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
        self.check_latest_state(&view, block)?;
        Ok(U64::from(
            view.account(&address)
                .map_err(internal)?
                .map_or(0, |a| a.nonce),
        ))
    }

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let view = self.view()?;
        self.check_latest_state(&view, block)?;
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
        self.check_latest_state(&view, block)?;
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
        let newest = self
            .resolve(&view, newest)?
            .ok_or_else(|| err(SERVER, "header not found"))?;
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
        match self.resolve(&view, number)? {
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
        let number = self.resolve(&view, number)?;
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
        let number = self.resolve(&view, number)?;
        Self::tx_at(&view, number, index)
    }

    fn syncing(&self) -> RpcResult<bool> {
        Ok(false)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let view = self.view()?;
        let Some(number) = self.block_id_number(&view, block)? else {
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
        let number = self.resolve(&view, number)?;
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
        self.check_latest_state(&view, block)?;
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
        self.check_latest_state(&view, block)?;
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
