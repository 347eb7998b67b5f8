//! The root-chain side of BTTC: what validators sign for checkpoints, and the payloads that
//! root-chain contracts verify (checkpoint submissions, exits with receipt proofs).

pub mod checkpoint;
pub mod contracts;
pub mod exit;
pub mod testing;
