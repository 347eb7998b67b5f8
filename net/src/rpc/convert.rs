//! Conversions from stored chain data to the geth-shaped JSON-RPC types.

use alloy_consensus::{
    Header, ReceiptEnvelope, ReceiptWithBloom, Transaction as _, TxType,
    transaction::{Recovered, TransactionInfo},
};
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
            block_timestamp: Some(header.timestamp),
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

pub fn rpc_block(header: &Header, hash: B256, txs: &[RecoveredTx], full: bool) -> Block {
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
    // Size of the RLP block: header, transactions, and empty ommers (and withdrawals).
    let txs_len: usize = txs.iter().map(|t| t.encoded_len + 3).sum();
    let size = header.length() + txs_len + 8;
    let rpc_header = alloy_rpc_types_eth::Header::from_consensus(
        Sealed::new_unchecked(header.clone(), hash),
        None,
        Some(U256::from(size)),
    );
    let mut block = Block::new(rpc_header, transactions);
    if header.withdrawals_root.is_some() {
        block.withdrawals = Some(Default::default());
    }
    block
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
