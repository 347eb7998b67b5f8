// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RLPReader} from "./RLPReader.sol";

/// Verifies a value in a Merkle-Patricia trie (a block's receipt trie) from the nodes on its
/// path, root first: each node must hash to its parent's reference.
library MerklePatriciaProof {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    function verify(bytes memory value, bytes memory encodedPath, bytes memory rlpParentNodes, bytes32 root)
        internal
        pure
        returns (bool)
    {
        RLPReader.Item[] memory nodes = rlpParentNodes.toItem().toList();
        bytes memory path = nibbles(encodedPath);
        if (path.length == 0) return false;
        bytes32 valueHash = keccak256(value);
        uint256 pos = 0;
        bytes32 expected = root;
        for (uint256 i = 0; i < nodes.length; i++) {
            if (pos > path.length) return false;
            if (keccak256(nodes[i].toRlpBytes()) != expected) return false;
            RLPReader.Item[] memory items = nodes[i].toList();
            if (items.length == 17) {
                if (pos == path.length) return keccak256(items[16].toBytes()) == valueHash;
                uint8 nibble = uint8(path[pos]);
                expected = items[nibble].toBytes32Strict();
                pos += 1;
            } else if (items.length == 2) {
                bytes memory segment = nibbles(items[0].toBytes());
                uint256 traversed = _matching(segment, path, pos);
                if (pos + traversed == path.length) return keccak256(items[1].toBytes()) == valueHash;
                if (traversed == 0) return false;
                expected = items[1].toBytes32Strict();
                pos += traversed;
            } else {
                return false;
            }
        }
        return false;
    }

    /// `segment.length` if `path[pos..]` starts with `segment`, else 0.
    function _matching(bytes memory segment, bytes memory path, uint256 pos) private pure returns (uint256) {
        if (pos + segment.length > path.length) return 0;
        for (uint256 i = 0; i < segment.length; i++) {
            if (segment[i] != path[pos + i]) return 0;
        }
        return segment.length;
    }

    /// The nibbles of a hex-prefix encoded path (a first nibble of 1 or 3 marks an odd path).
    function nibbles(bytes memory encoded) internal pure returns (bytes memory out) {
        if (encoded.length == 0) return out;
        uint8 flag = uint8(encoded[0]) >> 4;
        uint256 skip = (flag == 1 || flag == 3) ? 1 : 2;
        out = new bytes(encoded.length * 2 - skip);
        for (uint256 i = 0; i < out.length; i++) {
            uint256 n = i + skip;
            uint8 b = uint8(encoded[n / 2]);
            out[i] = bytes1(n % 2 == 0 ? b >> 4 : b & 0x0f);
        }
    }
}
