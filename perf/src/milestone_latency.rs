//! Time from a BTTC block's seal to its milestone on a local network: starts `bttc devnet`
//! (N validators on loopback, QUIC, durable MDBX), polls every validator's head and
//! `finalized` block, and for each block takes the first moment any validator holds it (its
//! producer's commit) and the first moment any validator answers `finalized` at or past it.
//! Reports p50/p90/p99 over the blocks after a warm-up, and the block interval.

use bttc_perf::{hex_u64, rpc_blocking as rpc};
use clap::Parser;
use eyre::{Context, bail};
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(about = "BTTC seal-to-milestone latency on loopback")]
struct Args {
    /// The bttc binary (a release build).
    #[arg(long, default_value = "target/release/bttc")]
    bttc: PathBuf,
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Blocks measured (after a warm-up of 5).
    #[arg(long, default_value_t = 60)]
    blocks: u64,
    #[arg(long = "base-port", default_value_t = 29_000)]
    base_port: u16,
    /// The Delivery chain's pause after a commit (ms).
    #[arg(long = "block-interval-ms", default_value_t = 250)]
    block_interval_ms: u64,
    /// The Delivery chain's round-0 propose timeout (ms).
    #[arg(long = "timeout-propose-ms", default_value_t = 1_000)]
    timeout_propose_ms: u64,
    /// Report file (JSON); printed to stdout as well.
    #[arg(long)]
    out: Option<PathBuf>,
}

const WARM_UP: u64 = 5;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut devnet = Command::new(&args.bttc)
        .args(["devnet", "--validators"])
        .arg(args.validators.to_string())
        .arg("--base-port")
        .arg(args.base_port.to_string())
        .arg("--block-interval-ms")
        .arg(args.block_interval_ms.to_string())
        .arg("--timeout-propose-ms")
        .arg(args.timeout_propose_ms.to_string())
        .arg("--datadir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", args.bttc.display()))?;
    let network_file = dir.path().join("network.json");
    let started = Instant::now();
    while !network_file.exists() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the devnet wrote no network.json");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let network: Value = serde_json::from_str(&std::fs::read_to_string(&network_file)?)?;
    let urls: Vec<SocketAddr> = network["bttc"]["rpc"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|u| u.as_str()?.trim_start_matches("http://").parse().ok())
        .collect();
    let origin = Instant::now();
    let mut sealed: BTreeMap<u64, f64> = BTreeMap::new();
    let mut finalized: BTreeMap<u64, f64> = BTreeMap::new();
    let (mut head, mut last_final) = (0u64, 0u64);
    let until = WARM_UP + args.blocks;
    let deadline = Instant::now() + Duration::from_secs(until * 6 + 60);
    while last_final < until {
        if Instant::now() > deadline {
            let _ = devnet.kill();
            bail!("the network stalled at head {head}, finalized {last_final}");
        }
        for url in &urls {
            let now = origin.elapsed().as_secs_f64();
            if let Some(h) = rpc(*url, "eth_blockNumber", json!([])).and_then(|v| hex_u64(&v)) {
                for n in head + 1..=h {
                    sealed.entry(n).or_insert(now);
                }
                head = head.max(h);
            }
            let now = origin.elapsed().as_secs_f64();
            if let Some(f) = rpc(*url, "eth_getBlockByNumber", json!(["finalized", false]))
                .and_then(|b| hex_u64(&b["number"]))
            {
                for n in last_final + 1..=f {
                    finalized.entry(n).or_insert(now);
                }
                last_final = last_final.max(f);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the child this tool started; SIGINT stops the devnet cleanly.
    unsafe { libc::kill(devnet.id() as libc::pid_t, libc::SIGINT) };
    let _ = devnet.wait();

    let mut latencies: Vec<f64> = (WARM_UP + 1..=until)
        .filter_map(|n| Some(finalized.get(&n)? - sealed.get(&n)?))
        .map(|s| s * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut intervals: Vec<f64> = (WARM_UP + 1..=until)
        .filter_map(|n| Some(sealed.get(&n)? - sealed.get(&(n - 1))?))
        .map(|s| s * 1e3)
        .collect();
    intervals.sort_by(f64::total_cmp);
    let report = json!({
        "validators": args.validators,
        "blocks": latencies.len(),
        "delivery_block_interval_ms": args.block_interval_ms,
        "delivery_timeout_propose_ms": args.timeout_propose_ms,
        "seal_to_milestone_ms": {
            "p50": percentile(&latencies, 0.5),
            "p90": percentile(&latencies, 0.9),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last(),
        },
        "block_interval_ms": {
            "p50": percentile(&intervals, 0.5),
            "p90": percentile(&intervals, 0.9),
        },
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text)?;
    }
    Ok(())
}
