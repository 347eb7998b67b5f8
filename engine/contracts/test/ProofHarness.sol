// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Merkle} from "../lib/Merkle.sol";
import {MerklePatriciaProof} from "../lib/MerklePatriciaProof.sol";
import {RLPReader} from "../lib/RLPReader.sol";

/// Exposes the proof libraries for tests that feed them proofs built in Rust.
contract ProofHarness {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    function checkMembership(bytes32 leaf, uint256 index, bytes32 root, bytes calldata proof)
        external
        pure
        returns (bool)
    {
        return Merkle.checkMembership(leaf, index, root, proof);
    }

    function verifyReceipt(bytes calldata value, bytes calldata path, bytes calldata nodes, bytes32 root)
        external
        pure
        returns (bool)
    {
        return MerklePatriciaProof.verify(value, path, nodes, root);
    }

    /// Reads an exit payload (spec §3.2): header number, block number, log index and the
    /// receipt's first log's emitter.
    function readExit(bytes calldata payload)
        external
        pure
        returns (uint256 headerNumber, uint256 blockNumber, uint256 logIndex, address emitter)
    {
        RLPReader.Item[] memory items = payload.toItem().toList();
        require(items.length == 10, "exit: ten items");
        headerNumber = items[0].toUint();
        blockNumber = items[2].toUint();
        logIndex = items[9].toUint();
        bytes memory receipt = items[6].toBytes();
        // A typed receipt starts with its type byte; the RLP list follows.
        if (uint8(receipt[0]) < 0x80) {
            bytes memory inner = new bytes(receipt.length - 1);
            for (uint256 i = 0; i < inner.length; i++) inner[i] = receipt[i + 1];
            receipt = inner;
        }
        RLPReader.Item[] memory logs = receipt.toItem().toList()[3].toList();
        emitter = logs[logIndex].toList()[0].toAddress();
    }
}
