//! Conversions from stored chain data to the geth-shaped JSON-RPC types.

use alloy_consensus::{
    Header, ReceiptEnvelope, ReceiptWithBloom, Transaction as _, TxType,
    transaction::{Recovered, TransactionInfo},
};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Sealed, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{Block, BlockTransactions, Log, Transaction, TransactionReceipt};
use bttc_engine::primitives::{RecoveredTx, StoredReceipt};

/// An RPC transaction; `location` is `(block hash, number, index, header)` when mined.
pub fn rpc_transaction(tx: &RecoveredTx, location: Option<(B256, &Header, u64)>) -> Transaction {
    let info = match location {
        Some((block_hash, header, index)) => TransactionInfo {
            hash: Some(tx.hash),
            index: Some(index),
            block_hash: Some(block_hash),
            block_number: Some(header.number),
            base_fee: header.base_fee_per_gas,
            // geth's transaction objects carry no block timestamp (the conformance suite).
            block_timestamp: None,
        },
        None => TransactionInfo {
            hash: Some(tx.hash),
            ..Default::default()
        },
    };
    Transaction::from_transaction(
        Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
        info,
    )
}

/// An RPC block; `total_difficulty` is given for proof-of-work chains.
pub fn rpc_block(
    header: &Header,
    hash: B256,
    txs: &[RecoveredTx],
    full: bool,
    total_difficulty: Option<U256>,
) -> Block {
    let transactions = if full {
        BlockTransactions::Full(
            txs.iter()
                .enumerate()
                .map(|(i, tx)| rpc_transaction(tx, Some((hash, header, i as u64))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(txs.iter().map(|t| t.hash).collect())
    };
    let size = block_rlp_len(header, txs);
    let rpc_header = alloy_rpc_types_eth::Header::from_consensus(
        Sealed::new_unchecked(header.clone(), hash),
        total_difficulty,
        Some(U256::from(size)),
    );
    let mut block = Block::new(rpc_header, transactions);
    if header.withdrawals_root.is_some() {
        block.withdrawals = Some(Default::default());
    }
    block
}

/// Exact length of the block's RLP: `[header, [txs], [] ommers, ([] withdrawals)]`, with
/// typed transactions wrapped as RLP strings as in a block body.
pub fn block_rlp_len(header: &Header, txs: &[RecoveredTx]) -> usize {
    let txs_payload: usize = txs.iter().map(|t| t.envelope.network_len()).sum();
    let list = |payload: usize| alloy_rlp::length_of_length(payload) + payload;
    let mut payload = header.length() + list(txs_payload) + list(0);
    if header.withdrawals_root.is_some() {
        payload += list(0);
    }
    list(payload)
}

/// RPC logs of one receipt; `first_log_index` is the block-wide index of its first log.
pub fn rpc_logs(
    receipt: &StoredReceipt,
    tx: &RecoveredTx,
    block_hash: B256,
    header: &Header,
    tx_index: u64,
    first_log_index: u64,
) -> Vec<Log> {
    receipt
        .receipt
        .logs
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(block_hash),
            block_number: Some(header.number),
            block_timestamp: Some(header.timestamp),
            transaction_hash: Some(tx.hash),
            transaction_index: Some(tx_index),
            log_index: Some(first_log_index + i as u64),
            removed: false,
        })
        .collect()
}

/// The RPC receipt of transaction `index` of a block.
pub fn rpc_receipt(
    header: &Header,
    block_hash: B256,
    txs: &[RecoveredTx],
    receipts: &[StoredReceipt],
    index: usize,
) -> TransactionReceipt {
    let tx = &txs[index];
    let receipt = &receipts[index];
    let previous_gas = index
        .checked_sub(1)
        .map_or(0, |i| receipts[i].receipt.cumulative_gas_used);
    let first_log_index: usize = receipts[..index].iter().map(|r| r.receipt.logs.len()).sum();
    let logs = rpc_logs(
        receipt,
        tx,
        block_hash,
        header,
        index as u64,
        first_log_index as u64,
    );
    let bloom = receipt.logs_bloom();
    let consensus = alloy_consensus::Receipt {
        status: receipt.receipt.status,
        cumulative_gas_used: receipt.receipt.cumulative_gas_used,
        logs,
    };
    let ty = TxType::try_from(receipt.tx_type).unwrap_or(TxType::Legacy);
    let inner = ReceiptEnvelope::from_typed(ty, ReceiptWithBloom::new(consensus, bloom));
    let contract_address = (tx.envelope.kind().is_create()
        && receipt.receipt.status.coerce_status())
    .then(|| tx.sender.create(tx.envelope.nonce()));
    TransactionReceipt {
        inner,
        transaction_hash: tx.hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block_hash),
        block_number: Some(header.number),
        gas_used: receipt.receipt.cumulative_gas_used - previous_gas,
        effective_gas_price: tx.envelope.effective_gas_price(header.base_fee_per_gas),
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to: tx.envelope.to(),
        contract_address,
    }
}

/// The block's consensus encoding (`debug_getRawBlock`): `[header, [txs], [] ommers,
/// ([] withdrawals)]`.
pub fn raw_block(header: &Header, txs: &[RecoveredTx]) -> Vec<u8> {
    let block = alloy_consensus::Block {
        header: header.clone(),
        body: alloy_consensus::BlockBody {
            transactions: txs.iter().map(|t| t.envelope.clone()).collect::<Vec<_>>(),
            ommers: Vec::new(),
            withdrawals: header.withdrawals_root.map(|_| Default::default()),
        },
    };
    alloy_rlp::encode(&block)
}

/// A receipt's EIP-2718 encoding (`debug_getRawReceipts`).
pub fn raw_receipt(receipt: &StoredReceipt) -> Vec<u8> {
    let ty = TxType::try_from(receipt.tx_type).unwrap_or(TxType::Legacy);
    ReceiptEnvelope::from_typed(ty, ReceiptWithBloom::from(receipt.receipt.clone())).encoded_2718()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Block, BlockBody, SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
    use alloy_primitives::{Address, Signature, TxKind};

    #[test]
    fn block_size_is_the_length_of_the_block_rlp() {
        let sig = Signature::new(U256::from(1), U256::from(2), false);
        let legacy = TxLegacy {
            chain_id: Some(1),
            gas_limit: 21_000,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let typed = TxEip1559 {
            chain_id: 1,
            gas_limit: 21_000,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let envelopes: Vec<TxEnvelope> = vec![
            legacy.into_signed(sig).into(),
            typed.into_signed(sig).into(),
        ];
        let txs: Vec<RecoveredTx> = envelopes
            .iter()
            .map(|e| RecoveredTx::new_unchecked(e.clone(), Address::ZERO))
            .collect();
        for withdrawals in [None, Some(Default::default())] {
            let header = Header {
                withdrawals_root: withdrawals
                    .as_ref()
                    .map(|_| alloy_consensus::EMPTY_ROOT_HASH),
                ..Default::default()
            };
            let block = Block {
                header: header.clone(),
                body: BlockBody {
                    transactions: envelopes.clone(),
                    ommers: vec![],
                    withdrawals,
                },
            };
            assert_eq!(
                block_rlp_len(&header, &txs),
                alloy_rlp::encode(&block).len()
            );
        }
    }
}
