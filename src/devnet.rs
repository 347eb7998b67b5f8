//! `bttc devnet`: makes keys and a genesis for N Delivery validators, starts each as its own
//! process on loopback, and shows a live status line until Ctrl-C stops them all.

use crate::delivery::{DeliveryGenesis, GenesisValidator, TimeoutsMs, now_ms};
use alloy_primitives::Address;
use bttc_engine::delivery::signing::key_address;
use eyre::{Context, bail};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};
use secp256k1::SecretKey;
use serde_json::Value;
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

#[derive(clap::Args)]
pub struct DevnetArgs {
    /// Number of validators (1 to 100).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory for the genesis, keys, databases and logs (kept across runs).
    #[arg(long, default_value = "./data/devnet")]
    pub datadir: PathBuf,
    /// RPC ports are base, base+1, ...; QUIC ports are base+100, base+101, ...
    #[arg(long = "base-port", default_value_t = 26600)]
    pub base_port: u16,
    /// Pause after each commit before the next height (ms).
    #[arg(long = "block-interval-ms", default_value_t = 1000)]
    pub block_interval_ms: u64,
    /// Propose timeout of round 0 (ms); prevote and precommit timeouts are a third of it.
    #[arg(long = "timeout-propose-ms", default_value_t = 1000)]
    pub timeout_propose_ms: u64,
    /// Write the genesis and keys, then exit without starting validators.
    #[arg(long = "init-only")]
    pub init_only: bool,
}

fn random_key() -> eyre::Result<SecretKey> {
    let mut bytes = [0u8; 32];
    loop {
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .wrap_err("reading /dev/urandom")?;
        if let Ok(key) = SecretKey::from_byte_array(bytes) {
            return Ok(key);
        }
    }
}

pub fn node_dir(datadir: &Path, index: usize) -> PathBuf {
    datadir.join(format!("node-{index}"))
}

pub fn read_key(path: &Path) -> eyre::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading key file {}", path.display()))?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .wrap_err_with(|| format!("key file {} is not hex", path.display()))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| eyre::eyre!("key file {} must hold 32 bytes", path.display()))?;
    SecretKey::from_byte_array(bytes).wrap_err("invalid secp256k1 key")
}

/// Writes `DIR/genesis.json` and `DIR/node-i/validator.key`, or reuses them if present.
pub fn init(args: &DevnetArgs) -> eyre::Result<DeliveryGenesis> {
    let genesis_path = args.datadir.join("genesis.json");
    if genesis_path.exists() {
        let genesis = DeliveryGenesis::load(&genesis_path)?;
        if genesis.validators.len() != args.validators {
            bail!(
                "{} holds a devnet of {} validators; remove it or pass --validators {}",
                args.datadir.display(),
                genesis.validators.len(),
                genesis.validators.len()
            );
        }
        println!(
            "Continuing the devnet in {} (its genesis fixes the keys, ports, timeouts and \
             block interval; remove the directory to change them)",
            args.datadir.display()
        );
        return Ok(genesis);
    }
    if !(1..=100).contains(&args.validators) {
        bail!("--validators must be between 1 and 100");
    }
    let mut validators = Vec::new();
    for i in 0..args.validators {
        let dir = node_dir(&args.datadir, i);
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        let key = random_key()?;
        let key_path = dir.join("validator.key");
        let mut file = std::fs::File::create(&key_path)?;
        writeln!(file, "{}", hex::encode(key.secret_bytes()))?;
        let port = |offset: usize| -> eyre::Result<u16> {
            u16::try_from(usize::from(args.base_port) + offset + i).wrap_err("port out of range")
        };
        validators.push(GenesisValidator {
            address: key_address(&key),
            rpc: SocketAddr::from((Ipv4Addr::LOCALHOST, port(0)?)),
            p2p: SocketAddr::from((Ipv4Addr::LOCALHOST, port(100)?)),
        });
    }
    let third = (args.timeout_propose_ms / 3).max(1);
    let genesis = DeliveryGenesis {
        chain_id: 0xb77c,
        genesis_time_ms: now_ms(),
        validators,
        timeouts: TimeoutsMs {
            propose: args.timeout_propose_ms,
            prevote: third,
            precommit: third,
            delta: third,
        },
        block_interval_ms: args.block_interval_ms,
    };
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&genesis)?)?;
    Ok(genesis)
}

fn spawn_validator(datadir: &Path, index: usize, genesis: &DeliveryGenesis) -> eyre::Result<Child> {
    let dir = node_dir(datadir, index);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    let child = Command::new(std::env::current_exe()?)
        .arg("delivery")
        .arg("--datadir")
        .arg(&dir)
        .arg("--genesis")
        .arg(datadir.join("genesis.json"))
        .arg("--key-file")
        .arg(dir.join("validator.key"))
        .arg("--http")
        .arg(genesis.validators[index].rpc.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .wrap_err("starting a validator process")?;
    Ok(child)
}

fn terminate(child: &Child) {
    // SAFETY: kill(2) with a pid we spawned and still own; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

pub fn run(args: DevnetArgs) -> eyre::Result<()> {
    let genesis = init(&args)?;
    let order: Vec<Address> = genesis.validators.iter().map(|v| v.address).collect();
    println!(
        "Delivery devnet: {} validators, chain id {}, data in {}",
        order.len(),
        genesis.chain_id,
        args.datadir.display()
    );
    for (i, v) in genesis.validators.iter().enumerate() {
        println!(
            "  node-{i} {}  rpc http://{}  quic {}",
            v.address, v.rpc, v.p2p
        );
    }
    if args.init_only {
        return Ok(());
    }
    let mut children = Vec::new();
    for i in 0..genesis.validators.len() {
        children.push(spawn_validator(&args.datadir, i, &genesis)?);
    }
    println!(
        "Logs in {}/node-*/node.log. Ctrl-C stops all validators.\n",
        args.datadir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let clients = genesis
        .validators
        .iter()
        .map(|v| {
            HttpClientBuilder::default()
                .request_timeout(Duration::from_millis(400))
                .build(format!("http://{}", v.rpc))
        })
        .collect::<Result<Vec<_>, _>>()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    let mut parts = Vec::new();
                    for (i, c) in clients.iter().enumerate() {
                        let status: Result<Value, _> = c.request("delivery_status", rpc_params![]).await;
                        parts.push(match status {
                            Ok(s) => format!("n{i} h{} r{} p{}", s["height"], s["round"], s["peers"]),
                            Err(_) => format!("n{i} down"),
                        });
                    }
                    print!("\r{}   ", parts.join(" | "));
                    let _ = std::io::stdout().flush();
                }
            }
        }
        eyre::Ok(())
    })?;
    println!("\nstopping {} validators", children.len());
    for child in &children {
        terminate(child);
    }
    for (i, mut child) in children.into_iter().enumerate() {
        let status = child.wait()?;
        println!("node-{i} exited: {status}");
    }
    Ok(())
}
