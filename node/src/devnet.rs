//! A local Delivery devnet: keys and a genesis for N validators, each started as its own
//! `bttc delivery` process on loopback, a live status line, and a clean stop on Ctrl-C.

use crate::{
    delivery::{DeliveryGenesis, GenesisValidator, TimeoutsMs, now_ms},
    network::BttcGenesisSection,
};
use alloy_primitives::Address;
use bttc_engine::delivery::signing::key_address;
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

/// Most validators a devnet starts.
pub const VALIDATORS_MAX: usize = 100;

/// A devnet to start.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    pub validators: usize,
    /// Genesis, keys, databases and logs (kept across runs).
    pub datadir: PathBuf,
    /// RPC ports are base, base+1, ...; QUIC ports are base+100, base+101, ...
    pub base_port: u16,
    pub block_interval_ms: u64,
    /// Propose timeout of round 0; prevote and precommit timeouts are a third of it.
    pub timeout_propose_ms: u64,
    /// Write the genesis and keys, start nothing.
    pub init_only: bool,
    /// A Delivery chain alone (validators run `bttc delivery`), without the BTTC chain.
    pub delivery_only: bool,
    /// Full nodes started beside the validators (each `bttc node --network`, no key).
    pub full_nodes: usize,
}

/// Most full nodes a devnet starts.
pub const FULL_NODES_MAX: usize = 16;

/// Where full node `j` of a devnet listens: Delivery RPC, QUIC, BTTC HTTP and WebSocket.
#[derive(Debug, Clone, Copy)]
pub struct FullNodePorts {
    pub delivery_rpc: SocketAddr,
    pub p2p: SocketAddr,
    pub http: SocketAddr,
    pub ws: SocketAddr,
}

/// Full node `j`'s ports: `base+50+j`, `base+150+j`, `base+250+j`, `base+350+j`.
pub fn full_node_ports(base: u16, j: usize) -> Result<FullNodePorts, DevnetError> {
    let port = |offset: usize| {
        u16::try_from(usize::from(base) + offset + j)
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .map_err(|_| DevnetError::Port {
                base,
                offset: offset + j,
            })
    };
    Ok(FullNodePorts {
        delivery_rpc: port(50)?,
        p2p: port(150)?,
        http: port(250)?,
        ws: port(350)?,
    })
}

pub fn full_node_dir(datadir: &Path, j: usize) -> PathBuf {
    datadir.join(format!("full-{j}"))
}

fn spawn_full_node(datadir: &Path, j: usize, ports: &FullNodePorts) -> Result<Child, DevnetError> {
    let dir = full_node_dir(datadir, j);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let log_path = dir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io("opening", &log_path))?;
    let exe = std::env::current_exe().map_err(io("finding", Path::new("the bttc binary")))?;
    Command::new(&exe)
        .args(["node", "--network"])
        .arg(datadir.join("genesis.json"))
        .arg("--datadir")
        .arg(&dir)
        .arg("--http.port")
        .arg(ports.http.port().to_string())
        .arg("--ws.port")
        .arg(ports.ws.port().to_string())
        .arg("--delivery.http")
        .arg(ports.delivery_rpc.to_string())
        .arg("--p2p")
        .arg(ports.p2p.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("opening", &log_path))?)
        .stderr(log)
        .spawn()
        .map_err(io("starting", &exe))
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds a devnet of {found} validators; remove it or pass --validators {found}")]
    Size { path: PathBuf, found: usize },
    #[error("--validators must be between 1 and {VALIDATORS_MAX}")]
    Validators,
    #[error("port {base} + {offset} is out of range")]
    Port { base: u16, offset: usize },
    #[error("--full-nodes must be at most {FULL_NODES_MAX}, on a network with a BTTC chain")]
    FullNodes,
    #[error("the dev accounts: {0}")]
    Accounts(String),
    #[error("a status client: {0}")]
    Client(#[from] jsonrpsee::core::ClientError),
    #[error(transparent)]
    Node(#[from] Box<crate::NodeError>),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DevnetError + 'a {
    move |source| DevnetError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

pub fn random_key() -> Result<SecretKey, DevnetError> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 32];
    loop {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io("reading", path))?;
        if let Ok(key) = SecretKey::from_byte_array(bytes) {
            return Ok(key);
        }
    }
}

