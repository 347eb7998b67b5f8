// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RLPReader} from "../lib/RLPReader.sol";

/// BTTC-chain side of state sync (spec §2.3), at 0x…1001 in genesis. Only the system address
/// commits records, strictly in Delivery's global order; each is handed to its receiver with a
/// gas cap, and a receiver's failure does not stop the chain.
contract StateReceiver {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    address public constant SYSTEM_ADDRESS = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    uint256 public constant RECEIVER_GAS = 5_000_000;
    uint256 public lastStateId;

    modifier onlySystem() {
        require(msg.sender == SYSTEM_ADDRESS, "not the system address");
        _;
    }

    /// `recordBytes = RLP([id, contract, data, txHash, logIndex, chainId])`.
    function commitState(uint256, bytes calldata recordBytes) external onlySystem returns (bool success) {
        RLPReader.Item[] memory items = recordBytes.toItem().toList();
        uint256 stateId = items[0].toUint();
        require(lastStateId + 1 == stateId, "state id is not the next one");
        lastStateId = stateId;
        address receiver = items[1].toAddress();
        bytes memory data = items[2].toBytes();
        if (receiver.code.length > 0) {
            (success,) = receiver.call{gas: RECEIVER_GAS}(
                abi.encodeWithSignature("onStateReceive(uint256,bytes)", stateId, data)
            );
        }
    }
}
