//! Commit latency of a local Delivery chain: starts N `bttc delivery` processes on loopback
//! with no pause between heights and the given timeouts, lets them commit a number of heights,
//! and reports the time per height (from consecutive block times: with no pause, the next
//! proposal follows the commit at once) as p50/p90/p99, plus heights that needed more than one
//! round. With `--baseline BIN` it measures that binary too, in turns with `--bttc` within
//! the same run (baseline, candidate, baseline, ... for `--rounds` rounds), and reports both.

use clap::Parser;
use eyre::{Context, bail};
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(about = "Delivery chain commit latency on loopback")]
struct Args {
    /// The bttc binary (a release build).
    #[arg(long, default_value = "target/release/bttc")]
    bttc: PathBuf,
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Heights measured (after a warm-up of 20).
    #[arg(long, default_value_t = 500)]
    heights: u64,
    #[arg(long = "base-port", default_value_t = 28_000)]
    base_port: u16,
    /// Round-0 propose timeout (ms); prevote/precommit timeouts are a third of it.
    #[arg(long = "timeout-propose-ms", default_value_t = 100)]
    timeout_propose_ms: u64,
    /// `durable` (fsync every commit and log record) or `safe-no-sync`.
    #[arg(long = "db-sync", default_value = "durable")]
    db_sync: String,
    /// Report file (JSON); printed to stdout as well.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Another bttc binary measured in turns with `--bttc` (e.g. the build before a change).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Turns per binary when comparing.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

const WARM_UP: u64 = 20;

fn rpc(addr: SocketAddr, method: &str, params: &str) -> Option<Value> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let v: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1)?).ok()?;
    Some(v["result"].clone())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn stop(children: &mut [Child]) {
    for c in children.iter() {
        // SAFETY: kill(2) on children this process spawned.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let mut binaries = vec![("candidate", args.bttc.clone())];
    if let Some(baseline) = &args.baseline {
        binaries.insert(0, ("baseline", baseline.clone()));
    }
    for (_, bin) in &binaries {
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release --bin bttc`",
                bin.display()
            );
        }
    }
    let rounds = if args.baseline.is_some() {
        args.rounds.max(1)
    } else {
        1
    };
    let mut samples: Vec<(&str, Vec<u64>, u64, u64)> = Vec::new();
    for round in 0..rounds {
        for (name, bin) in &binaries {
            eprintln!("round {round}: {name} ({})", bin.display());
            let (per_height, span_ms, late) = measure(&args, bin)?;
            samples.push((name, per_height, span_ms, late));
        }
    }
    let summarize = |name: &str| {
        let mut all: Vec<u64> = Vec::new();
        let (mut span, mut late) = (0, 0);
        for (n, per_height, span_ms, l) in &samples {
            if *n == name {
                all.extend(per_height);
                span += span_ms;
                late += l;
            }
        }
        all.sort_unstable();
        json!({
            "heights": all.len(),
            "per_height_ms": {
                "p50": percentile(&all, 0.50),
                "p90": percentile(&all, 0.90),
                "p99": percentile(&all, 0.99),
                "max": all.last(),
                "mean": span as f64 / all.len() as f64,
            },
            "heights_per_s": all.len() as f64 * 1000.0 / span as f64,
            "heights_decided_after_round_0": late,
        })
    };
    let mut report = json!({
        "tool": "delivery-latency",
        "validators": args.validators,
        "timeout_propose_ms": args.timeout_propose_ms,
        "db_sync": args.db_sync,
        "rounds": rounds,
    });
    for (name, bin) in &binaries {
        report[*name] = summarize(name);
        report[*name]["bttc"] = json!(bin.display().to_string());
    }
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = args.out {
        std::fs::write(&out, &text).wrap_err_with(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// One network of `bin` validators: the time per height (ms) of the measured heights, their
/// span, and how many needed a second round.
fn measure(args: &Args, bin: &std::path::Path) -> eyre::Result<(Vec<u64>, u64, u64)> {
    let dir = tempfile::tempdir()?;
    let status = Command::new(bin)
        .args(["devnet", "--init-only", "--block-interval-ms", "0"])
        .args(["--validators", &args.validators.to_string()])
        .args(["--base-port", &args.base_port.to_string()])
        .args(["--timeout-propose-ms", &args.timeout_propose_ms.to_string()])
        .arg("--datadir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("bttc devnet --init-only failed");
    }
    let genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("genesis.json"))?)?;
    let rpcs: Vec<SocketAddr> = genesis["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .map(|v| v["rpc"].as_str().expect("rpc").parse().expect("address"))
        .collect();
    let mut children = Vec::new();
    for i in 0..args.validators {
        let node = dir.path().join(format!("node-{i}"));
        children.push(
            Command::new(bin)
                .arg("delivery")
                .arg("--datadir")
                .arg(&node)
                .arg("--genesis")
                .arg(dir.path().join("genesis.json"))
                .arg("--key-file")
                .arg(node.join("validator.key"))
                .args(["--db.sync", &args.db_sync])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .wrap_err("starting a validator")?,
        );
    }
    let target = WARM_UP + args.heights + 1;
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let heights: Vec<u64> = rpcs
            .iter()
            .map(|a| {
                rpc(*a, "delivery_status", "[]")
                    .and_then(|s| s["height"].as_u64())
                    .unwrap_or(0)
            })
            .collect();
        if heights.iter().all(|h| *h >= target) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            stop(&mut children);
            bail!("no progress to height {target} in 600 s (heights {heights:?})");
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            eprintln!("heights {heights:?} of {target}");
            last_print = Instant::now();
        }
        // Polling pace of a progress display.
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut times = Vec::new();
    let mut late_rounds = 0;
    for h in WARM_UP..=target {
        let block = rpc(rpcs[0], "delivery_getBlock", &format!("[{h}]"))
            .ok_or_else(|| eyre::eyre!("block {h} missing"))?;
        times.push(block["header"]["timeMs"].as_u64().expect("time"));
        if block["commit"][0]["round"].as_u64().unwrap_or(0) > 0 {
            late_rounds += 1;
        }
    }
    stop(&mut children);
    let per_height: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let span_ms = times.last().unwrap() - times.first().unwrap();
    Ok((per_height, span_ms, late_rounds))
}
