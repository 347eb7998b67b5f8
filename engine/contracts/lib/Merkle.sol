// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Membership in a checkpoint tree (spec §1.2): `proof` is the concatenation of the 32-byte
/// siblings from the leaf up; parents are keccak256(left ‖ right), unsorted.
library Merkle {
    function checkMembership(bytes32 leaf, uint256 index, bytes32 root, bytes memory proof)
        internal
        pure
        returns (bool)
    {
        if (proof.length % 32 != 0) return false;
        uint256 height = proof.length / 32;
        if (height < 256 && index >= (uint256(1) << height)) return false;
        bytes32 hash = leaf;
        for (uint256 offset = 32; offset <= proof.length; offset += 32) {
            bytes32 sibling;
            assembly {
                sibling := mload(add(proof, offset))
            }
            if (index % 2 == 0) {
                hash = keccak256(abi.encodePacked(hash, sibling));
            } else {
                hash = keccak256(abi.encodePacked(sibling, hash));
            }
            index /= 2;
        }
        return hash == root;
    }
}
