"""web3.py against the dev node: deploy an ERC-20, transfer, read logs, see reverts."""

from eth_abi import decode
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from conftest import DEV_KEYS

SUPPLY = 1_000_000 * 10**18


def send(w3, account, tx):
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    tx.setdefault("chainId", w3.eth.chain_id)
    tx.setdefault("from", account.address)
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    # A network makes a block every 2 s (6 s at a sprint's start); the dev node at once.
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)


def deploy(w3, account, artifact, *args):
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = contract.constructor(*args).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    receipt = send(w3, account, tx)
    assert receipt.status == 1, receipt
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"]), receipt


def test_erc20_deploy_transfer_logs_and_reverts(node, artifacts):
    w3 = Web3(Web3.HTTPProvider(node.url))
    assert w3.eth.get_balance(Account.from_key(DEV_KEYS[0]).address) == 10**24
    erc20_flow(w3, artifacts, 1337)


def erc20_flow(w3, artifacts, chain_id):
    """Deploys the ERC-20, transfers, reads logs and reverts through `w3`."""
    assert w3.is_connected()
    assert w3.eth.chain_id == chain_id
    alice, bob, carol, dave = (Account.from_key(k) for k in DEV_KEYS)

    token, receipt = deploy(w3, alice, artifacts["TestToken"], SUPPLY)
    assert w3.eth.get_code(token.address) != b""
    assert token.functions.balanceOf(alice.address).call() == SUPPLY
    assert token.functions.symbol().call() == "TST"

    r1 = send(w3, alice, token.functions.transfer(bob.address, 1000).build_transaction({"from": alice.address}))
    r2 = send(w3, bob, token.functions.transfer(carol.address, 250).build_transaction({"from": bob.address}))
    assert r1.status == 1 and r2.status == 1
    assert token.functions.balanceOf(alice.address).call() == SUPPLY - 1000
    assert token.functions.balanceOf(bob.address).call() == 750
    assert token.functions.balanceOf(carol.address).call() == 250

    # The block and the receipt agree with each other.
    block = w3.eth.get_block(r1.blockNumber, full_transactions=True)
    assert r1.transactionHash in [t["hash"] for t in block.transactions]
    assert w3.eth.get_transaction(r1.transactionHash)["from"] == alice.address
    assert r1.gasUsed > 21000 and r1.effectiveGasPrice > 0

    transfer_topic = Web3.keccak(text="Transfer(address,address,uint256)")
    pad = lambda a: "0x" + "00" * 12 + a[2:].lower()
    all_logs = w3.eth.get_logs({"fromBlock": receipt.blockNumber, "toBlock": "latest", "address": token.address})
    assert len(all_logs) == 3  # mint, alice->bob, bob->carol
    from_alice = w3.eth.get_logs({"fromBlock": receipt.blockNumber, "topics": [transfer_topic, pad(alice.address)]})
    assert [decode(["uint256"], l["data"])[0] for l in from_alice] == [1000]
    assert from_alice[0]["transactionHash"] == r1.transactionHash
    to_carol = w3.eth.get_logs({"fromBlock": receipt.blockNumber, "topics": [transfer_topic, None, pad(carol.address)]})
    assert len(to_carol) == 1 and to_carol[0]["blockNumber"] == r2.blockNumber
    # An address that is no part of any transfer matches nothing.
    assert w3.eth.get_logs({"fromBlock": receipt.blockNumber, "topics": [transfer_topic, None, pad(dave.address)]}) == []

    # A reverted call shows its reason string.
    try:
        token.functions.failWithReason().call()
        raise AssertionError("call should revert")
    except ContractLogicError as e:
        assert "token: always fails" in str(e)

    # A custom error returns its selector and arguments.
    selector = Web3.keccak(text="InsufficientBalance(address,uint256,uint256)")[:4]
    try:
        token.functions.transfer(alice.address, 5).call({"from": dave.address})
        raise AssertionError("call should revert")
    except (ContractCustomError, ContractLogicError) as e:
        data = e.data if isinstance(e.data, str) else e.data.get("data")
        raw = bytes.fromhex(data[2:])
        assert raw[:4] == selector
        account, balance, needed = decode(["address", "uint256", "uint256"], raw[4:])
        assert (account.lower(), balance, needed) == (dave.address.lower(), 0, 5)

    # Estimating a reverting transaction reports the revert as well.
    try:
        w3.eth.estimate_gas({"from": alice.address, "to": token.address, "data": token.encode_abi("failWithReason")})
        raise AssertionError("estimate should revert")
    except ContractLogicError as e:
        assert "token: always fails" in str(e)

    # A mined transaction that reverts has status 0 and still pays for gas.
    before = w3.eth.get_balance(dave.address)
    failed = send(w3, dave, {"to": token.address, "data": token.encode_abi("failWithReason"), "gas": 100_000,
                             "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9})
    assert failed.status == 0
    assert w3.eth.get_balance(dave.address) == before - failed.gasUsed * failed.effectiveGasPrice


def test_fee_history_and_gas_price(node):
    w3 = Web3(Web3.HTTPProvider(node.url))
    alice = Account.from_key(DEV_KEYS[0])
    send(w3, alice, {"to": Account.create().address, "value": 1, "gas": 21000,
                     "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 2 * 10**9})
    history = w3.eth.fee_history(2, "latest", [50])
    assert len(history["baseFeePerGas"]) == 3
    assert len(history["reward"]) == 2
    assert history["reward"][-1][0] == 2 * 10**9
    assert w3.eth.gas_price >= 10**9
    assert w3.eth.max_priority_fee == 10**9
