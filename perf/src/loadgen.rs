//! loadgen: signed ERC-20 transfers sent over JSON-RPC to a bttc node at a target rate for a
//! fixed time; reports the send rate, the rate at which they are included in blocks, and the
//! node's CPU use. Everything is signed before the clock starts, so signing costs nothing in
//! the measured window.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex, keccak256};
use alloy_signer_local::PrivateKeySigner;
use bttc_engine::chain::genesis::dev_signers;
use bttc_perf::{GWEI, client, sign, transfer_calldata, wait_receipt};
use clap::Parser;
use eyre::{WrapErr, bail, eyre};
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::HttpClient,
    rpc_params,
};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(about = "ERC-20 transfer load against a bttc node")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Seconds of sustained load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Transfers per second to send.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Distinct sending accounts.
    #[arg(long, default_value_t = 2_000)]
    senders: usize,
    /// Transactions per JSON-RPC batch request.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Concurrent HTTP senders.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Process id of the node, for its CPU use.
    #[arg(long)]
    node_pid: Option<u32>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How often setup polls for a receipt.
const RECEIPT_POLL: Duration = Duration::from_millis(100);
const TRANSFER_GAS: u64 = 80_000;

/// Sends raw transactions in JSON-RPC batches; returns (accepted, refused) and the first error.
async fn send_batch(
    client: &HttpClient,
    raws: &[Bytes],
) -> eyre::Result<(u64, u64, Option<String>)> {
    let mut batch = BatchRequestBuilder::new();
    for raw in raws {
        batch.insert("eth_sendRawTransaction", rpc_params![raw])?;
    }
    let answers = client.batch_request::<B256>(batch).await?;
    let (mut ok, mut refused, mut first) = (0, 0, None);
    for answer in answers.iter() {
        match answer {
            Ok(_) => ok += 1,
            Err(e) => {
                refused += 1;
                first.get_or_insert_with(|| e.message().to_owned());
            }
        }
    }
    Ok((ok, refused, first))
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let rpc = client(&args.rpc)?;
    let chain_id: U256 = rpc
        .request("eth_chainId", rpc_params![])
        .await
        .wrap_err("node not reachable")?;
    let chain_id = chain_id.to::<u64>();
    let funder = dev_signers(1)?.remove(0);
    let artifact: Value = serde_json::from_str(include_str!(
        "../../tests/contracts/artifacts/TestToken.json"
    ))?;
    let mut code: Vec<u8> = hex::decode(
        artifact["bytecode"]
            .as_str()
            .ok_or_else(|| eyre!("artifact"))?,
    )?;
    code.extend_from_slice(&U256::from(10u128.pow(30)).to_be_bytes::<32>());

    // Setup: deploy the token, give every sender tokens and gas money.
    let mut nonce: u64 = rpc
        .request::<U256, _>(
            "eth_getTransactionCount",
            rpc_params![funder.address(), "pending"],
        )
        .await?
        .to();
    let deploy = sign(
        &funder,
        chain_id,
        nonce,
        TxKind::Create,
        U256::ZERO,
        code.into(),
        3_000_000,
    );
    nonce += 1;
    let deploy_hash: B256 = rpc
        .request("eth_sendRawTransaction", rpc_params![deploy])
        .await?;
    let receipt = wait_receipt(&rpc, deploy_hash, RECEIPT_POLL).await?;
    let token: Address = serde_json::from_value(receipt["contractAddress"].clone())?;
    println!("token deployed at {token}");

    let senders: Vec<PrivateKeySigner> = (0..args.senders)
        .map(|i| {
            PrivateKeySigner::from_bytes(&keccak256(format!("loadgen sender {i}")))
                .expect("valid key")
        })
        .collect();
    let total = (args.rate * args.duration) as usize;
    let per_sender = total.div_ceil(args.senders) as u64;
    // The pool holds at most 2,048 transactions per sender: fund in rounds that fit.
    for group in senders.chunks(500) {
        let mut setup = Vec::new();
        for s in group {
            let gas_money = U256::from(per_sender as u128 * u128::from(TRANSFER_GAS) * 100 * GWEI);
            setup.push(sign(
                &funder,
                chain_id,
                nonce,
                TxKind::Call(s.address()),
                gas_money,
                Bytes::new(),
                21_000,
            ));
            setup.push(sign(
                &funder,
                chain_id,
                nonce + 1,
                TxKind::Call(token),
                U256::ZERO,
                transfer_calldata(s.address(), 1_000_000),
                TRANSFER_GAS,
            ));
            nonce += 2;
        }
        for chunk in setup.chunks(args.batch) {
            let (_, refused, first) = send_batch(&rpc, chunk).await?;
            if refused > 0 {
                bail!("setup transactions refused: {first:?}");
            }
        }
        wait_receipt(
            &rpc,
            keccak256(setup.last().expect("group not empty")),
            RECEIPT_POLL,
        )
        .await?;
    }
    println!("funded {} senders", args.senders);

    // Sign the whole load up front, round-robin over senders so that nonces stay in order.
    let started_signing = Instant::now();
    let load: Vec<Bytes> = (0..total)
        .into_par_iter()
        .map(|i| {
            let s = i % args.senders;
            let n = (i / args.senders) as u64;
            let to = Address::from_word(keccak256((i as u64).to_be_bytes()));
            sign(
                &senders[s],
                chain_id,
                n,
                TxKind::Call(token),
                U256::ZERO,
                transfer_calldata(to, 1),
                TRANSFER_GAS,
            )
        })
        .collect();
    println!(
        "signed {total} transfers in {:.1} s",
        started_signing.elapsed().as_secs_f64()
    );

    let start_block: U256 = rpc.request("eth_blockNumber", rpc_params![]).await?;
    let cpu_start = args.node_pid.and_then(cpu_seconds);
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let load = Arc::new(load);
    let batches_total = total.div_ceil(args.batch);
    let next_batch = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (client, load, sent, refused, next_batch, first_error) = (
            client(&args.rpc)?,
            load.clone(),
            sent.clone(),
            refused.clone(),
            next_batch.clone(),
            first_error.clone(),
        );
        let (batch, rate) = (args.batch, args.rate);
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next_batch.fetch_add(1, Ordering::SeqCst) as usize;
                if b >= batches_total {
                    return eyre::Ok(());
                }
                // Pace: batch b may leave once the schedule reaches its first transaction.
                let due = Duration::from_secs_f64((b * batch) as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let chunk = &load[b * batch..((b + 1) * batch).min(load.len())];
                let (ok, bad, first) = send_batch(&client, chunk).await?;
                sent.fetch_add(ok, Ordering::Relaxed);
                refused.fetch_add(bad, Ordering::Relaxed);
                if let Some(e) = first {
                    first_error.lock().expect("not poisoned").get_or_insert(e);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let send_seconds = started.elapsed().as_secs_f64();

    // Inclusion: wait until every accepted transfer is in a block (or 30 s pass).
    let accepted = sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut included = 0u64;
    let mut last_block = start_block.to::<u64>();
    let mut last_inclusion = started.elapsed();
    let mut per_block = Vec::new();
    while included < accepted && Instant::now() < deadline {
        let tip: U256 = rpc.request("eth_blockNumber", rpc_params![]).await?;
        for n in last_block + 1..=tip.to::<u64>() {
            let block: Value = rpc
                .request("eth_getBlockByNumber", rpc_params![U256::from(n), false])
                .await?;
            let txs = block["transactions"].as_array().map_or(0, Vec::len) as u64;
            included += txs;
            per_block.push(json!({"number": n, "txs": txs, "gasUsed": block["gasUsed"]}));
            if txs > 0 {
                last_inclusion = started.elapsed();
            }
        }
        last_block = tip.to();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = match (cpu_start, args.node_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some((b - a) / last_inclusion.as_secs_f64()),
        _ => None,
    };
    let inclusion_seconds = last_inclusion.as_secs_f64();
    let report = json!({
        "tool": "perf/loadgen",
        "rpc": args.rpc,
        "target_rate_tx_s": args.rate,
        "duration_s": args.duration,
        "senders": args.senders,
        "batch": args.batch,
        "connections": args.connections,
        "signed": total,
        "accepted": accepted,
        "refused": refused.load(Ordering::Relaxed),
        "first_refusal": *first_error.lock().expect("not poisoned"),
        "send_seconds": send_seconds,
        "send_rate_tx_s": accepted as f64 / send_seconds,
        "included": included,
        "inclusion_seconds": inclusion_seconds,
        "inclusion_rate_tx_s": included as f64 / inclusion_seconds,
        "node_cpu_cores": cpu,
        "blocks": per_block,
    });
    println!(
        "sent {accepted} in {send_seconds:.1} s ({:.0} tx/s); included {included} in {inclusion_seconds:.1} s ({:.0} tx/s); node CPU {}",
        accepted as f64 / send_seconds,
        included as f64 / inclusion_seconds,
        cpu.map_or("unknown".to_owned(), |c| format!("{c:.2} cores")),
    );
    if let Some(out) = args.out {
        std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
        println!("report written to {}", out.display());
    }
    if included < accepted {
        bail!(
            "{} accepted transfers were not included within 30 s after sending",
            accepted - included
        );
    }
    Ok(())
}
