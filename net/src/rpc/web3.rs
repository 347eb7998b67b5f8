//! The `web3_*` methods.

use super::{RpcBackend, handlers::*};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
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
