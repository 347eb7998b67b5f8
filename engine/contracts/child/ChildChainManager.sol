// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IChildToken {
    function deposit(address user, bytes calldata depositData) external;
}

/// Receives the root chains' bridge messages through the state receiver (spec §2.3): maps
/// tokens per root chain (key `rootToken | chainId << 160`) and mints deposits.
contract ChildChainManager {
    bytes32 public constant DEPOSIT = keccak256("DEPOSIT");
    bytes32 public constant MAP_TOKEN = keccak256("MAP_TOKEN");
    address public constant STATE_RECEIVER = 0x0000000000000000000000000000000000001001;

    mapping(uint256 => address) public rootToChildToken;
    mapping(address => address) public childToRootToken;
    mapping(address => uint64) public childToRootChainId;

    event TokenMapped(address indexed rootToken, address indexed childToken);

    function rootKey(address rootToken, uint64 chainId) public pure returns (uint256) {
        return uint256(uint160(rootToken)) | (uint256(chainId) << 160);
    }

    function onStateReceive(uint256, bytes calldata data) external {
        require(msg.sender == STATE_RECEIVER, "ChildChainManager: INVALID_SENDER");
        (bytes32 syncType, bytes memory syncData) = abi.decode(data, (bytes32, bytes));
        if (syncType == DEPOSIT) {
            (address user, address rootToken, uint64 chainId, bytes memory depositData) =
                abi.decode(syncData, (address, address, uint64, bytes));
            address childToken = rootToChildToken[rootKey(rootToken, chainId)];
            require(childToken != address(0), "ChildChainManager: TOKEN_NOT_MAPPED");
            IChildToken(childToken).deposit(user, depositData);
        } else if (syncType == MAP_TOKEN) {
            (address rootToken, address childToken, uint64 chainId,) =
                abi.decode(syncData, (address, address, uint64, bytes32));
            uint256 key = rootKey(rootToken, chainId);
            // A child token belongs to one root chain's token: a `WithdrawTo` log names no root
            // chain, so a token mapped from two chains could be exited on both.
            address mappedRoot = childToRootToken[childToken];
            require(
                mappedRoot == address(0) || (mappedRoot == rootToken && childToRootChainId[childToken] == chainId),
                "ChildChainManager: child token mapped from another root token"
            );
            // A remap of the root token to a new child token drops the old child's pair.
            address oldChild = rootToChildToken[key];
            if (oldChild != address(0) && oldChild != childToken) {
                delete childToRootToken[oldChild];
                delete childToRootChainId[oldChild];
            }
            rootToChildToken[key] = childToken;
            childToRootToken[childToken] = rootToken;
            childToRootChainId[childToken] = chainId;
            emit TokenMapped(rootToken, childToken);
        } else {
            revert("ChildChainManager: INVALID_SYNC_TYPE");
        }
    }
}
