//! The frames validators exchange are the engine's wire messages, one per QUIC stream.

pub use bttc_engine::delivery::wire::{BLOCKS_PER_RESPONSE_MAX, FRAME_MAX, Wire};
