//! A BTTC network of real processes: four `bttc node --validator` processes (each its Delivery
//! chain and its BTTC chain over MDBX) talking QUIC on loopback. Blocks come every 2 s in
//! turn; when the in-turn producer is killed a backup seals in its place; the killed node
//! restarts, catches up and produces again; the `finalized` block only moves forward; and at
//! every height all nodes hold the same block and state root.
//!
//! `BTTC_NET_BLOCKS` (default 48) sets how many blocks the run makes before it stops.

use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BTTC: &str = env!("CARGO_BIN_EXE_bttc");
const VALIDATORS: usize = 4;
/// Validators and the full node (the last index).
const NODES: usize = VALIDATORS + 1;
const FULL_NODE: usize = VALIDATORS;

struct Net {
    dir: tempfile::TempDir,
    genesis: Value,
    nodes: Vec<Option<Child>>,
    /// The highest `finalized` block each node has answered.
    finalized: Vec<u64>,
    /// The devnet's base port; the full node's ports are laid out from it as the devnet's.
    base: u16,
}

/// A base port whose RPC (TCP) and QUIC (UDP) ports, as `bttc devnet` lays them out for the
/// validators (`base+i`, +100, +200, +300) and a full node (+50, +150, +250, +350), are free.
fn free_base_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..200u64 {
        let base = 20_000 + ((seed.wrapping_mul(7_919) + attempt * 433) % 30_000) as u16;
        let free = (0..NODES as u16).all(|i| {
            let at = if i == FULL_NODE as u16 { 50 } else { i };
            [0, 200, 300]
                .iter()
                .all(|o| TcpListener::bind(("127.0.0.1", base + o + at)).is_ok())
                && UdpSocket::bind(("127.0.0.1", base + 100 + at)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free port range found");
}

fn rpc_call(addr: SocketAddr, method: &str, params: Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let json = response.split("\r\n\r\n").nth(1)?;
    let value: Value = serde_json::from_str(json).ok()?;
    Some(value["result"].clone())
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

impl Net {
    fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = free_base_port();
        let out = Command::new(BTTC)
            .args(["devnet", "--init-only", "--validators"])
            .arg(VALIDATORS.to_string())
            .arg("--base-port")
            .arg(base.to_string())
            .arg("--datadir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "devnet init failed: {out:?}");
        let genesis: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("genesis.json")).unwrap(),
        )
        .unwrap();
        assert!(
            genesis["bttc"].is_object(),
            "a network genesis has a BTTC chain"
        );
        let network: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("network.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(network["bttc"]["rpc"].as_array().unwrap().len(), VALIDATORS);
        Self {
            dir,
            genesis,
            nodes: (0..NODES).map(|_| None).collect(),
            finalized: vec![0; NODES],
            base,
        }
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        if i == FULL_NODE {
            return self.dir.path().join("full-0");
        }
        self.dir.path().join(format!("node-{i}"))
    }

    fn addr(&self, i: usize, field: &str) -> SocketAddr {
        if i == FULL_NODE {
            let offset = match field {
                "rpc" => 50,
                "p2p" => 150,
                "bttc_rpc" => 250,
                _ => 350,
            };
            return SocketAddr::from(([127, 0, 0, 1], self.base + offset));
        }
        self.genesis["validators"][i][field]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The full node: no key, it dials the validators and follows both chains.
    fn start_full_node(&mut self) {
        let dir = self.node_dir(FULL_NODE);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(BTTC)
            .args(["node", "--network"])
            .arg(self.dir.path().join("genesis.json"))
            .arg("--datadir")
            .arg(&dir)
            .arg("--http.port")
            .arg(self.addr(FULL_NODE, "bttc_rpc").port().to_string())
            .arg("--ws.port")
            .arg(self.addr(FULL_NODE, "bttc_ws").port().to_string())
            .arg("--delivery.http")
            .arg(self.addr(FULL_NODE, "rpc").to_string())
            .arg("--p2p")
            .arg(self.addr(FULL_NODE, "p2p").to_string())
            .env("RUST_LOG", "info,libmdbx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[FULL_NODE] = Some(child);
    }

    fn address(&self, i: usize) -> String {
        self.genesis["validators"][i]["address"]
            .as_str()
            .unwrap()
            .to_lowercase()
    }

    fn start(&mut self, i: usize) {
        let dir = self.node_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(BTTC)
            .args(["node", "--validator", "--datadir"])
            .arg(&dir)
            .arg("--network")
            .arg(self.dir.path().join("genesis.json"))
            .arg("--key")
            .arg(dir.join("validator.key"))
            .env("RUST_LOG", "info,libmdbx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            // SAFETY: kill(2) on a child process this test owns.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "node {i} exited with {status}:\n{}",
                self.log(i)
            );
        }
    }

    fn eth(&self, i: usize, method: &str, params: Value) -> Option<Value> {
        rpc_call(self.addr(i, "bttc_rpc"), method, params)
    }

    fn head(&self, i: usize) -> Option<u64> {
        hex_u64(&self.eth(i, "eth_blockNumber", json!([]))?)
    }

    fn block(&self, i: usize, number: u64) -> Option<Value> {
        let block = self.eth(
            i,
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        )?;
        (!block.is_null()).then_some(block)
    }

    fn author(&self, i: usize, number: u64) -> Option<String> {
        let author = self.eth(i, "bor_getAuthor", json!([format!("0x{number:x}")]))?;
        Some(author.as_str()?.to_lowercase())
    }

    fn status(&self, i: usize) -> Option<Value> {
        rpc_call(self.addr(i, "rpc"), "delivery_status", json!([]))
    }

    fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Asks every running node for its `finalized` block: it never goes back.
    fn observe_finalized(&mut self) {
        for i in 0..NODES {
            if self.nodes[i].is_none() {
                continue;
            }
            let Some(block) = self.eth(i, "eth_getBlockByNumber", json!(["finalized", false]))
            else {
                continue;
            };
            let Some(number) = hex_u64(&block["number"]) else {
                continue;
            };
            assert!(
                number >= self.finalized[i],
                "node {i}: finalized went back from {} to {number}",
                self.finalized[i]
            );
            self.finalized[i] = number;
        }
    }

    fn wait_until(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        loop {
            self.observe_finalized();
            if cond(self) {
                return;
            }
            if start.elapsed() > timeout {
                let logs: Vec<String> = (0..NODES)
                    .map(|i| format!("--- node {i}\n{}", self.log(i)))
                    .collect();
                panic!("timed out waiting for {what}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn index_of(&self, address: &str) -> usize {
        (0..VALIDATORS)
            .find(|i| self.address(*i) == address.to_lowercase())
            .unwrap_or_else(|| panic!("{address} is not a validator"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn four_validators_rotate_survive_a_killed_producer_and_agree_at_every_height() {
    let blocks: u64 = std::env::var("BTTC_NET_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut net = Net::init();
    let sprint = net.genesis["bttc"]["sprint"].as_u64().unwrap();
    let period = net.genesis["bttc"]["period_secs"].as_u64().unwrap();
    let producer_delay = net.genesis["bttc"]["producer_delay_secs"].as_u64().unwrap();
    let backup = net.genesis["bttc"]["backup_multiplier_secs"]
        .as_u64()
        .unwrap();
    for i in 0..VALIDATORS {
        net.start(i);
    }
    net.start_full_node();
    net.wait_until("12 blocks on every node", Duration::from_secs(120), |n| {
        (0..NODES).all(|i| n.head(i).is_some_and(|h| h >= 12))
    });

    // Kill the producer in turn for the next block, right after a block.
    let in_turn = net.status(0).unwrap()["bttc"]["in_turn"]
        .as_str()
        .unwrap()
        .to_owned();
    let killed = net.index_of(&in_turn);
    let witness = (killed + 1) % VALIDATORS;
    let before = net.head(witness).unwrap();
    net.wait_until("the next block", Duration::from_secs(30), |n| {
        n.head(witness).is_some_and(|h| h > before)
    });
    net.kill(killed);
    let killed_at = Instant::now();
    let last = net.head(witness).unwrap();
    let killed_address = net.address(killed);
    // Blocks the killed node sealed before it died may still arrive; the first block by
    // another producer after the kill is the backup's.
    let mut backup_block = None;
    net.wait_until("a backup's block", Duration::from_secs(40), |n| {
        let Some(head) = n.head(witness) else {
            return false;
        };
        for number in last + 1..=head {
            if n.author(witness, number)
                .is_some_and(|a| a != killed_address)
            {
                backup_block = Some(number);
                return true;
            }
        }
        false
    });
    let number = backup_block.unwrap();
    let sealed_after = killed_at.elapsed();
    let block = net.block(witness, number).unwrap();
    let parent = net.block(witness, number - 1).unwrap();
    let gap = hex_u64(&block["timestamp"]).unwrap() - hex_u64(&parent["timestamp"]).unwrap();
    let base = if number % sprint == 0 {
        producer_delay
    } else {
        period
    };
    assert!(
        gap <= base + backup,
        "block {number} by a backup came {gap} s after its parent (in turn: {base} s)"
    );
    assert!(
        sealed_after <= Duration::from_secs(base + backup + 2),
        "the backup sealed {sealed_after:?} after the kill"
    );
    let difficulty = hex_u64(&block["difficulty"]).unwrap();
    assert!(
        difficulty < VALIDATORS as u64,
        "a backup's block has a lower difficulty than the in-turn one, got {difficulty}"
    );

    // The killed node comes back, catches up and seals again in its turn.
    net.start(killed);
    let restarted_at = net.head(witness).unwrap();
    net.wait_until(
        "the restarted node to catch up",
        Duration::from_secs(60),
        |n| n.head(killed).is_some_and(|h| h >= restarted_at),
    );
    net.wait_until(
        "a block by the restarted node",
        Duration::from_secs(180),
        |n| {
            let Some(head) = n.head(witness) else {
                return false;
            };
            (restarted_at + 1..=head)
                .any(|b| n.author(witness, b).as_deref() == Some(&killed_address))
        },
    );
    net.wait_until(
        &format!("{blocks} blocks"),
        Duration::from_secs(blocks * 4 + 60),
        |n| n.head(witness).is_some_and(|h| h >= blocks),
    );

    // Every node holds the same block and state root at every height they all have.
    let heads: Vec<u64> = (0..NODES).map(|i| net.head(i).unwrap()).collect();
    let common = *heads.iter().min().unwrap();
    let mut times = Vec::new();
    for number in 0..=common {
        let blocks: Vec<Value> = (0..NODES).map(|i| net.block(i, number).unwrap()).collect();
        for (i, b) in blocks.iter().enumerate().skip(1) {
            assert_eq!(
                b["hash"], blocks[0]["hash"],
                "block {number}: node {i} differs"
            );
            assert_eq!(
                b["stateRoot"], blocks[0]["stateRoot"],
                "block {number}: node {i}"
            );
        }
        times.push(hex_u64(&blocks[0]["timestamp"]).unwrap());
    }
    let mut intervals: Vec<u64> = times.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    intervals.sort_unstable();
    let median = intervals[intervals.len() / 2];
    assert_eq!(median, period, "median block interval over {common} blocks");
    // Spans rotate: the chain is past span 0.
    let span = net.status(witness).unwrap()["bttc"]["span"]
        .as_u64()
        .unwrap();
    let first_end = net.genesis["bttc"]["first_span_end"].as_u64().unwrap();
    if common > first_end + sprint {
        assert!(span >= 1, "span {span} at block {common}");
    }
    net.observe_finalized();
    let finalized = net.finalized[witness];
    assert!(
        finalized + 4 * sprint >= common && finalized > 0,
        "finalized {finalized} follows the head {common}"
    );
    println!(
        "{common} blocks, median interval {median} s, backup sealed block {number} {sealed_after:?} \
         after the kill, finalized {finalized}, span {span}"
    );
    // The full node followed without sealing anything.
    let full = net.status(FULL_NODE).unwrap();
    assert_eq!(full["bttc"]["sealed"], 0, "a full node seals nothing");
    assert!(
        net.finalized[FULL_NODE] > 0,
        "the full node follows milestones"
    );
    for i in 0..NODES {
        net.stop(i);
    }
    assert!(Path::new(&net.node_dir(0)).join("chain").exists());
}

/// Reads a validator's key file (hex).
fn read_key(path: &Path) -> secp256k1::SecretKey {
    let text = std::fs::read_to_string(path).unwrap();
    let bytes: [u8; 32] = hex::decode(text.trim()).unwrap().try_into().unwrap();
    secp256k1::SecretKey::from_byte_array(bytes).unwrap()
}

/// What a bad block gets wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    BadSeal,
    UnknownSigner,
    Difficulty,
    TooEarly,
    SprintEndValidators,
    BodyMismatch,
}

impl Fault {
    /// Words of the reason the node logs for it.
    fn reason(self) -> &'static str {
        match self {
            Fault::BadSeal => "the seal does not recover a signer",
            Fault::UnknownSigner => "is not a producer of this sprint",
            Fault::Difficulty => "difficulty 3; signer at succession 0",
            Fault::TooEarly => "plus the producer delay",
            Fault::SprintEndValidators => "the sprint-end validators differ",
            Fault::BodyMismatch => "transactions root",
        }
    }
}

/// The child of `parent` the in-turn producer (`key`) would seal, but with `fault`.
fn bad_child(
    parent: &alloy_consensus::Header,
    key: &secp256k1::SecretKey,
    validators: u64,
    fault: Fault,
) -> bttc_engine::chain::bor::wire::RawBlock {
    use alloy_primitives::{B256, Bytes, U256};
    use bttc_engine::chain::bor::{EXTRA_SEAL, EXTRA_VANITY, seal, validator_bytes};
    let mut header = alloy_consensus::Header {
        parent_hash: parent.hash_slow(),
        number: parent.number + 1,
        timestamp: parent.timestamp + 2,
        difficulty: U256::from(validators),
        gas_limit: parent.gas_limit,
        base_fee_per_gas: parent.base_fee_per_gas,
        state_root: parent.state_root,
        ..Default::default()
    };
    let vanity: [u8; EXTRA_VANITY] = parent.extra_data[..EXTRA_VANITY].try_into().unwrap();
    let mut key = *key;
    let mut middle = Vec::new();
    match fault {
        Fault::Difficulty => header.difficulty = U256::from(validators - 1),
        Fault::TooEarly => header.timestamp = parent.timestamp + 1,
        Fault::UnknownSigner => key = secp256k1::SecretKey::from_byte_array([0x42; 32]).unwrap(),
        Fault::SprintEndValidators => {
            middle = validator_bytes(&[(alloy_primitives::Address::repeat_byte(9), 1)]);
        }
        Fault::BodyMismatch => header.transactions_root = B256::repeat_byte(7),
        Fault::BadSeal => {}
    }
    seal(&mut header, vanity, &middle, &key);
    if let Fault::BadSeal = fault {
        let mut extra = header.extra_data.to_vec();
        let at = extra.len() - EXTRA_SEAL;
        // r = s = 0: no signer recovers from it.
        extra[at..].copy_from_slice(&[0; EXTRA_SEAL]);
        header.extra_data = Bytes::from(extra);
    }
    bttc_engine::chain::bor::wire::RawBlock {
        header,
        txs: Vec::new(),
    }
}

#[test]
fn bad_blocks_and_frames_from_a_peer_are_refused_counted_and_the_node_runs_on() {
    use bttc_engine::{
        chain::bor::wire::ChainMessage,
        delivery::{signing::key_address, wire::Wire},
    };
    use bttc_net::p2p::{
        frame::FRAME_MAX,
        transport::{connect_raw, send_frame},
    };
    let mut net = Net::init();
    // Validator 3 stays down: the test speaks with its key, as a misbehaving peer.
    for i in 0..3 {
        net.start(i);
    }
    net.wait_until("3 blocks on node 0", Duration::from_secs(120), |n| {
        n.head(0).is_some_and(|h| h >= 3)
    });
    let keys: Vec<_> = (0..VALIDATORS)
        .map(|i| read_key(&net.node_dir(i).join("validator.key")))
        .collect();
    let bad_peer = format!("{:?}", key_address(&keys[3])).to_lowercase();
    let sprint = net.genesis["bttc"]["sprint"].as_u64().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let chain_id = net.genesis["chain_id"].as_u64().unwrap();
    let target = key_address(&keys[0]);
    let (_endpoint, conn) = rt
        .block_on(connect_raw(chain_id, &keys[3], target, net.addr(0, "p2p")))
        .unwrap();
    let send = |wire: &[u8]| rt.block_on(send_frame(&conn, wire, 0)).unwrap();
    let marked = |n: &Net| -> u64 {
        n.status(0)
            .and_then(|s| s["bttc"]["marked_peers"][&bad_peer].as_u64())
            .unwrap_or(0)
    };
    let faults = [
        Fault::BadSeal,
        Fault::UnknownSigner,
        Fault::Difficulty,
        Fault::TooEarly,
        Fault::SprintEndValidators,
        Fault::BodyMismatch,
    ];
    for fault in faults {
        let before = marked(&net);
        // The bad block must reach the node while its parent is still the head (a sibling of
        // a newer block is never looked at): retry on fresh heads until it is refused.
        let mut refused = false;
        for _ in 0..12 {
            let mut head = net.head(0).unwrap();
            // The next block must be in-turn at 2 s (not a sprint's first, 6 s) and, but for
            // the sprint-end fault, hold no validator bytes (not a sprint's last).
            let wanted = |next: u64| match fault {
                Fault::SprintEndValidators => next % sprint == sprint - 1,
                _ => !next.is_multiple_of(sprint) && next % sprint != sprint - 1,
            };
            net.wait_until("a head to build on", Duration::from_secs(60), |n| {
                n.head(0).is_some_and(|h| {
                    head = h;
                    wanted(h + 1)
                })
            });
            let block = net
                .eth(
                    0,
                    "eth_getBlockByNumber",
                    json!([format!("0x{head:x}"), false]),
                )
                .unwrap();
            let parent: alloy_rpc_types_eth::Header = serde_json::from_value(block).unwrap();
            let parent = parent.inner;
            let in_turn = net.status(0).unwrap()["bttc"]["in_turn"]
                .as_str()
                .unwrap()
                .to_owned();
            let producer = net.index_of(&in_turn);
            let raw = bad_child(&parent, &keys[producer], VALIDATORS as u64, fault);
            send(&Wire::Chain(Box::new(ChainMessage::Block(Box::new(raw)))).encode());
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && marked(&net) == before {
                std::thread::sleep(Duration::from_millis(50));
            }
            if marked(&net) > before {
                refused = true;
                break;
            }
        }
        assert!(refused, "{fault:?}: the block was never refused");
        let log = std::fs::read_to_string(net.node_dir(0).join("node.log")).unwrap();
        let refusals: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
        assert!(
            refusals.iter().any(|l| l.contains(fault.reason())),
            "{fault:?}: no \"{}\" among the refusals:\n{}",
            fault.reason(),
            refusals.join("\n")
        );
    }

    // Frames: an oversized one and a malformed announcement, counted by the transport.
    let network = |n: &Net| n.status(0).unwrap()["network"].clone();
    let (oversized, malformed) = {
        let n = network(&net);
        (
            n["oversized"].as_u64().unwrap(),
            n["malformed"].as_u64().unwrap(),
        )
    };
    send(&vec![7u8; FRAME_MAX + 1]);
    let mut announce = Wire::Chain(Box::new(ChainMessage::Announce {
        number: 1,
        hash: Default::default(),
    }))
    .encode();
    announce.truncate(announce.len() - 5);
    send(&announce);
    net.wait_until(
        "the bad frames to be counted",
        Duration::from_secs(10),
        |n| {
            let now = network(n);
            now["oversized"].as_u64().unwrap() > oversized
                && now["malformed"].as_u64().unwrap() > malformed
        },
    );
    // Both are counted against the peer that sent them.
    let marked_frames = network(&net)["marked_peers"][&bad_peer]
        .as_u64()
        .unwrap_or(0);
    assert!(
        marked_frames >= 2,
        "bad frames marked against the peer: {marked_frames}"
    );

    // The node runs on: its chain keeps growing and the refused blocks left no trace.
    let head = net.head(0).unwrap();
    net.wait_until("two more blocks", Duration::from_secs(30), |n| {
        n.head(0).is_some_and(|h| h >= head + 2)
    });
    let status = net.status(0).unwrap();
    assert!(status["bttc"]["refused"].as_u64().unwrap() >= faults.len() as u64);
    for i in 0..3 {
        net.stop(i);
    }
}
