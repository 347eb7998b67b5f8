"""Crash safety: SIGKILL the dev node while it commits blocks under load, restart it, and find
every block it had reported with the same hash and state root; the chain then continues."""

import signal
import subprocess
import threading
import time

import requests
from eth_account import Account
from web3 import Web3

from conftest import DEV_KEYS, DevNode, bttc_binary

GWEI = 10**9
ROUNDS = 3
BLOCKS_BEFORE_KILL = 8


def signed_transfers(key, start_nonce, count):
    sender = Account.from_key(key)
    return [
        sender.sign_transaction({
            "chainId": 1337, "nonce": start_nonce + i, "gas": 21000, "maxFeePerGas": 50 * GWEI,
            "maxPriorityFeePerGas": GWEI, "to": Account.create().address, "value": 1 + i,
        }).raw_transaction.to_0x_hex()
        for i in range(count)
    ]


def observed_blocks(node, seen, stop):
    """Records (hash, stateRoot) of every block the node reports, until `stop` is set."""
    session = requests.Session()
    body = lambda m, *p: {"jsonrpc": "2.0", "id": 1, "method": m, "params": list(p)}
    while not stop.is_set():
        try:
            tip = int(session.post(node.url, json=body("eth_blockNumber"), timeout=5).json()["result"], 16)
            for n in range(max(seen, default=0), tip + 1):
                if n not in seen:
                    block = session.post(node.url, json=body("eth_getBlockByNumber", hex(n), False), timeout=5).json()
                    seen[n] = (block["result"]["hash"], block["result"]["stateRoot"])
        except (requests.ConnectionError, requests.Timeout, KeyError, TypeError):
            return


def send_all(node, raws, stop):
    session = requests.Session()
    for raw in raws:
        if stop.is_set():
            return
        try:
            session.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                                         "params": [raw]}, timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            return


def test_sigkill_under_load_loses_no_reported_block(datadir):
    reported = {}
    nonces = {k: 0 for k in DEV_KEYS}
    for round_ in range(ROUNDS):
        node = DevNode(datadir, block_time="0").start()
        w3 = Web3(Web3.HTTPProvider(node.url))
        # Every block reported before the last kill is still there, unchanged.
        for n, (block_hash, state_root) in reported.items():
            block = w3.eth.get_block(n)
            assert (block.hash.to_0x_hex(), block.stateRoot.to_0x_hex()) == (block_hash, state_root), f"block {n}"
        for key in DEV_KEYS:
            nonces[key] = w3.eth.get_transaction_count(Account.from_key(key).address, "pending")
        tip_before = w3.eth.block_number

        stop = threading.Event()
        seen = {}
        senders = [
            threading.Thread(target=send_all, args=(node, signed_transfers(k, nonces[k], 250), stop), daemon=True)
            for k in DEV_KEYS
        ]
        observer = threading.Thread(target=observed_blocks, args=(node, seen, stop), daemon=True)
        for t in senders + [observer]:
            t.start()
        deadline = time.monotonic() + 60
        while len([n for n in seen if n > tip_before]) < BLOCKS_BEFORE_KILL:
            assert time.monotonic() < deadline, f"round {round_}: too few blocks under load:\n{node.log_text()}"
            time.sleep(0.01)
        node.stop(signal.SIGKILL)
        stop.set()
        for t in senders + [observer]:
            t.join(timeout=10)
        reported.update(seen)

        # The database is consistent on its own: linked headers, and the tip's state root
        # recomputed from the account tables equals the header's.
        verify = subprocess.run([str(bttc_binary()), "db", "verify", "--datadir", str(datadir)],
                                capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # The chain continues after the last restart.
    node = DevNode(datadir, block_time="0").start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        for n, (block_hash, state_root) in reported.items():
            block = w3.eth.get_block(n)
            assert (block.hash.to_0x_hex(), block.stateRoot.to_0x_hex()) == (block_hash, state_root), f"block {n}"
        tip = w3.eth.block_number
        alice = Account.from_key(DEV_KEYS[0])
        nonce = w3.eth.get_transaction_count(alice.address, "pending")
        raw = signed_transfers(DEV_KEYS[0], nonce, 1)[0]
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw), timeout=30, poll_latency=0.05)
        assert receipt.status == 1 and receipt.blockNumber > tip
        assert len(reported) > ROUNDS * BLOCKS_BEFORE_KILL
    finally:
        node.stop()
