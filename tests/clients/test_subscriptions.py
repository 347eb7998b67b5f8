"""web3.py over WebSocket: newHeads and filtered logs arrive complete and in order while a
load of transactions runs; the per-connection subscription limit."""

import asyncio
import json
import time

import requests
import websockets
from eth_account import Account
from web3 import AsyncWeb3, Web3, WebSocketProvider

from conftest import DEV_KEYS, DevNode

SUPPLY = 1_000_000 * 10**18
TRANSFERS_PER_SENDER = 60
DEADLINE_S = 120


def pad(address):
    return "0x" + "00" * 12 + address[2:].lower()


def raw_transfer(w3, token, account, nonce, to, amount, gas_price):
    tx = token.functions.transfer(to, amount).build_transaction(
        {"from": account.address, "nonce": nonce, "gas": 80_000, "gasPrice": gas_price, "chainId": 1337}
    )
    return account.sign_transaction(tx).raw_transaction


def rpc(url, method, *params):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = requests.post(url, json=body, timeout=30).json()
    assert "error" not in answer, answer
    return answer["result"]


def send_load(url, raws):
    """Sends every transaction, then waits until each is mined; returns their hashes."""
    hashes = [rpc(url, "eth_sendRawTransaction", "0x" + raw.hex()) for raw in raws]
    deadline = time.monotonic() + DEADLINE_S
    for h in hashes:
        while rpc(url, "eth_getTransactionReceipt", h) is None:
            assert time.monotonic() < deadline, f"{h} not mined"
            time.sleep(0.05)
    return hashes


def test_new_heads_and_filtered_logs_under_load(node, artifacts):
    w3 = Web3(Web3.HTTPProvider(node.url))
    alice, bob, carol, dave = (Account.from_key(k) for k in DEV_KEYS)
    artifact = artifacts["TestToken"]
    deployer = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    gas_price = w3.eth.gas_price * 2
    tx = deployer.constructor(SUPPLY).build_transaction(
        {"from": alice.address, "nonce": 0, "gasPrice": gas_price, "chainId": 1337}
    )
    (deployed,) = send_load(node.url, [alice.sign_transaction(tx).raw_transaction])
    address = w3.eth.get_transaction_receipt(deployed)["contractAddress"]
    token = w3.eth.contract(address=address, abi=artifact["abi"])
    senders = [alice, bob, carol, dave]
    funding = [raw_transfer(w3, token, alice, 1 + i, s.address, 10**21, gas_price) for i, s in enumerate(senders[1:])]
    send_load(node.url, funding)

    # The load: each sender's transfers alternate between a watched and an unwatched recipient.
    watched = Account.create().address
    unwatched = Account.create().address
    raws, to_watched = [], 0
    for s in senders:
        first = w3.eth.get_transaction_count(s.address)
        for i in range(TRANSFERS_PER_SENDER):
            to = watched if i % 2 == 0 else unwatched
            to_watched += to == watched
            raws.append(raw_transfer(w3, token, s, first + i, to, 1 + i, gas_price))
    transfer_topic = Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex()
    log_filter = {"address": token.address, "topics": [transfer_topic, None, pad(watched)]}
    # With no transactions pending, a zero block time makes no blocks: the tip holds still.
    start = w3.eth.block_number

    async def follow():
        async with AsyncWeb3(WebSocketProvider(node.ws_url)) as aw3:
            heads_id = await aw3.eth.subscribe("newHeads")
            logs_id = await aw3.eth.subscribe("logs", log_filter)
            load = asyncio.create_task(asyncio.to_thread(send_load, node.url, raws))
            heads, logs = [], []

            async def consume():
                async for message in aw3.socket.process_subscriptions():
                    if message["subscription"] == heads_id:
                        heads.append(message["result"])
                    elif message["subscription"] == logs_id:
                        logs.append(message["result"])

            consumer = asyncio.create_task(consume())
            deadline = time.monotonic() + DEADLINE_S
            # Done when the load is mined and the subscriptions have reached the tip.
            while True:
                assert time.monotonic() < deadline, f"{len(heads)} heads and {len(logs)} logs by the deadline"
                assert not consumer.done(), consumer
                if load.done():
                    tip = await aw3.eth.block_number
                    if heads and heads[-1]["number"] >= tip and len(logs) >= to_watched:
                        break
                await asyncio.sleep(0.05)
            consumer.cancel()
            await load
            return heads, logs

    heads, logs = asyncio.run(follow())
    tip = w3.eth.block_number

    # Every head, once, in order, each the block stored at its height, linked to its parent.
    assert [h["number"] for h in heads] == list(range(start + 1, tip + 1))
    assert len(heads) > 5, "the load spans several blocks"
    for head in heads:
        block = w3.eth.get_block(head["number"])
        assert head["hash"] == block["hash"]
        assert head["parentHash"] == block["parentHash"]
        assert head["stateRoot"] == block["stateRoot"]

    # Every matching log, once, in chain order, as eth_getLogs reports them.
    assert len(logs) == to_watched
    expected = w3.eth.get_logs({**log_filter, "fromBlock": start + 1, "toBlock": tip})
    key = lambda log: (log["blockNumber"], log["logIndex"], log["transactionHash"], log["data"])
    assert [key(l) for l in logs] == [key(l) for l in expected]
    assert [key(l)[:2] for l in logs] == sorted(key(l)[:2] for l in logs)
    assert all(l["topics"][2] == bytes.fromhex(pad(watched)[2:]) for l in logs)


async def ws_call(ws, method, *params, id=1):
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}))
    while True:
        answer = json.loads(await ws.recv())
        if answer.get("id") == id:
            return answer


def test_subscriptions_per_connection_are_limited(datadir):
    node = DevNode(datadir, block_time="3600", extra=("--ws.max-subscriptions", "2")).start()
    try:

        async def run():
            async with websockets.connect(node.ws_url) as ws:
                first = await ws_call(ws, "eth_subscribe", "newHeads")
                second = await ws_call(ws, "eth_subscribe", "newPendingTransactions", id=2)
                assert first["result"].startswith("0x") and second["result"].startswith("0x")
                refused = await ws_call(ws, "eth_subscribe", "logs", {}, id=3)
                assert refused["error"]["code"] == -32006, refused
                assert "Too many subscriptions" in refused["error"]["message"], refused
                # The connection keeps serving, and a freed slot can be used again.
                assert (await ws_call(ws, "eth_blockNumber", id=4))["result"] == "0x0"
                assert (await ws_call(ws, "eth_unsubscribe", first["result"], id=5))["result"] is True
                again = await ws_call(ws, "eth_subscribe", "newHeads", id=6)
                assert again["result"].startswith("0x"), again
            # Another connection has its own allowance.
            async with websockets.connect(node.ws_url) as ws:
                assert (await ws_call(ws, "eth_subscribe", "newHeads"))["result"].startswith("0x")
                unknown = await ws_call(ws, "eth_subscribe", "syncing", id=2)
                assert "unsupported subscription" in unknown["error"]["message"], unknown

        asyncio.run(run())
    finally:
        node.stop()