pub fn node_dir(datadir: &Path, index: usize) -> PathBuf {
    datadir.join(format!("node-{index}"))
}

/// Reads a secp256k1 key written as hex.
pub fn read_key(path: &Path) -> Result<SecretKey, crate::NodeError> {
    let key_error = |why| crate::NodeError::Key {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|source| crate::NodeError::File {
        what: "reading the key file",
        path: path.to_owned(),
        source,
    })?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .map_err(|_| key_error("it is not hex"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| key_error("it must hold 32 bytes"))?;
    SecretKey::from_byte_array(bytes).map_err(|_| key_error("it is not a valid secp256k1 key"))
}

/// Writes `DIR/genesis.json` and `DIR/node-i/validator.key`, or reuses them if present.
pub fn init(config: &DevnetConfig) -> Result<DeliveryGenesis, DevnetError> {
    let genesis_path = config.datadir.join("genesis.json");
    if genesis_path.exists() {
        let genesis = DeliveryGenesis::load(&genesis_path).map_err(Box::new)?;
        if genesis.validators.len() != config.validators {
            return Err(DevnetError::Size {
                path: config.datadir.clone(),
                found: genesis.validators.len(),
            });
        }
        println!(
            "Continuing the devnet in {} (its genesis fixes the keys, ports, timeouts and \
             block interval; remove the directory to change them)",
            config.datadir.display()
        );
        return Ok(genesis);
    }
    if !(1..=VALIDATORS_MAX).contains(&config.validators) {
        return Err(DevnetError::Validators);
    }
    let mut validators = Vec::new();
    for i in 0..config.validators {
        let dir = node_dir(&config.datadir, i);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let key = random_key()?;
        let key_path = dir.join("validator.key");
        std::fs::write(&key_path, format!("{}\n", hex::encode(key.secret_bytes())))
            .map_err(io("writing", &key_path))?;
        let port = |offset: usize| {
            u16::try_from(usize::from(config.base_port) + offset + i).map_err(|_| {
                DevnetError::Port {
                    base: config.base_port,
                    offset: offset + i,
                }
            })
        };
        let local = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
        let bttc = !config.delivery_only;
        validators.push(GenesisValidator {
            address: key_address(&key),
            rpc: local(port(0)?),
            p2p: local(port(100)?),
            bttc_rpc: if bttc { Some(local(port(200)?)) } else { None },
            bttc_ws: if bttc { Some(local(port(300)?)) } else { None },
        });
    }
    let third = (config.timeout_propose_ms / 3).max(1);
    let genesis = DeliveryGenesis {
        chain_id: 0xb77c,
        genesis_time_ms: now_ms(),
        validators,
        timeouts: TimeoutsMs {
            propose: config.timeout_propose_ms,
            prevote: third,
            precommit: third,
            delta: third,
        },
        block_interval_ms: config.block_interval_ms,
        bttc: None,
    };
    let accounts: Vec<Address> = dev_accounts()
        .map_err(|e| DevnetError::Accounts(e.to_string()))?
        .iter()
        .map(|(a, _)| *a)
        .collect();
    let genesis = DeliveryGenesis {
        bttc: (!config.delivery_only).then(|| BttcGenesisSection {
            chain_id: bttc_engine::chain::spec::DEVNET_CHAIN_ID,
            timestamp: now_ms() / 1_000,
            params: bttc_engine::chain::spec::DEVNET_BOR,
            accounts,
        }),
        ..genesis
    };
    let text = serde_json::to_string_pretty(&genesis).map_err(|source| {
        DevnetError::Node(Box::new(crate::NodeError::Json {
            what: "writing the genesis",
            path: genesis_path.clone(),
            source,
        }))
    })?;
    std::fs::write(&genesis_path, text).map_err(io("writing", &genesis_path))?;
    Ok(genesis)
}

fn spawn_validator(
    datadir: &Path,
    index: usize,
    genesis: &DeliveryGenesis,
) -> Result<Child, DevnetError> {
    let dir = node_dir(datadir, index);
    let log_path = dir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io("opening", &log_path))?;
    let exe = std::env::current_exe().map_err(io("finding", Path::new("the bttc binary")))?;
    let mut command = Command::new(&exe);
    if genesis.bttc.is_some() {
        command
            .args(["node", "--validator", "--datadir"])
            .arg(&dir)
            .arg("--network")
            .arg(datadir.join("genesis.json"))
            .arg("--key")
            .arg(dir.join("validator.key"));
    } else {
        command
            .arg("delivery")
            .arg("--datadir")
            .arg(&dir)
            .arg("--genesis")
            .arg(datadir.join("genesis.json"))
            .arg("--key-file")
            .arg(dir.join("validator.key"))
            .arg("--http")
            .arg(genesis.validators[index].rpc.to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("opening", &log_path))?)
        .stderr(log)
        .spawn()
        .map_err(io("starting", &exe))
}

