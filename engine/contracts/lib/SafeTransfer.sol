// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Token transfers that accept tokens returning nothing (TRON's USDT and other early tokens)
/// and refuse tokens returning false.
library SafeTransfer {
    function safeTransfer(address token, address to, uint256 amount) internal {
        _call(token, abi.encodeWithSelector(0xa9059cbb, to, amount));
    }

    function safeTransferFrom(address token, address from, address to, uint256 amount) internal {
        _call(token, abi.encodeWithSelector(0x23b872dd, from, to, amount));
    }

    function _call(address token, bytes memory data) private {
        require(token.code.length > 0, "SafeTransfer: not a contract");
        (bool ok, bytes memory ret) = token.call(data);
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "SafeTransfer: transfer failed");
    }
}
