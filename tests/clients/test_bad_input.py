"""Bad input over JSON-RPC: every refusal has its own error and changes neither pool nor state."""

import requests
import rlp
from eth_account import Account
from web3 import Web3

from conftest import DEV_KEYS

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GWEI = 10**9


def snapshot(node, addresses):
    """What a refusal must not change: pool counts, tip, balances and nonces."""
    status = node.rpc("txpool_status")["result"]
    tip = node.rpc("eth_blockNumber")["result"]
    accounts = [
        (node.rpc("eth_getBalance", a, "latest")["result"], node.rpc("eth_getTransactionCount", a, "pending")["result"])
        for a in addresses
    ]
    return status, tip, accounts


def test_each_rejection_has_its_error(node):
    alice = Account.from_key(DEV_KEYS[0])
    stranger = Account.create()
    w3 = Web3(Web3.HTTPProvider(node.url))

    def tx(**kw):
        base = {"chainId": 1337, "nonce": w3.eth.get_transaction_count(alice.address, "pending"), "gas": 21000,
                "maxFeePerGas": 2 * GWEI, "maxPriorityFeePerGas": GWEI, "to": stranger.address, "value": 1}
        base.update(kw)
        return base

    def raw(tx_dict, key=alice):
        return key.sign_transaction(tx_dict).raw_transaction.to_0x_hex()

    # One transaction mined first, so that "nonce too low" has something to be low against.
    first = node.rpc("eth_sendRawTransaction", raw(tx()))
    assert "result" in first, first
    w3.eth.wait_for_transaction_receipt(first["result"], timeout=30, poll_latency=0.05)

    # A queued transaction (nonce gap) stays in the pool for "already known" and replacement.
    gap_nonce = w3.eth.get_transaction_count(alice.address, "pending") + 5
    queued = raw(tx(nonce=gap_nonce))
    assert "result" in node.rpc("eth_sendRawTransaction", queued)

    # A legacy transaction re-encoded with s replaced by n - s: a valid curve point, but EIP-2
    # forbids the high s.
    legacy = alice.sign_transaction({"chainId": 1337, "nonce": gap_nonce + 1, "gas": 21000, "gasPrice": 2 * GWEI,
                                     "to": stranger.address, "value": 1})
    fields = rlp.decode(bytes(legacy.raw_transaction))
    fields[8] = (SECP256K1_N - int.from_bytes(fields[8], "big")).to_bytes(32, "big")
    bad_sig = "0x" + rlp.encode(fields).hex()

    cases = [
        ("invalid signature", bad_sig, -32602, "invalid signature"),
        ("wrong chain id", raw(tx(chainId=1)), -32000, "invalid chain id"),
        ("nonce too low", raw(tx(nonce=0)), -32000, "nonce too low"),
        ("insufficient funds", raw(tx(nonce=0), key=stranger), -32000, "insufficient funds for gas * price + value"),
        ("intrinsic gas too low", raw(tx(gas=20999)), -32000, "intrinsic gas too low"),
        ("above block gas limit", raw(tx(gas=2_000_000_000)), -32000, "exceeds block gas limit"),
        ("oversized", raw(tx(gas=10_000_000, data="0x" + "01" * 140_000)), -32000, "oversized data"),
        ("fee below minimum", raw(tx(maxFeePerGas=1, maxPriorityFeePerGas=1)), -32000, "transaction underpriced"),
        ("already known", queued, -32000, "already known"),
        ("replacement underpriced", raw(tx(nonce=gap_nonce, value=2)), -32000, "replacement transaction underpriced"),
        ("malformed RLP", "0xdeadbeef", -32602, "does not decode"),
        ("empty", "0x", -32602, "does not decode"),
    ]
    watched = [alice.address, stranger.address]
    before = snapshot(node, watched)
    for name, payload, code, message in cases:
        answer = node.rpc("eth_sendRawTransaction", payload)
        assert "error" in answer, f"{name}: accepted: {answer}"
        assert answer["error"]["code"] == code, f"{name}: {answer}"
        assert message in answer["error"]["message"], f"{name}: {answer}"
        assert snapshot(node, watched) == before, f"{name} changed the node"


def test_malformed_requests_get_errors_not_crashes(node):
    post = lambda data, ctype="application/json": requests.post(
        node.url, data=data, headers={"content-type": ctype}, timeout=10)
    bad_json = post('{"jsonrpc":"2.0","id":1,"method":')
    assert bad_json.json()["error"]["code"] == -32700
    assert post("not json at all").json()["error"]["code"] == -32700
    assert node.rpc("eth_noSuchMethod")["error"]["code"] == -32601
    assert node.rpc("eth_getBalance", "0x1234")["error"]["code"] == -32602
    assert node.rpc("eth_getBlockByNumber", "0xzz", False)["error"]["code"] == -32602
    assert node.rpc("eth_sendRawTransaction", "0x" + "ff" * 200_000)["error"]["code"] == -32000
    huge = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + "a" * (17 << 20) + '"]}'
    assert post(huge).status_code == 413
    # Historical state is refused plainly (once a block follows genesis); future blocks are not found.
    alice = Account.from_key(DEV_KEYS[0])
    sent = node.rpc("eth_sendRawTransaction", alice.sign_transaction(
        {"chainId": 1337, "nonce": 0, "gas": 21000, "gasPrice": 2 * GWEI, "to": alice.address, "value": 0}
    ).raw_transaction.to_0x_hex())["result"]
    Web3(Web3.HTTPProvider(node.url)).eth.wait_for_transaction_receipt(sent, timeout=30, poll_latency=0.05)
    assert "historical state unavailable" in node.rpc("eth_getBalance", alice.address, "0x0")["error"]["message"]
    assert node.rpc("eth_getBlockByNumber", "0xffffff", False)["result"] is None
    # A logs query over too many blocks is refused with its limit; a reversed range is refused.
    assert node.rpc("eth_getLogs", {"fromBlock": "0x0", "toBlock": "0x0"})["result"] == []
    assert node.rpc("eth_getLogs", {"fromBlock": "0x1", "toBlock": "0x0"})["error"]["code"] == -32602
    # The node still serves.
    assert node.rpc("eth_chainId")["result"] == "0x539"
