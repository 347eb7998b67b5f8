//! bttc-node: the drivers that carry out what the engine returns (threads, timers, QUIC, MDBX,
//! JSON-RPC) and the assemblies of a Delivery validator, a BTTC chain node and a local
//! devnet. Drivers only move bytes and time; every protocol rule is in `bttc-engine`.

pub mod chain;
pub mod delivery;
pub mod devnet;
pub mod import;
pub mod network;
pub mod replay;
pub mod side_checks;

use alloy_primitives::Address;
use std::{net::SocketAddr, path::PathBuf};

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl bttc_engine::env::Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] bttc_storage::StorageError),
    #[error(transparent)]
    P2p(#[from] bttc_net::p2p::transport::P2pError),
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Json {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("genesis {path}: {why}")]
    Genesis { path: PathBuf, why: &'static str },
    #[error("key {0} is not a validator of this genesis")]
    NotAValidator(Address),
    #[error("key file {path}: {why}")]
    Key { path: PathBuf, why: &'static str },
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting a thread or runtime: {source}")]
    Runtime { source: std::io::Error },
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
    #[error("{0}")]
    Usage(&'static str),
    #[error(transparent)]
    Chain(Box<chain::ChainError>),
    #[error(transparent)]
    Import(Box<import::ImportError>),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error("devnet: {0}")]
    Devnet(#[from] devnet::DevnetError),
    #[error("the BTTC chain store: {0}")]
    BttcStore(Box<dyn std::error::Error + Send + Sync>),
}

impl From<import::ImportError> for NodeError {
    fn from(e: import::ImportError) -> Self {
        Self::Import(Box::new(e))
    }
}

impl From<chain::ChainError> for NodeError {
    fn from(e: chain::ChainError) -> Self {
        Self::Chain(Box::new(e))
    }
}
