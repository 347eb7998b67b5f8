// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Recovers the signer of a `[r, s, v]` signature the way BTTC's root contracts do (spec §1.4):
/// v is the low byte of the third word (0/1 or 27/28); a high s or another v yields the zero
/// address, which counts for no one; a signature that recovers nothing reverts.
library ECVerify {
    /// secp256k1n / 2: a larger s is the malleable twin of a valid signature.
    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    function recover(bytes32 hash, uint256[3] calldata sig) internal pure returns (address) {
        if (sig[1] > HALF_N) return address(0);
        uint8 v = uint8(sig[2] & 0xff);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        address signer = ecrecover(hash, v, bytes32(sig[0]), bytes32(sig[1]));
        require(signer != address(0), "Error in ecrecover");
        return signer;
    }
}
