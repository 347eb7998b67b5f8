//! bttc-net: JSON-RPC server (and, later, QUIC peer-to-peer transport and gossip).

pub mod p2p;
pub mod rpc;
