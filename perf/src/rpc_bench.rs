//! rpc-bench: JSON-RPC read throughput of `bttc node --dev` against anvil and nginx, in one run.
//!
//! Both nodes start from the same geth-style genesis (funded accounts and one ERC-20 holding a
//! balance for each) and get the same blocks of ERC-20 transfers, so every query has the same
//! answer on both; nginx returns a fixed JSON-RPC answer, the HTTP limit of the machine. wrk
//! drives each side in turn with the same Lua script, which counts any answer that is not a
//! JSON-RPC result as an error.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use bttc_perf::{client, sign, transfer_calldata, wait_receipt};
use clap::Parser;
use eyre::{WrapErr, bail, eyre};
use jsonrpsee::{core::client::ClientT, http_client::HttpClient, rpc_params};
use serde_json::{Value, json};
use std::{
    fmt::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(about = "wrk against bttc, anvil and nginx: requests/s and p99 of JSON-RPC reads")]
struct Args {
    #[arg(long, default_value = "target/release/bttc")]
    bttc: PathBuf,
    #[arg(
        long,
        default_value = "perf/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    )]
    anvil: PathBuf,
    #[arg(long, default_value = "nginx")]
    nginx: PathBuf,
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// Funded accounts in the genesis, each also holding the ERC-20.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Blocks of one ERC-20 transfer each, the range `eth_getLogs` scans.
    #[arg(long, default_value_t = 1_000)]
    log_blocks: u64,
    /// Seconds each wrk measurement runs (after a warm-up of a fifth of it).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Measurements per side and method, taken in turn (nginx, bttc, anvil, nginx, …); the
    /// median counts. The machine is shared, so single runs are noisy.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Which methods to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "eth_blockNumber,eth_getBalance,eth_call,eth_getLogs"
    )]
    methods: Vec<String>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

const CHAIN_ID: u64 = 1337;
/// The ERC-20's address in the genesis.
const TOKEN: Address = Address::new([0x70; 20]);
/// Where every hundredth transfer goes: the `eth_getLogs` topic filter matches only these.
const WATCHED: Address = Address::new([0x77; 20]);
/// Distinct request bodies per method (random accounts).
const BODIES: usize = 1_000;

/// A child process killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(name: &'static str, command: &mut Command, log: &Path) -> eyre::Result<Self> {
        let log = std::fs::File::create(log)?;
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .wrap_err_with(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Self { name, child })
    }

    fn check_running(&mut self) -> eyre::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }
}

fn free_port() -> eyre::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn accounts(n: usize) -> Vec<Address> {
    (0..n)
        .map(|i| Address::from_slice(&keccak256(format!("rpc-bench account {i}"))[12..]))
        .collect()
}

/// Storage slot of `balanceOf[holder]` in TestToken (the mapping is its slot 1).
fn balance_slot(holder: Address) -> B256 {
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(holder.as_slice());
    key[63] = 1;
    keccak256(key)
}

fn quantity(v: impl Into<U256>) -> String {
    format!("{:#x}", v.into())
}

/// The shared genesis: `accounts` with 1 ETH and 1,000 tokens each, the sender with plenty of
/// both, and the token's code and storage. Cancun rules from genesis on.
fn genesis(accounts: &[Address], sender: Address, token_code: &str, timestamp: u64) -> Value {
    let mut alloc = serde_json::Map::new();
    let mut storage = serde_json::Map::new();
    let per_account = U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18));
    let sender_tokens = U256::from(10u64).pow(U256::from(30));
    for a in accounts {
        alloc.insert(
            format!("{a:#x}"),
            json!({"balance": quantity(U256::from(10u64).pow(U256::from(18)))}),
        );
        storage.insert(
            format!("{:#x}", balance_slot(*a)),
            json!(format!("{:#066x}", per_account)),
        );
    }
    storage.insert(
        format!("{:#x}", balance_slot(sender)),
        json!(format!("{:#066x}", sender_tokens)),
    );
    let supply = per_account * U256::from(accounts.len()) + sender_tokens;
    storage.insert(format!("{:#066x}", 0), json!(format!("{supply:#066x}")));
    alloc.insert(
        format!("{sender:#x}"),
        json!({"balance": quantity(U256::from(10u64).pow(U256::from(24)))}),
    );
    alloc.insert(
        format!("{TOKEN:#x}"),
        json!({"balance": "0x0", "code": token_code, "storage": storage}),
    );
    json!({
        "config": {
            "chainId": CHAIN_ID,
            "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
            "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
            "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            "mergeNetsplitBlock": 0, "terminalTotalDifficulty": 0,
            "terminalTotalDifficultyPassed": true,
            "shanghaiTime": 0, "cancunTime": 0,
        },
        "nonce": "0x0",
        "timestamp": quantity(U256::from(timestamp)),
        "extraData": "0x",
        "gasLimit": "0x1c9c380",
        "difficulty": "0x0",
        "baseFeePerGas": "0x3b9aca00",
        "mixHash": "0x0000000000000000000000000000000000000000000000000000000000000000",
        "coinbase": "0x0000000000000000000000000000000000000000",
        "alloc": alloc,
    })
}

