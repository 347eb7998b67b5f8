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

/// The reason string of a Solidity `Error(string)` revert, or the output in hex.
pub fn revert_reason(output: &[u8]) -> String {
    use alloy_sol_types::SolError;
    alloy_sol_types::Revert::abi_decode(output)
        .map(|r| r.reason)
        .unwrap_or_else(|_| format!("0x{}", alloy_primitives::hex::encode(output)))
}
