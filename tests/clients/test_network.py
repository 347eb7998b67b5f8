"""web3.py against a network of four validators and a full node (`bttc devnet --full-nodes 1`):
the ERC-20 flow through a validator's RPC and through the full node's (whose transactions a
validator mines), a transaction sent to one validator mined by another, and `finalized`
following the head without ever going back."""

import time

from eth_account import Account
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from test_web3 import erc20_flow, send

# Dev account 4 of the test mnemonic: used here only, for plain transfers.
GOSSIP_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"


def bor_web3(url):
    """A web3 for a Bor chain: its headers carry 97 bytes of extra data (vanity, seal), so
    web3.py needs its proof-of-authority middleware, as for Polygon or BTTC."""
    w3 = Web3(Web3.HTTPProvider(url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def test_erc20_through_a_validator(network, artifacts):
    w3 = bor_web3(network.urls[1])
    erc20_flow(w3, artifacts, network.network["bttc"]["chain_id"])
    # Every validator holds the blocks the flow made.
    head = w3.eth.block_number
    for url in network.urls:
        other = bor_web3(url)
        deadline = time.monotonic() + 30
        while other.eth.block_number < head:
            assert time.monotonic() < deadline, f"{url} stays behind {head}"
            time.sleep(0.1)
        assert other.eth.get_block(head).hash == w3.eth.get_block(head).hash


def test_erc20_through_the_full_node(network, artifacts):
    full = network.network["full_nodes"][0]["rpc"]
    w3 = bor_web3(full)
    validators = {v["signer"].lower() for v in network.network["validators"]}
    head_before = w3.eth.block_number
    erc20_flow(w3, artifacts, network.network["bttc"]["chain_id"])
    # The full node seals nothing: every block since came from a validator.
    for number in range(head_before + 1, w3.eth.block_number + 1):
        author = network.rpc(len(network.network["validators"]), "bor_getAuthor", hex(number))["result"]
        assert author.lower() in validators, f"block {number} by {author}"


def test_a_transaction_sent_to_one_validator_is_mined_by_another(network):
    sender = Account.from_key(GOSSIP_KEY)
    for attempt in range(3):
        status = network.rpc(0, "bor_getAuthor")["result"].lower()
        # Send to a validator that is not producing now: only gossip brings it to a producer.
        target = next(i for i, v in enumerate(network.network["validators"]) if v["signer"].lower() != status)
        w3 = bor_web3(network.urls[target])
        receipt = send(w3, sender, {"to": "0x000000000000000000000000000000000000dEaD", "value": 1, "gas": 21_000,
                                    "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9})
        assert receipt.status == 1
        author = network.rpc(target, "bor_getAuthor", hex(receipt.blockNumber))["result"].lower()
        if author != network.network["validators"][target]["signer"].lower():
            return
    raise AssertionError("every transfer was mined by the validator it was sent to")


def test_finalized_follows_the_head_and_never_goes_back(network):
    w3 = bor_web3(network.urls[2])
    seen = []
    deadline = time.monotonic() + 60
    while len(set(seen)) < 3:
        assert time.monotonic() < deadline, f"finalized did not advance: {seen}"
        finalized = w3.eth.get_block("finalized").number
        assert not seen or finalized >= seen[-1], f"finalized went back: {seen} then {finalized}"
        assert finalized <= w3.eth.block_number
        seen.append(finalized)
        time.sleep(0.5)
    assert w3.eth.get_block("safe").number >= seen[0]
    # The milestone behind `finalized`: the same block, and the Delivery height that decided it.
    milestone = network.rpc(2, "bor_getLatestMilestone")["result"]
    block = w3.eth.get_block(int(milestone["number"], 16))
    assert block.hash.to_0x_hex() == milestone["hash"]
    assert milestone["deliveryHeight"] > 0
