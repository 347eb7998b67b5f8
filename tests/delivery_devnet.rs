//! Multi-process Delivery chain tests: real `bttc delivery` processes talking QUIC on loopback,
//! each with its own MDBX database.

use alloy_primitives::{Address, B256};
use bttc_engine::delivery::{
    block::Block,
    signing::{SignedVote, key_address, sign_vote},
    tendermint::{DeliveryHeight, Vote, VoteKind},
};
use bttc_net::p2p::{
    frame::{FRAME_MAX, Wire},
    transport::{connect_raw, send_frame},
};
use bttc_storage::{SyncMode, delivery::DeliveryDb};
use secp256k1::SecretKey;
use serde_json::Value;
use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BTTC: &str = env!("CARGO_BIN_EXE_bttc");

struct Devnet {
    dir: tempfile::TempDir,
    genesis: Value,
    nodes: Vec<Option<Child>>,
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

impl Devnet {
    /// Keys and a genesis for `n` validators (via `bttc devnet --init-only`); none started.
    fn init(n: usize, base_port: u16, block_interval_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BTTC)
            .args(["devnet", "--init-only", "--delivery-only", "--validators"])
            .arg(n.to_string())
            .arg("--datadir")
            .arg(dir.path())
            .args(["--base-port", &base_port.to_string()])
            .args(["--block-interval-ms", &block_interval_ms.to_string()])
            .args(["--timeout-propose-ms", "600"])
            .output()
            .unwrap();
        assert!(out.status.success(), "devnet init failed: {out:?}");
        let genesis: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("genesis.json")).unwrap(),
        )
        .unwrap();
        Self {
            dir,
            genesis,
            nodes: (0..n).map(|_| None).collect(),
        }
    }

    fn rpc(&self, i: usize) -> SocketAddr {
        self.genesis["validators"][i]["rpc"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn p2p(&self, i: usize) -> SocketAddr {
        self.genesis["validators"][i]["p2p"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn chain_id(&self) -> u64 {
        self.genesis["chain_id"].as_u64().unwrap()
    }

    fn key(&self, i: usize) -> SecretKey {
        let text =
            std::fs::read_to_string(node_dir(self.dir.path(), i).join("validator.key")).unwrap();
        SecretKey::from_byte_array(hex::decode(text.trim()).unwrap().try_into().unwrap()).unwrap()
    }

    fn start(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} already runs");
        let dir = node_dir(self.dir.path(), i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(BTTC)
            .arg("delivery")
            .arg("--datadir")
            .arg(&dir)
            .arg("--genesis")
            .arg(self.dir.path().join("genesis.json"))
            .arg("--key-file")
            .arg(dir.join("validator.key"))
            .env("RUST_LOG", "info,libmdbx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
    }

    /// SIGKILL: the process gets no chance to clean up.
    fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(&mut self, i: usize) {
        let mut child = self.nodes[i].take().expect("running");
        // SAFETY: kill(2) on a child we own.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "node {i} exited with {status}");
    }

    fn status(&self, i: usize) -> Option<Value> {
        rpc_call(self.rpc(i), "delivery_status", "[]")
    }

    fn height(&self, i: usize) -> Option<u64> {
        self.status(i).and_then(|s| s["height"].as_u64())
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(node_dir(self.dir.path(), i).join("node.log")).unwrap_or_default()
    }

    /// Polls until `cond` holds; on timeout panics with every node's log tail.
    fn wait_until(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            if start.elapsed() > timeout {
                for i in 0..self.nodes.len() {
                    let log = self.log(i);
                    let tail: String = log
                        .chars()
                        .rev()
                        .take(3000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    eprintln!("--- node {i} log tail ---\n{tail}");
                }
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open_db(&self, i: usize) -> DeliveryDb {
        DeliveryDb::open(
            &node_dir(self.dir.path(), i).join("delivery"),
            SyncMode::Durable,
        )
        .unwrap()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A JSON-RPC call over plain HTTP/1.1; `None` if the node does not answer.
fn rpc_call(addr: SocketAddr, method: &str, params: &str) -> Option<Value> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let json = response.split("\r\n\r\n").nth(1)?;
    let value: Value = serde_json::from_str(json).ok()?;
    Some(value["result"].clone())
}

/// Every signed vote any node knows of, checked for conflicts: each validator's own signed
/// votes table and every precommit in every node's stored blocks and commits. Returns how
/// many distinct votes were checked.
fn assert_no_conflicting_votes(net: &Devnet, tip: u64) -> usize {
    let mut votes: BTreeMap<(Address, u64, u32, u8), Option<B256>> = BTreeMap::new();
    let mut add = |v: &SignedVote, source: &str| {
        let key = (
            v.vote.validator,
            v.vote.height.0,
            v.vote.round,
            v.vote.kind as u8,
        );
        if let Some(previous) = votes.insert(key, v.vote.value) {
            assert_eq!(
                previous, v.vote.value,
                "validator {} signed two different votes at {key:?} (seen in {source})",
                v.vote.validator
            );
        }
    };
    for i in 0..net.nodes.len() {
        let db = net.open_db(i);
        for v in db.signed_votes().unwrap() {
            add(&v, &format!("node {i}'s signed votes"));
        }
        for h in 1..=tip {
            let (block, commit): (Block, _) =
                db.block(DeliveryHeight(h)).unwrap().expect("block stored");
            for c in block.last_commit.iter().chain(&commit) {
                add(&c.vote, &format!("node {i}'s block {h}"));
            }
        }
    }
    votes.len()
}

#[test]
fn four_validators_commit_100_heights_through_sigkills_without_double_signing() {
    let mut net = Devnet::init(4, 27_000, 50);
    for i in 0..4 {
        net.start(i);
    }
    let min_height = |net: &Devnet, nodes: &[usize]| {
        nodes
            .iter()
            .map(|i| net.height(*i).unwrap_or(0))
            .min()
            .unwrap()
    };
    net.wait_until("4 validators at height 25", Duration::from_secs(60), |n| {
        min_height(n, &[0, 1, 2, 3]) >= 25
    });

    // Kill validator 3 at an arbitrary instant; the other three go on without it.
    net.kill(3);
    let at_kill = min_height(&net, &[0, 1, 2]);
    net.wait_until("3 validators to go on", Duration::from_secs(60), |n| {
        min_height(n, &[0, 1, 2]) >= at_kill + 15
    });
    net.start(3);
    net.wait_until("validator 3 to rejoin", Duration::from_secs(60), |n| {
        n.height(3).unwrap_or(0) >= min_height(n, &[0, 1, 2]).saturating_sub(1)
            && n.status(3).is_some_and(|s| s["peers"] == 3)
    });

    // And validator 1, later, at another instant.
    net.wait_until("height 60", Duration::from_secs(60), |n| {
        min_height(n, &[0, 1, 2, 3]) >= 60
    });
    net.kill(1);
    net.start(1);
    // Validator 2 is killed again and again soon after each restart: while it opens its
    // database, replays its log, or catches up.
    for delay_ms in [150, 400, 900] {
        net.wait_until("validator 2 to answer", Duration::from_secs(30), |n| {
            n.status(2).is_some()
        });
        std::thread::sleep(Duration::from_millis(delay_ms)); // the instant of the kill
        net.kill(2);
        net.start(2);
    }
    net.wait_until(
        "all 4 validators at height 100",
        Duration::from_secs(120),
        |n| min_height(n, &[0, 1, 2, 3]) >= 100,
    );
    let statuses: Vec<Value> = (0..4).map(|i| net.status(i).unwrap()).collect();
    for i in 0..4 {
        net.stop(i);
    }

    // The restarted validators replayed their logs and fetched what they missed.
    assert!(
        net.log(3).contains("replayed the write-ahead log") || net.log(3).contains("caught up")
    );
    assert!(
        net.log(3).contains("caught up from a peer"),
        "validator 3 fetched missed blocks"
    );
    // Agreement: every node stored the same blocks.
    let dbs: Vec<DeliveryDb> = (0..4).map(|i| net.open_db(i)).collect();
    for h in 1..=100 {
        let hashes: Vec<B256> = dbs
            .iter()
            .map(|db| db.block(DeliveryHeight(h)).unwrap().unwrap().0.hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "height {h}: {hashes:?}"
        );
    }
    // The restarted validators signed again after their restart.
    for (i, db) in dbs.iter().enumerate() {
        let last = db
            .signed_votes()
            .unwrap()
            .iter()
            .map(|v| v.vote.height.0)
            .max();
        assert!(
            last.unwrap_or(0) >= 95,
            "validator {i} voted up to {last:?}"
        );
    }
    drop(dbs);
    let checked = assert_no_conflicting_votes(&net, 100);
    assert!(checked > 400, "checked {checked} votes");
    for s in statuses {
        assert_eq!(s["doubleSignRefusals"], 0);
        assert_eq!(s["validators"], 4);
    }
}

#[test]
fn with_two_of_four_stopped_nothing_commits_until_one_returns() {
    let mut net = Devnet::init(4, 27_200, 50);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_until("height 5", Duration::from_secs(60), |n| {
        (0..4).all(|i| n.height(i).unwrap_or(0) >= 5)
    });
    net.stop(2);
    net.stop(3);
    // A commit already under way when they stopped may still land (its votes were in flight);
    // then the two left wait in a height for a quorum that cannot form (Algorithm 1 needs 2f+1
    // votes even to time a round out). Settled = the same height and round on both for 1 s.
    let snapshot = |n: &Devnet| {
        let (a, b) = (n.status(0).unwrap(), n.status(1).unwrap());
        (
            a["height"].clone(),
            a["round"].clone(),
            b["height"].clone(),
            b["round"].clone(),
        )
    };
    let mut last = (snapshot(&net), Instant::now());
    net.wait_until("the two left to settle", Duration::from_secs(20), |n| {
        let now = snapshot(n);
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() >= Duration::from_secs(1) && last.0.0 == last.0.2
    });
    let stalled = [net.height(0).unwrap(), net.height(1).unwrap()];
    // An observation window: two validators of four are not a quorum; no height commits.
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(4) {
        assert_eq!([net.height(0).unwrap(), net.height(1).unwrap()], stalled);
        std::thread::sleep(Duration::from_millis(100));
    }
    net.start(2);
    net.wait_until("commits to resume", Duration::from_secs(60), |n| {
        (0..3).all(|i| n.height(i).unwrap_or(0) >= stalled[0].max(stalled[1]) + 3)
    });
}

#[test]
fn bad_peers_and_frames_are_refused_and_counted() {
    let mut net = Devnet::init(4, 27_400, 200);
    net.start(0);
    net.wait_until("node 0 to answer", Duration::from_secs(30), |n| {
        n.status(0).is_some()
    });
    let chain_id = net.chain_id();
    let target = key_address(&net.key(0));
    let addr = net.p2p(0);
    let network = |net: &Devnet| net.status(0).unwrap()["network"].clone();
    // Worker threads keep driving the QUIC link between the block_on calls.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // A peer whose key is not a validator's cannot complete the handshake.
    let stranger = SecretKey::from_byte_array([0x42; 32]).unwrap();
    let refused = rt.block_on(async {
        match connect_raw(chain_id, &stranger, target, addr).await {
            Err(_) => true,
            // The server may refuse after the client side finished: the link must not work.
            Ok((_e, conn)) => {
                let _ = send_frame(
                    &conn,
                    &Wire::Status {
                        height: DeliveryHeight(1),
                    }
                    .encode(),
                    0,
                )
                .await;
                conn.closed().await;
                true
            }
        }
    });
    assert!(refused);
    net.wait_until(
        "the unknown key to be counted",
        Duration::from_secs(10),
        |n| network(n)["unknown_key"].as_u64().unwrap() >= 1,
    );

    // A validator's key gets in; then it misbehaves.
    let key1 = net.key(1);
    let key2 = net.key(2);
    // The link stays open until the node has read every frame.
    let _link = rt.block_on(async {
        let (endpoint, conn) = connect_raw(chain_id, &key1, target, addr).await.unwrap();
        send_frame(&conn, &[99, 1, 2, 3], 0).await.unwrap();
        send_frame(&conn, &vec![2u8; FRAME_MAX + 1], 0)
            .await
            .unwrap();
        // A prevote claiming validator 1 but signed by validator 2's key.
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: DeliveryHeight(1),
            round: 0,
            value: None,
            validator: key_address(&key1),
        };
        let mut forged = sign_vote(
            chain_id,
            &key2,
            Vote {
                validator: key_address(&key2),
                ..vote
            },
        );
        forged.vote = vote;
        send_frame(&conn, &Wire::Prevote(forged).encode(), 0)
            .await
            .unwrap();
        (endpoint, conn)
    });
    net.wait_until("each refusal to be counted", Duration::from_secs(10), |n| {
        let c = network(n);
        c["malformed"].as_u64().unwrap() >= 1
            && c["oversized"].as_u64().unwrap() >= 1
            && c["bad_signature"].as_u64().unwrap() >= 1
    });
    // The node keeps running and answering.
    let status = net.status(0).unwrap();
    assert_eq!(status["validators"], 4);
    assert!(net.nodes[0].as_mut().unwrap().try_wait().unwrap().is_none());
    net.stop(0);
}

#[test]
fn side_transactions_follow_each_validators_view_and_can_add_a_validator() {
    let mut net = Devnet::init(4, 27_600, 50);
    let newcomer = key_address(&SecretKey::from_byte_array([0x77; 32]).unwrap());
    let add = [&[1u8][..], newcomer.as_slice()].concat();
    let seen_by_two = vec![0u8, 0xaa];
    let seen_by_none = vec![0u8, 0xbb];
    // Each validator's own view of the outside world: all four see the staking event, two see
    // the fact (they disagree with the other two), nobody sees the last one.
    for i in 0..4 {
        let mut facts = vec![hex::encode(&add)];
        if i < 2 {
            facts.push(hex::encode(&seen_by_two));
        }
        std::fs::write(
            node_dir(net.dir.path(), i).join("side-facts"),
            facts.join("\n"),
        )
        .unwrap();
        net.start(i);
    }
    net.wait_until("height 2", Duration::from_secs(30), |n| {
        (0..4).all(|i| n.height(i).unwrap_or(0) >= 2)
    });
    let mut hashes = Vec::new();
    for payload in [&add, &seen_by_two, &seen_by_none] {
        let params = format!(r#"["side","0x{}"]"#, hex::encode(payload));
        let hash = rpc_call(net.rpc(0), "delivery_sendTx", &params).expect("sendTx answers");
        assert!(hash.is_string(), "sendTx: {hash}");
        hashes.push(alloy_primitives::keccak256(payload));
    }
    // The validator set grows at a height boundary, on every node.
    net.wait_until(
        "the new validator to join the set",
        Duration::from_secs(30),
        |n| (0..4).all(|i| n.status(i).is_some_and(|s| s["validators"] == 5)),
    );
    let outcome = |i: usize, tx: B256| {
        let key = format!("0x{}{}", hex::encode(b"side/"), hex::encode(tx));
        rpc_call(net.rpc(i), "delivery_getValue", &format!(r#"["{key}"]"#))
    };
    for i in 0..4 {
        // Yes = 0x01, Skip = 0x00 (no quorum either way), No = 0x02.
        assert_eq!(outcome(i, hashes[0]).unwrap(), "0x01");
        assert_eq!(outcome(i, hashes[1]).unwrap(), "0x00");
        assert_eq!(outcome(i, hashes[2]).unwrap(), "0x02");
    }
    // The block that tallied them carries each validator's signed results in its last commit.
    let tip = net.height(0).unwrap();
    let tallied = (1..=tip)
        .filter_map(|h| rpc_call(net.rpc(0), "delivery_getBlock", &format!("[{h}]")))
        .find(|b| {
            b["lastCommit"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| !v["sideResults"].as_array().unwrap().is_empty())
        })
        .expect("a block with side results");
    let commit = tallied["lastCommit"].as_array().unwrap();
    assert!(commit.len() >= 3);
    // Signatures are kept sorted by signer address.
    let signers: Vec<Address> = commit
        .iter()
        .map(|v| v["validator"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(signers.windows(2).all(|w| w[0] < w[1]), "{signers:?}");
    for v in commit {
        let results = v["sideResults"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["result"], 1);
        assert!(results[0]["signature"].is_string());
    }
    for i in 0..4 {
        net.stop(i);
    }
}

#[test]
fn devnet_command_starts_validators_shows_status_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("devnet.out");
    let mut devnet = Command::new(BTTC)
        .args([
            "devnet",
            "--delivery-only",
            "--validators",
            "4",
            "--base-port",
            "27800",
        ])
        .args(["--block-interval-ms", "50", "--timeout-propose-ms", "600"])
        .arg("--datadir")
        .arg(dir.path().join("net"))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let rpc: SocketAddr = "127.0.0.1:27803".parse().unwrap();
    let start = Instant::now();
    loop {
        let status = rpc_call(rpc, "delivery_status", "[]");
        if status.is_some_and(|s| s["height"].as_u64().unwrap_or(0) >= 3 && s["peers"] == 3) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "devnet did not commit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let printed = |path: &Path| std::fs::read_to_string(path).unwrap();
    let start = Instant::now();
    // The status line names every node's height, round and peers.
    while !printed(&out_path).contains("n3 h") {
        assert!(start.elapsed() < Duration::from_secs(10), "no status line");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on a child we own; SIGINT is what Ctrl-C sends.
    unsafe { libc::kill(devnet.id() as libc::pid_t, libc::SIGINT) };
    assert!(devnet.wait().unwrap().success());
    let out = printed(&out_path);
    for port in 27800..27804 {
        assert!(
            out.contains(&format!("rpc http://127.0.0.1:{port}")),
            "{out}"
        );
    }
    for i in 0..4 {
        assert!(
            out.contains(&format!("node-{i} exited: exit status: 0")),
            "{out}"
        );
    }
    assert!(
        rpc_call(rpc, "delivery_status", "[]").is_none(),
        "validators stopped"
    );
}
