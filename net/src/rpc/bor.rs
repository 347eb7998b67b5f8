//! The `bor_*` methods: checkpoint roots, block authors, current producers.

use super::{RpcBackend, handlers::*};
use alloy_primitives::{Address, U256};
use alloy_rpc_types_eth::BlockId;
use bttc_engine::{
    chain::BlockReader,
    exec::{CallRequest, StateReader, call},
};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
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
    /// The last milestone this node holds: the final block's number and hash and the
    /// Delivery height that decided it; `null` on a chain without milestones (a dev node).
    #[method(name = "getLatestMilestone")]
    fn latest_milestone(&self) -> RpcResult<Option<MilestoneAnswer>>;
}

/// A milestone as `bor_getLatestMilestone` answers it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MilestoneAnswer {
    pub number: alloy_primitives::U64,
    pub hash: alloy_primitives::B256,
    pub delivery_height: u64,
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

impl<B: RpcBackend> BorApiServer for EthRpc<B> {
    fn latest_milestone(&self) -> RpcResult<Option<MilestoneAnswer>> {
        Ok(self.backend.milestone().map(|m| MilestoneAnswer {
            number: alloy_primitives::U64::from(m.number),
            hash: m.hash,
            delivery_height: m.delivery_height,
        }))
    }

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
        let number = self
            .block_id_number(&view, block.unwrap_or_default())?
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
