"""The bttc-mainnet profile end to end: Berlin rules, chain id 199, legacy pricing, fees to the
block's fee recipient, and BTTC's LogTransfer / LogFeeTransfer receipt logs."""

from eth_account import Account
from web3 import Web3

from conftest import DEV_KEYS, DevNode

NATIVE_TOKEN = "0x0000000000000000000000000000000000001010"
LOG_TRANSFER = "0xe6497e3ee548a3372136af2fcb0696db31fc6cf20260707645068bd3fe97f3c4"
LOG_FEE_TRANSFER = "0x4dfe1bbbcf077ddc3e01291eea2d5c70c2b422b415d95645b9adcfd678cb1d63"


def words(data: bytes):
    return [int.from_bytes(data[i:i + 32], "big") for i in range(0, len(data), 32)]


def test_bttc_mainnet_profile(datadir):
    signer = Account.create().address  # stands in for the block signer
    node = DevNode(datadir, extra=("--chain", "bttc-mainnet", "--coinbase", signer)).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert w3.eth.chain_id == 199
        genesis = w3.eth.get_block(0)
        assert "baseFeePerGas" not in genesis  # Berlin: no London fields
        price = w3.eth.gas_price
        assert price == 300_000 * 10**9
        alice = Account.from_key(DEV_KEYS[0])
        bob = Account.create().address
        before = w3.eth.get_balance(alice.address)
        tx = alice.sign_transaction({"chainId": 199, "nonce": 0, "gas": 21000, "gasPrice": price,
                                     "to": bob, "value": 12345})
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction),
                                                      timeout=30, poll_latency=0.05)
        assert receipt.status == 1
        fee = 21000 * price
        assert w3.eth.get_balance(signer) == fee
        assert w3.eth.get_balance(bob) == 12345

        transfer, fee_log = receipt.logs
        assert transfer.address.lower() == NATIVE_TOKEN and fee_log.address.lower() == NATIVE_TOKEN
        assert transfer.topics[0].to_0x_hex() == LOG_TRANSFER
        assert fee_log.topics[0].to_0x_hex() == LOG_FEE_TRANSFER
        assert transfer.topics[2].to_0x_hex()[-40:] == alice.address.lower()[2:]
        assert transfer.topics[3].to_0x_hex()[-40:] == bob.lower()[2:]
        after_gas = before - fee
        assert words(transfer.data) == [12345, after_gas, 0, after_gas - 12345, 12345]
        assert words(fee_log.data) == [fee, before, 0, before - fee, fee]
        # The logs are in the block's bloom and found by eth_getLogs.
        found = w3.eth.get_logs({"fromBlock": receipt.blockNumber, "toBlock": receipt.blockNumber,
                                 "address": Web3.to_checksum_address(NATIVE_TOKEN)})
        assert len(found) == 2
    finally:
        node.stop()
