//! A full node catching up from genesis over QUIC against importing the same blocks in
//! process, in one run. It makes a one-validator network (`bttc devnet --init-only`), builds
//! N blocks of ERC-20 transfers into the validator's database off line (the engine's own
//! producer on MDBX, the genesis dated so that the last block is just in the past), then:
//!
//! 1. import: a fresh database takes the same blocks through the same path a node uses for a
//!    peer's block (`RawBlock::recover`, then `ChainHost::handle_block`: seal and header
//!    checks, parallel execution, state root, durable commit), in process;
//! 2. catch-up: the validator process starts on its database, a full node process starts
//!    empty and syncs over QUIC (range requests, the Delivery chain beside it); the time runs
//!    from the full node's start to its head reaching block N.
//!
//! Both report blocks/s and tx/s, and the ratio catch-up / import.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use bttc_engine::{
    chain::{
        bor::{
            host::{BorStore, ChainHost},
            wire::RawBlock,
        },
        builder::TxSource,
        genesis::dev_signers,
    },
    exec::ExecMode,
    primitives::{DeliveryHeight, RecoveredTx},
};
use bttc_node::delivery::DeliveryGenesis;
use bttc_perf::{GWEI, rpc_blocking as rpc, transfer_calldata};
use bttc_storage::{ChainDb, SyncMode, bor::BorDb};
use clap::Parser;
use eyre::{Context, bail, eyre};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(about = "Full-node catch-up over QUIC against in-process import of the same blocks")]
struct Args {
    /// The bttc binary (a release build).
    #[arg(long, default_value = "target/release/bttc")]
    bttc: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    blocks: u64,
    /// ERC-20 transfers per block.
    #[arg(long = "txs-per-block", default_value_t = 50)]
    txs_per_block: usize,
    #[arg(long = "base-port", default_value_t = 30_500)]
    base_port: u16,
    /// Report file (JSON); printed to stdout as well.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Senders of the transfers (dev accounts 1..=SENDERS; account 0 deploys the token).
const SENDERS: usize = 9;

fn head(addr: SocketAddr) -> Option<u64> {
    let v = rpc(addr, "eth_blockNumber", json!([]))?;
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// A block's transactions, in order.
struct Listed(std::vec::IntoIter<Arc<RecoveredTx>>);

impl TxSource for Listed {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.0.next()
    }
    fn skip_sender(&mut self, _: &Address) {}
}

fn sign(
    key: &alloy_signer_local::PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: TxKind,
    input: Bytes,
    gas: u64,
) -> RecoveredTx {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to,
        input,
        ..Default::default()
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signing");
    RecoveredTx::new_unchecked(TxEnvelope::from(tx.into_signed(signature)), key.address())
}

fn read_key(path: &Path) -> eyre::Result<secp256k1::SecretKey> {
    let text = std::fs::read_to_string(path)?;
    let bytes: [u8; 32] = hex::decode(text.trim())?
        .try_into()
        .map_err(|_| eyre!("a key of 32 bytes"))?;
    Ok(secp256k1::SecretKey::from_byte_array(bytes)?)
}

fn spawn(bttc: &Path, args: &[&str], log: &Path) -> eyre::Result<Child> {
    let log = std::fs::File::create(log)?;
    Ok(Command::new(bttc)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("CATCHUP_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on a child this tool started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let net = dir.path();
    let out = Command::new(&args.bttc)
        .args(["devnet", "--init-only", "--validators", "1", "--base-port"])
        .arg(args.base_port.to_string())
        .arg("--datadir")
        .arg(net)
        .output()
        .with_context(|| format!("running {}", args.bttc.display()))?;
    if !out.status.success() {
        bail!("devnet init: {}", String::from_utf8_lossy(&out.stderr));
    }
    // One span covers the whole run, and the genesis is dated so that the chain (2 s blocks,
    // 6 s at a sprint's start) ends ten minutes ago.
    let genesis_path = net.join("genesis.json");
    let mut genesis: Value = serde_json::from_str(&std::fs::read_to_string(&genesis_path)?)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let sprint = genesis["bttc"]["sprint"].as_u64().unwrap_or(8);
    genesis["bttc"]["first_span_end"] = json!((args.blocks / sprint + 1_000) * sprint - 1);
    genesis["bttc"]["span"] = json!(1_000 * sprint);
    genesis["bttc"]["timestamp"] = json!(now - args.blocks * 5 / 2 - 600);
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&genesis)?)?;
    let delivery = DeliveryGenesis::load(&genesis_path)?;
    let (bor_genesis, spec) = delivery
        .bttc_genesis()
        .ok_or_else(|| eyre!("the genesis has no BTTC chain"))?;

    // Build the chain into the validator's database.
    let node0 = net.join("node-0");
    let key = read_key(&node0.join("validator.key"))?;
    let built = Instant::now();
    let txs_total = {
        let db = Arc::new(ChainDb::open(
            &node0.join("chain"),
            spec.name,
            SyncMode::SafeNoSync,
        )?);
        let mut store = BorDb::open(db, &bor_genesis, &spec)?;
        let mut host = ChainHost::open(spec.clone(), Some(key), ExecMode::Parallel, &store);
        host.delivery
            .update(DeliveryHeight(0), &[], Default::default());
        let signers = dev_signers(SENDERS + 1)?;
        let artifact: Value = serde_json::from_str(include_str!(
            "../../tests/contracts/artifacts/TestToken.json"
        ))?;
        let bytecode = artifact["bytecode"]
            .as_str()
            .ok_or_else(|| eyre!("artifact"))?;
        let mut code = hex::decode(bytecode.trim_start_matches("0x"))?;
        code.extend_from_slice(&U256::from(10u128.pow(30)).to_be_bytes::<32>());
        let token = signers[0].address().create(0);
        let mut nonces = [0u64; SENDERS + 1];
        let mut txs_total = 0usize;
        for number in 1..=args.blocks {
            let txs: Vec<RecoveredTx> = match number {
                1 => vec![sign(
                    &signers[0],
                    spec.chain_id,
                    0,
                    TxKind::Create,
                    code.clone().into(),
                    3_000_000,
                )],
                2 => (1..=SENDERS)
                    .map(|s| {
                        let to = signers[s].address();
                        sign(
                            &signers[0],
                            spec.chain_id,
                            s as u64,
                            TxKind::Call(token),
                            transfer_calldata(to, 10u64.pow(18)),
                            100_000,
                        )
                    })
                    .collect(),
                _ => {
                    let plan: Vec<(usize, u64)> = (0..args.txs_per_block)
                        .map(|k| {
                            let s = 1 + k % SENDERS;
                            let nonce = nonces[s];
                            nonces[s] += 1;
                            (s, nonce)
                        })
                        .collect();
                    plan.par_iter()
                        .enumerate()
                        .map(|(k, (s, nonce))| {
                            let to = Address::with_last_byte((k % 200) as u8 + 1);
                            sign(
                                &signers[*s],
                                spec.chain_id,
                                *nonce,
                                TxKind::Call(token),
                                transfer_calldata(to, 1),
                                60_000,
                            )
                        })
                        .collect()
                }
            };
            let count = txs.len();
            let mut source = Listed(
                txs.into_iter()
                    .map(Arc::new)
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            let at = host
                .poll_timeout(&store)
                .ok_or_else(|| eyre!("not the producer's turn"))?;
            let effects = host.handle_timeout(&mut store, at, &mut source)?;
            if effects.head.is_none() {
                bail!("block {number} was not sealed");
            }
            let included = store.body(number).map_or(0, |b| b.len());
            if included != count {
                bail!("block {number} holds {included} of {count} transactions");
            }
            txs_total += count;
            if number % 1_000 == 0 {
                eprintln!(
                    "built {number} blocks ({:.0} s)",
                    built.elapsed().as_secs_f64()
                );
            }
        }
        txs_total
    };
    let build_secs = built.elapsed().as_secs_f64();

    // 1. Import in process, as a node takes a peer's blocks.
    let import_secs = {
        let source = ChainDb::open(&node0.join("chain"), spec.name, SyncMode::SafeNoSync)?;
        let target_dir = dir.path().join("import");
        let db = Arc::new(ChainDb::open(&target_dir, spec.name, SyncMode::Durable)?);
        let mut store = BorDb::open(db, &bor_genesis, &spec)?;
        let mut host = ChainHost::open(spec.clone(), None, ExecMode::Parallel, &store);
        host.delivery
            .update(DeliveryHeight(0), &[], Default::default());
        let view = source.read()?;
        let mut blocks = Vec::with_capacity(args.blocks as usize);
        for number in 1..=args.blocks {
            let header = view
                .header_at(number)?
                .ok_or_else(|| eyre!("header {number}"))?;
            let txs = view
                .body_at(number)?
                .ok_or_else(|| eyre!("body {number}"))?;
            blocks.push(RawBlock {
                header,
                txs: txs.into_iter().map(|t| t.envelope).collect(),
            });
        }
        drop(view);
        let started = Instant::now();
        for raw in blocks {
            let block = raw
                .recover()
                .map_err(|i| eyre!("transaction {i} does not recover"))?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            host.handle_block(&mut store, now_ms, block)?;
        }
        let secs = started.elapsed().as_secs_f64();
        if host.head().0 != args.blocks {
            bail!("import stopped at {}", host.head().0);
        }
        secs
    };

    // 2. A full node catches up from the validator over QUIC.
    let genesis_arg = genesis_path.to_str().ok_or_else(|| eyre!("path"))?;
    let validator = spawn(
        &args.bttc,
        &[
            "node",
            "--validator",
            "--key",
            node0.join("validator.key").to_str().unwrap_or_default(),
            "--network",
            genesis_arg,
            "--datadir",
            node0.to_str().unwrap_or_default(),
        ],
        &net.join("validator.log"),
    )?;
    let full_dir = net.join("full-0");
    let rpc_addr = SocketAddr::from(([127, 0, 0, 1], args.base_port + 250));
    let started = Instant::now();
    let full = spawn(
        &args.bttc,
        &[
            "node",
            "--network",
            genesis_arg,
            "--datadir",
            full_dir.to_str().unwrap_or_default(),
            "--http.port",
            &(args.base_port + 250).to_string(),
            "--ws.port",
            &(args.base_port + 350).to_string(),
            "--delivery.http",
            &format!("127.0.0.1:{}", args.base_port + 50),
            "--p2p",
            &format!("127.0.0.1:{}", args.base_port + 150),
        ],
        &net.join("full.log"),
    )?;
    let deadline = started + Duration::from_secs(3_600);
    let mut last_report = Instant::now();
    loop {
        let h = head(rpc_addr).unwrap_or(0);
        if h >= args.blocks {
            break;
        }
        if Instant::now() > deadline {
            stop(full);
            stop(validator);
            bail!("the full node reached only block {h}");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "full node at block {h} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let catchup_secs = started.elapsed().as_secs_f64();
    stop(full);
    stop(validator);

    let rate = |secs: f64| {
        json!({
            "secs": secs,
            "blocks_per_sec": args.blocks as f64 / secs,
            "txs_per_sec": txs_total as f64 / secs,
        })
    };
    let report = json!({
        "blocks": args.blocks,
        "txs": txs_total,
        "txs_per_block": args.txs_per_block,
        "build_secs": build_secs,
        "import_in_process": rate(import_secs),
        "full_node_catchup_over_quic": rate(catchup_secs),
        "catchup_over_import": import_secs / catchup_secs,
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text)?;
    }
    Ok(())
}
