//! The `net_*` methods.

use super::{RpcBackend, handlers::*};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
#[rpc(server, namespace = "net")]
pub trait NetApi {
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
}

impl<B: RpcBackend> NetApiServer for EthRpc<B> {
    fn version(&self) -> RpcResult<String> {
        Ok(self.backend.spec().chain_id.to_string())
    }
}
