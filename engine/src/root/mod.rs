//! The root-chain side of BTTC: what validators sign for checkpoints, and the payloads that
//! root-chain contracts verify (checkpoint submissions, exits with receipt proofs).

pub mod checkpoint;
pub mod contracts;
pub mod exit;
pub mod state_sync;
pub mod testing;

/// `payload` (already RLP items, back to back) wrapped in an RLP list header.
pub(crate) fn rlp_list(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    alloy_rlp::Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}
