// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// A state-sync receiver for tests: records what it receives; refuses data "fail".
contract RecordingReceiver {
    uint256 public lastId;
    bytes public lastData;
    uint256 public received;

    function onStateReceive(uint256 id, bytes calldata data) external {
        require(keccak256(data) != keccak256("fail"), "refused");
        lastId = id;
        lastData = data;
        received += 1;
    }
}
