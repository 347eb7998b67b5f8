//! The `debug_getRaw*` methods.

use super::{RpcBackend, convert, handlers::*};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::Bytes;
use alloy_rpc_types_eth::BlockId;
use bttc_engine::chain::BlockReader;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
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

impl<B: RpcBackend> DebugApiServer for EthRpc<B> {
    fn raw_header(&self, block: BlockId) -> RpcResult<Bytes> {
        let view = self.view()?;
        let number = self.known_block(&view, block)?;
        let (header, _) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| err(SERVER, "header not found"))?;
        Ok(alloy_rlp::encode(&header).into())
    }

    fn raw_block(&self, block: BlockId) -> RpcResult<Bytes> {
        let view = self.view()?;
        let number = self.known_block(&view, block)?;
        let (header, _) =
            Self::header_and_hash(&view, number)?.ok_or_else(|| err(SERVER, "header not found"))?;
        let txs = view.body(number).map_err(internal)?.unwrap_or_default();
        Ok(convert::raw_block(&header, &txs).into())
    }

    fn raw_receipts(&self, block: BlockId) -> RpcResult<Vec<Bytes>> {
        let view = self.view()?;
        let number = self.known_block(&view, block)?;
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
