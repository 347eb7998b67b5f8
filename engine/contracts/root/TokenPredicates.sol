// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RLPReader} from "../lib/RLPReader.sol";
import {SafeTransfer} from "../lib/SafeTransfer.sol";

interface IERC721Transfer {
    function transferFrom(address from, address to, uint256 tokenId) external;
    function safeTransferFrom(address from, address to, uint256 tokenId) external;
}

/// What every predicate shares: only the manager calls it, and an exit's log must be a
/// `WithdrawTo(to, 0, amount)` of the mapped child token (spec §3.1).
abstract contract PredicateBase {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    bytes32 public constant WITHDRAW_EVENT_SIG = 0x67b714876402c93362735688659e2283b4a37fb21bab24bc759ca759ae851fd8;
    address public immutable manager;

    constructor(address manager_) {
        manager = manager_;
    }

    modifier onlyManager() {
        require(msg.sender == manager, "Predicate: only the root chain manager");
        _;
    }

    /// The recipient and amount (or token id) of a `WithdrawTo` log.
    function _withdrawal(bytes calldata log) internal pure returns (address withdrawer, uint256 amount) {
        RLPReader.Item[] memory fields = log.toItem().toList();
        RLPReader.Item[] memory topics = fields[1].toList();
        require(topics.length == 3 && bytes32(topics[0].toUint()) == WITHDRAW_EVENT_SIG, "Predicate: INVALID_SIGNATURE");
        require(topics[2].toUint() == 0, "Predicate: INVALID_RECEIVER");
        withdrawer = address(uint160(topics[1].toUint()));
        amount = fields[2].toUint();
    }
}

/// Locks ERC-20 deposits and releases them on exits.
contract ERC20Predicate is PredicateBase {
    bytes32 public constant TOKEN_TYPE = keccak256("ERC20");

    event LockedERC20(
        address indexed depositor, address indexed depositReceiver, address indexed rootToken, uint256 amount
    );
    event ExitedERC20(address indexed exitor, address indexed rootToken, uint256 amount);

    constructor(address manager_) PredicateBase(manager_) {}

    function lockTokens(address depositor, address depositReceiver, address rootToken, bytes calldata depositData)
        external
        onlyManager
    {
        uint256 amount = abi.decode(depositData, (uint256));
        emit LockedERC20(depositor, depositReceiver, rootToken, amount);
        SafeTransfer.safeTransferFrom(rootToken, depositor, address(this), amount);
    }

    function exitTokens(address, address rootToken, bytes calldata log) external onlyManager {
        (address withdrawer, uint256 amount) = _withdrawal(log);
        SafeTransfer.safeTransfer(rootToken, withdrawer, amount);
        emit ExitedERC20(withdrawer, rootToken, amount);
    }
}

/// Locks ERC-721 deposits and releases them on exits.
contract ERC721Predicate is PredicateBase {
    bytes32 public constant TOKEN_TYPE = keccak256("ERC721");

    event LockedERC721(
        address indexed depositor, address indexed depositReceiver, address indexed rootToken, uint256 tokenId
    );
    event ExitedERC721(address indexed exitor, address indexed rootToken, uint256 tokenId);

    constructor(address manager_) PredicateBase(manager_) {}

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }

    function lockTokens(address depositor, address depositReceiver, address rootToken, bytes calldata depositData)
        external
        onlyManager
    {
        uint256 tokenId = abi.decode(depositData, (uint256));
        emit LockedERC721(depositor, depositReceiver, rootToken, tokenId);
        IERC721Transfer(rootToken).transferFrom(depositor, address(this), tokenId);
    }

    function exitTokens(address, address rootToken, bytes calldata log) external onlyManager {
        (address withdrawer, uint256 tokenId) = _withdrawal(log);
        IERC721Transfer(rootToken).safeTransferFrom(address(this), withdrawer, tokenId);
        emit ExitedERC721(withdrawer, rootToken, tokenId);
    }
}

/// Holds the root chain's native coin for deposits and releases it on exits.
contract EtherPredicate is PredicateBase {
    bytes32 public constant TOKEN_TYPE = keccak256("Ether");

    event LockedEther(address indexed depositor, address indexed depositReceiver, uint256 amount);
    event ExitedEther(address indexed exitor, uint256 amount);

    constructor(address manager_) PredicateBase(manager_) {}

    /// The manager forwards the deposited coin here.
    receive() external payable onlyManager {}

    function lockTokens(address depositor, address depositReceiver, address, bytes calldata depositData)
        external
        onlyManager
    {
        emit LockedEther(depositor, depositReceiver, abi.decode(depositData, (uint256)));
    }

    function exitTokens(address, address, bytes calldata log) external onlyManager {
        (address withdrawer, uint256 amount) = _withdrawal(log);
        (bool ok,) = withdrawer.call{value: amount}("");
        require(ok, "EtherPredicate: transfer failed");
        emit ExitedEther(withdrawer, amount);
    }
}
