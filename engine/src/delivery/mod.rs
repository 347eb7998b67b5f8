//! The Delivery chain: Tendermint consensus (and, later, the checkpoint, clerk, staking and
//! span modules).

pub mod tendermint;
pub mod validators;