fn nginx_config(dir: &Path, port: u16) -> String {
    format!(
        r#"worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"jsonrpc":"2.0","id":1,"result":"0x3e8"}}';
        }}
    }}
}}
"#,
        dir = dir.display()
    )
}

/// The wrk script: a random body of `bodies` per request; answers that are not a JSON-RPC
/// result count as errors; prints one JSON line of figures at the end.
fn wrk_script(bodies: &[String]) -> String {
    let mut lua = String::from("local bodies = {\n");
    for body in bodies {
        let _ = writeln!(lua, "  [[{body}]],");
    }
    lua.push_str(
        r#"}
local n = #bodies
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
rpc_errors = 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
function request()
  return wrk.format(nil, "/", nil, bodies[math.random(n)])
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end
function done(summary, latency, requests)
  local rpc = 0
  for _, t in ipairs(threads) do rpc = rpc + t:get("rpc_errors") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"rpc":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, rpc))
end
"#,
    );
    lua
}

#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    method: String,
    target: &'static str,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    rounds_requests_per_s: Vec<f64>,
}

fn run_wrk(
    args: &Args,
    script: &Path,
    port: u16,
    seconds: u64,
) -> eyre::Result<(f64, f64, f64, u64)> {
    let out = Command::new(&args.wrk)
        .args([
            "-t",
            &args.threads.to_string(),
            "-c",
            &args.connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .wrap_err("running wrk (apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_JSON "))
        .ok_or_else(|| {
            eyre!(
                "wrk printed no figures:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line)?;
    let get = |k: &str| v[k].as_u64().unwrap_or(0);
    let rps = get("requests") as f64 / (get("duration_us") as f64 / 1e6);
    let errors = ["connect", "read", "write", "status", "timeout", "rpc"]
        .iter()
        .map(|k| get(k))
        .sum();
    Ok((
        rps,
        get("p50_us") as f64 / 1e3,
        get("p99_us") as f64 / 1e3,
        errors,
    ))
}

async fn wait_answering(url: &str, proc: &mut Proc) -> eyre::Result<HttpClient> {
    let rpc = client(url)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        proc.check_running()?;
        if rpc
            .request::<Value, _>("eth_blockNumber", rpc_params![])
            .await
            .is_ok()
        {
            return Ok(rpc);
        }
        if Instant::now() > deadline {
            bail!("{} did not answer within 300 s", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `log_blocks` transfers one at a time (so one per block on both nodes); every
/// hundredth goes to [`WATCHED`].
async fn make_log_blocks(
    rpc: &HttpClient,
    key: &PrivateKeySigner,
    accounts: &[Address],
    blocks: u64,
) -> eyre::Result<()> {
    for i in 0..blocks {
        let to = if i % 100 == 0 {
            WATCHED
        } else {
            accounts[i as usize % accounts.len()]
        };
        let raw = sign(
            key,
            CHAIN_ID,
            i,
            TxKind::Call(TOKEN),
            U256::ZERO,
            transfer_calldata(to, 1 + i),
            100_000,
        );
        let hash: B256 = rpc
            .request("eth_sendRawTransaction", rpc_params![raw])
            .await?;
        wait_receipt(rpc, hash, Duration::from_millis(1)).await?;
    }
    Ok(())
}

fn bodies(method: &str, accounts: &[Address], log_blocks: u64) -> Vec<String> {
    let mut pick = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_account = || {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        accounts[(pick % accounts.len() as u64) as usize]
    };
    let body = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
    };
    match method {
        "eth_blockNumber" => vec![body(method, json!([]))],
        "eth_getBalance" => (0..BODIES)
            .map(|_| body(method, json!([random_account(), "latest"])))
            .collect(),
        "eth_call" => (0..BODIES)
            .map(|_| {
                let mut data = keccak256("balanceOf(address)")[..4].to_vec();
                data.extend_from_slice(random_account().into_word().as_slice());
                body(
                    method,
                    json!([{"to": TOKEN, "data": Bytes::from(data)}, "latest"]),
                )
            })
            .collect(),
        "eth_getLogs" => {
            let transfer = keccak256("Transfer(address,address,uint256)");
            vec![body(
                method,
                json!([{
                    "fromBlock": "0x1",
                    "toBlock": quantity(U256::from(log_blocks)),
                    "address": TOKEN,
                    "topics": [transfer, null, WATCHED.into_word()],
                }]),
            )]
        }
        other => panic!("no bodies for {other}"),
    }
}

/// The answers of both nodes to the same bodies must agree (block hashes aside).
async fn cross_check(
    bttc: &HttpClient,
    anvil: &HttpClient,
    bodies: &[String],
    expected_logs: usize,
) -> eyre::Result<()> {
    for body in bodies.iter().take(20) {
        let request: Value = serde_json::from_str(body)?;
        let method = request["method"].as_str().unwrap_or_default();
        let params = request["params"].as_array().cloned().unwrap_or_default();
        let ask = |rpc: &HttpClient| {
            let params = params.clone();
            let method = method.to_owned();
            let rpc = rpc.clone();
            async move {
                let mut p = jsonrpsee::core::params::ArrayParams::new();
                for v in params {
                    p.insert(v)?;
                }
                rpc.request::<Value, _>(&method, p)
                    .await
                    .map_err(eyre::Report::from)
            }
        };
        let (ours, theirs) = (ask(bttc).await?, ask(anvil).await?);
        let comparable = |v: &Value| match v {
            Value::Array(logs) => json!(
                logs.iter()
                    .map(|l| json!([l["blockNumber"], l["logIndex"], l["topics"], l["data"]]))
                    .collect::<Vec<_>>()
            ),
            other => other.clone(),
        };
        if comparable(&ours) != comparable(&theirs) {
            bail!("{method} answers differ: bttc {ours}, anvil {theirs}");
        }
        // Both could agree on a wrong state: check the answers the genesis and blocks imply.
        let expected = match method {
            "eth_getBalance" => Some(json!(quantity(U256::from(10u64).pow(U256::from(18))))),
            "eth_call" => Some(json!(format!(
                "{:#066x}",
                U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18))
            ))),
            _ => None,
        };
        if let Some(expected) = expected
            && ours != expected
        {
            bail!("{method}: bttc answered {ours}, the genesis implies {expected}");
        }
        if method == "eth_getLogs" && ours.as_array().is_none_or(|l| l.len() != expected_logs) {
            bail!("eth_getLogs: expected {expected_logs} logs, got {ours}");
        }
    }
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let work = tempfile::Builder::new().prefix("rpc-bench-").tempdir()?;
    let dir = work.path();
    let key: PrivateKeySigner =
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".parse()?;
    let accounts = accounts(args.accounts);
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/contracts/artifacts/TestToken.json"),
    )?)?;
    let code = artifact["deployedBytecode"]
        .as_str()
        .ok_or_else(|| eyre!("TestToken artifact has no deployedBytecode"))?;
    let code = if code.starts_with("0x") {
        code.to_owned()
    } else {
        format!("0x{code}")
    };
    let genesis_path = dir.join("genesis.json");
    std::fs::write(
        &genesis_path,
        serde_json::to_vec(&genesis(
            &accounts,
            key.address(),
            &code,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        ))?,
    )?;
    eprintln!(
        "genesis: {} funded accounts holding the ERC-20 at {TOKEN} ({} MB)",
        accounts.len(),
        std::fs::metadata(&genesis_path)?.len() >> 20
    );

    let (bttc_port, anvil_port, nginx_port) = (free_port()?, free_port()?, free_port()?);
    let started = Instant::now();
    let mut bttc = Proc::spawn(
        "bttc",
        Command::new(&args.bttc)
            .args(["node", "--dev", "--genesis"])
            .arg(&genesis_path)
            .arg("--datadir")
            .arg(dir.join("bttc"))
            .args(["--http.port", &bttc_port.to_string(), "--ws.port", "0"])
            .args(["--block-time", "0", "--db.sync", "safe-no-sync"])
            .env("RUST_LOG", "warn"),
        &dir.join("bttc.log"),
    )?;
    let mut anvil = Proc::spawn(
        "anvil",
        Command::new(&args.anvil)
            .arg("--init")
            .arg(&genesis_path)
            .args(["--port", &anvil_port.to_string(), "--host", "127.0.0.1"])
            .args(["--chain-id", &CHAIN_ID.to_string(), "--quiet"])
            // Only the latest state, as bttc keeps: history of 100,000 accounts per block
            // would fill memory.
            .arg("--prune-history"),
        &dir.join("anvil.log"),
    )?;
    std::fs::write(dir.join("nginx.conf"), nginx_config(dir, nginx_port))?;
    let _nginx = Proc::spawn(
        "nginx",
        Command::new(&args.nginx)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(dir),
        &dir.join("nginx.log"),
    )?;
    let bttc_rpc = wait_answering(&format!("http://127.0.0.1:{bttc_port}"), &mut bttc).await?;
    eprintln!(
        "bttc answering after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let anvil_rpc = wait_answering(&format!("http://127.0.0.1:{anvil_port}"), &mut anvil).await?;
    eprintln!(
        "anvil answering after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for (name, rpc) in [("bttc", &bttc_rpc), ("anvil", &anvil_rpc)] {
        let at = Instant::now();
        make_log_blocks(rpc, &key, &accounts, args.log_blocks).await?;
        let tip: U256 = rpc.request("eth_blockNumber", rpc_params![]).await?;
        if tip != U256::from(args.log_blocks) {
            bail!(
                "{name}: expected {} blocks, the tip is {tip}",
                args.log_blocks
            );
        }
        eprintln!(
            "{name}: {} blocks of transfers in {:.1} s",
            args.log_blocks,
            at.elapsed().as_secs_f64()
        );
    }

    let mut results = Vec::new();
    for method in &args.methods {
        let bodies = bodies(method, &accounts, args.log_blocks);
        // Every hundredth transfer, from the first, goes to the watched address.
        let expected_logs = args.log_blocks.div_ceil(100) as usize;
        cross_check(&bttc_rpc, &anvil_rpc, &bodies, expected_logs).await?;
        let script = dir.join(format!("{method}.lua"));
        std::fs::write(&script, wrk_script(&bodies))?;
        let sides = [
            ("nginx", nginx_port),
            ("bttc", bttc_port),
            ("anvil", anvil_port),
        ];
        let mut runs: Vec<Vec<(f64, f64, f64, u64)>> = vec![Vec::new(); sides.len()];
        for round in 0..args.rounds.max(1) {
            for (i, (target, port)) in sides.iter().enumerate() {
                if round == 0 {
                    run_wrk(&args, &script, *port, (args.duration / 5).max(1))?;
                }
                let run = run_wrk(&args, &script, *port, args.duration)?;
                eprintln!(
                    "{method:<16} {target:<6} round {round}: {:>10.0} req/s  p99 {:>7.2} ms  errors {}",
                    run.0, run.2, run.3
                );
                runs[i].push(run);
            }
        }
        for ((target, _), mut taken) in sides.into_iter().zip(runs) {
            let errors = taken.iter().map(|r| r.3).sum();
            let rounds_requests_per_s = taken.iter().map(|r| r.0).collect();
            taken.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (rps, p50, p99, _) = taken[taken.len() / 2];
            eprintln!(
                "{method:<16} {target:<6} {rps:>10.0} req/s  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  errors {errors} (median of {})",
                taken.len()
            );
            results.push(Measured {
                method: method.clone(),
                target,
                requests_per_s: rps,
                p50_ms: p50,
                p99_ms: p99,
                errors,
                rounds_requests_per_s,
            });
        }
    }
    bttc.check_running()?;
    anvil.check_running()?;

    let rps = |method: &str, target: &str| {
        results
            .iter()
            .find(|m| m.method == method && m.target == target)
            .map(|m| m.requests_per_s)
    };
    let mut ratios = serde_json::Map::new();
    let mut verdicts = Vec::new();
    for method in &args.methods {
        let (Some(ours), Some(nginx), Some(anvil)) = (
            rps(method, "bttc"),
            rps(method, "nginx"),
            rps(method, "anvil"),
        ) else {
            continue;
        };
        let (of_nginx, of_anvil) = (ours / nginx, ours / anvil);
        ratios.insert(
            method.clone(),
            json!({"bttc_over_nginx": of_nginx, "bttc_over_anvil": of_anvil}),
        );
        let (target, met) = match method.as_str() {
            "eth_blockNumber" | "eth_getBalance" => ("≥ 0.85 × nginx", of_nginx >= 0.85),
            _ => ("≥ 2 × anvil", of_anvil >= 2.0),
        };
        println!(
            "{method:<16} bttc/nginx {of_nginx:>5.2}  bttc/anvil {of_anvil:>5.2}  target {target}: {}",
            if met { "met" } else { "MISSED" }
        );
        verdicts.push(json!({"method": method, "target": target, "met": met}));
    }
    let errors: u64 = results.iter().map(|m| m.errors).sum();
    println!("errors: {errors}");
    let anvil_version = Command::new(&args.anvil)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let report = json!({
        "tool": "rpc-bench",
        "machine": machine(),
        "settings": {
            "accounts": args.accounts,
            "log_blocks": args.log_blocks,
            "duration_s": args.duration,
            "connections": args.connections,
            "wrk_threads": args.threads,
            "rounds": args.rounds,
            "anvil": anvil_version,
            "bttc": "node --dev --genesis (same genesis as anvil) --block-time 0 --db.sync safe-no-sync",
        },
        "results": results,
        "ratios": ratios,
        "targets": verdicts,
        "errors": errors,
    });
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("report: {}", out.display());
    }
    Ok(())
}