/// The dev accounts (the well-known test mnemonic) with their private keys.
fn dev_accounts() -> Result<Vec<(Address, String)>, bttc_engine::chain::genesis::DevAccountError> {
    let signers =
        bttc_engine::chain::genesis::dev_signers(bttc_engine::chain::genesis::DEV_ACCOUNT_COUNT)?;
    Ok(signers
        .iter()
        .map(|s| (s.address(), format!("0x{}", hex::encode(s.to_bytes()))))
        .collect())
}

/// `DIR/network.json` (DESIGN.md §10.8): every chain's URLs and id, the contracts, the
/// validators and the funded accounts.
pub fn write_network_file(
    datadir: &Path,
    genesis: &DeliveryGenesis,
    full_nodes: &[FullNodePorts],
) -> Result<(), DevnetError> {
    let url = |scheme: &str, a: &Option<SocketAddr>| a.map(|a| format!("{scheme}://{a}"));
    let accounts = dev_accounts().map_err(|e| DevnetError::Accounts(e.to_string()))?;
    let bttc = genesis.bttc.as_ref().map(|b| {
        serde_json::json!({
            "chain_id": b.chain_id,
            "rpc": genesis.validators.iter().filter_map(|v| url("http", &v.bttc_rpc))
                .chain(full_nodes.iter().map(|f| format!("http://{}", f.http))).collect::<Vec<_>>(),
            "ws": genesis.validators.iter().filter_map(|v| url("ws", &v.bttc_ws))
                .chain(full_nodes.iter().map(|f| format!("ws://{}", f.ws))).collect::<Vec<_>>(),
            "sprint": b.params.sprint,
            "span": b.params.span,
            "period_secs": b.params.period_secs,
            "contracts": {
                "BorValidatorSet": bttc_engine::root::contracts::BOR_VALIDATOR_SET,
            },
        })
    });
    let network = serde_json::json!({
        "bttc": bttc,
        "delivery": {
            "chain_id": format!("delivery-{}", genesis.bttc.as_ref().map_or(genesis.chain_id, |b| b.chain_id)),
            "rpc": genesis.validators.iter().map(|v| format!("http://{}", v.rpc)).collect::<Vec<_>>(),
        },
        "root_chains": {},
        "validators": genesis.validators.iter().enumerate().map(|(i, v)| serde_json::json!({
            "id": i + 1,
            "signer": v.address,
            "owner": v.address,
            "rpc": url("http", &v.bttc_rpc),
            "delivery_rpc": format!("http://{}", v.rpc),
        })).collect::<Vec<_>>(),
        "full_nodes": full_nodes.iter().map(|f| serde_json::json!({
            "rpc": format!("http://{}", f.http),
            "ws": format!("ws://{}", f.ws),
            "delivery_rpc": format!("http://{}", f.delivery_rpc),
        })).collect::<Vec<_>>(),
        "accounts": accounts.iter().map(|(a, k)| serde_json::json!({"address": a, "private_key": k})).collect::<Vec<_>>(),
    });
    let path = datadir.join("network.json");
    let text = serde_json::to_string_pretty(&network).unwrap_or_default();
    std::fs::write(&path, text).map_err(io("writing", &path))
}

