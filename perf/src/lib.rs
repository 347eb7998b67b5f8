//! Shared pieces of the whole-system load tools: a JSON-RPC client, signing, ERC-20 calldata.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use eyre::bail;
use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use serde_json::Value;
use std::time::{Duration, Instant};

pub const GWEI: u128 = 1_000_000_000;

/// An HTTP JSON-RPC client with room for large batches and answers.
pub fn client(url: &str) -> eyre::Result<HttpClient> {
    Ok(HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(120))
        .max_request_size(64 << 20)
        .max_response_size(64 << 20)
        .build(url)?)
}

/// A signed EIP-1559 transaction (100 gwei fee cap, 1 gwei tip), EIP-2718 encoded.
pub fn sign(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas: u64,
) -> Bytes {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to,
        value,
        input,
        ..Default::default()
    };
    let signature = key
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing cannot fail");
    TxEnvelope::from(tx.into_signed(signature))
        .encoded_2718()
        .into()
}

/// ERC-20 `transfer(to, amount)` calldata.
pub fn transfer_calldata(to: Address, amount: u64) -> Bytes {
    let mut data = keccak256("transfer(address,uint256)")[..4].to_vec();
    data.extend_from_slice(to.into_word().as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data.into()
}

/// Waits up to 120 s for `hash`'s receipt, asking every `poll`.
pub async fn wait_receipt(client: &HttpClient, hash: B256, poll: Duration) -> eyre::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let receipt: Value = client
            .request("eth_getTransactionReceipt", rpc_params![hash])
            .await?;
        if !receipt.is_null() {
            return Ok(receipt);
        }
        if Instant::now() > deadline {
            bail!("transaction {hash} not included within 120 s");
        }
        tokio::time::sleep(poll).await;
    }
}

/// One JSON-RPC call over a fresh HTTP/1.1 connection, blocking: `result`, or `None` if the
/// node does not answer (tools that poll several nodes at a high rate use it).
pub fn rpc_blocking(addr: std::net::SocketAddr, method: &str, params: Value) -> Option<Value> {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let value: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1)?).ok()?;
    Some(value["result"].clone())
}

/// A hex quantity (`"0x1f"`) as a number.
pub fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}
