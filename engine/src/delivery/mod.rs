//! The Delivery chain: Tendermint consensus (and, later, the checkpoint, clerk, staking and
//! span modules).

pub mod app;
pub mod block;
pub mod host;
pub mod milestone;
pub mod side_tx;
pub mod signing;
pub mod tendermint;
pub mod validators;
pub mod wal;
pub mod wire;