fn terminate(child: &Child) {
    // SAFETY: kill(2) with a pid we spawned and still own; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

/// Starts the devnet and shows its status until Ctrl-C or SIGTERM; then stops every
/// validator and waits for them.
pub fn run(config: DevnetConfig) -> Result<(), DevnetError> {
    let genesis = init(&config)?;
    if config.full_nodes > FULL_NODES_MAX || (config.full_nodes > 0 && genesis.bttc.is_none()) {
        return Err(DevnetError::FullNodes);
    }
    let full_nodes = (0..config.full_nodes)
        .map(|j| full_node_ports(config.base_port, j))
        .collect::<Result<Vec<_>, _>>()?;
    write_network_file(&config.datadir, &genesis, &full_nodes)?;
    match &genesis.bttc {
        Some(b) => println!(
            "BTTC devnet: {} validators, BTTC chain id {} (sprint {}, span {}, {} s blocks), \
             Delivery chain id {}, data in {}",
            genesis.validators.len(),
            b.chain_id,
            b.params.sprint,
            b.params.span,
            b.params.period_secs,
            genesis.chain_id,
            config.datadir.display()
        ),
        None => println!(
            "Delivery devnet: {} validators, chain id {}, data in {}",
            genesis.validators.len(),
            genesis.chain_id,
            config.datadir.display()
        ),
    }
    for (i, v) in genesis.validators.iter().enumerate() {
        let bttc = match (v.bttc_rpc, v.bttc_ws) {
            (Some(http), Some(ws)) => format!("  bttc http://{http} ws://{ws}"),
            _ => String::new(),
        };
        println!(
            "  node-{i} {}  rpc http://{}  quic {}{bttc}",
            v.address, v.rpc, v.p2p
        );
    }
    for (j, f) in full_nodes.iter().enumerate() {
        println!(
            "  full-{j} (no key)  rpc http://{}  quic {}  bttc http://{} ws://{}",
            f.delivery_rpc, f.p2p, f.http, f.ws
        );
    }
    if genesis.bttc.is_some() {
        println!(
            "Funded accounts (the test mnemonic) and every URL: {}",
            config.datadir.join("network.json").display()
        );
    }
    if config.init_only {
        return Ok(());
    }
    let mut children = Vec::new();
    for i in 0..genesis.validators.len() {
        children.push(spawn_validator(&config.datadir, i, &genesis)?);
    }
    for (j, ports) in full_nodes.iter().enumerate() {
        children.push(spawn_full_node(&config.datadir, j, ports)?);
    }
    println!(
        "Logs in {}/node-*/node.log. Ctrl-C stops all validators.\n",
        config.datadir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(io("starting", Path::new("the status runtime")))?;
    let clients = genesis
        .validators
        .iter()
        .map(|v| v.rpc)
        .chain(full_nodes.iter().map(|f| f.delivery_rpc))
        .map(|rpc| {
            HttpClientBuilder::default()
                .request_timeout(Duration::from_millis(400))
                .build(format!("http://{rpc}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    runtime.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(io("listening for", Path::new("SIGTERM")))?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    let mut parts = Vec::new();
                    let mut in_turn: Option<String> = None;
                    for (k, c) in clients.iter().enumerate() {
                        let i = match k.checked_sub(genesis.validators.len()) {
                            Some(j) => format!("full{j}"),
                            None => format!("n{k}"),
                        };
                        let status: Result<Value, _> = c.request("delivery_status", rpc_params![]).await;
                        parts.push(match status {
                            Ok(s) if s.get("bttc").is_some() => {
                                let b = &s["bttc"];
                                in_turn = b["in_turn"].as_str().map(str::to_owned).or(in_turn.take());
                                format!("{i} b{} f{} d{} p{}", b["head"], b["finalized"], s["height"], s["peers"])
                            }
                            Ok(s) => format!("{i} h{} r{} p{}", s["height"], s["round"], s["peers"]),
                            Err(_) => format!("{i} down"),
                        });
                    }
                    if let Some(producer) = &in_turn {
                        parts.push(format!("in turn {}", &producer[..producer.len().min(10)]));
                    }
                    print!("\r{}   ", parts.join(" | "));
                    let _ = std::io::stdout().flush();
                }
            }
        }
        Ok::<_, DevnetError>(())
    })?;
    println!("\nstopping {} validators", children.len());
    for child in &children {
        terminate(child);
    }
    for (i, mut child) in children.into_iter().enumerate() {
        let status = child
            .wait()
            .map_err(io("waiting for", Path::new("a validator")))?;
        let name = match i.checked_sub(genesis.validators.len()) {
            Some(j) => format!("full-{j}"),
            None => format!("node-{i}"),
        };
        println!("{name} exited: {status}");
    }
    Ok(())
}
