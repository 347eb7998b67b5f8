// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20Base} from "../lib/ERC20Base.sol";
import {ERC721Base} from "../lib/ERC721Base.sol";

/// `WithdrawTo(to, 0, amount)`: the log an exit on the root chain proves (spec §3.1). The
/// first indexed topic is the root-chain recipient.
abstract contract WithdrawEvent {
    event WithdrawTo(address indexed from, address indexed to, uint256 amount);
}

/// A bridged ERC-20: the child chain manager mints deposits, holders burn to withdraw.
contract ChildERC20 is ERC20Base, WithdrawEvent {
    address public immutable childChainManager;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address childChainManager_)
        ERC20Base(name_, symbol_, decimals_)
    {
        childChainManager = childChainManager_;
    }

    function deposit(address user, bytes calldata depositData) external {
        require(msg.sender == childChainManager, "ChildERC20: INSUFFICIENT_PERMISSIONS");
        _mint(user, abi.decode(depositData, (uint256)));
    }

    function withdraw(uint256 amount) external {
        withdrawTo(msg.sender, amount);
    }

    function withdrawTo(address to, uint256 amount) public {
        _burn(msg.sender, amount);
        emit WithdrawTo(to, address(0), amount);
    }
}

/// A bridged ERC-721: the child chain manager mints deposits, holders burn to withdraw.
contract ChildERC721 is ERC721Base, WithdrawEvent {
    address public immutable childChainManager;

    constructor(string memory name_, string memory symbol_, address childChainManager_) ERC721Base(name_, symbol_) {
        childChainManager = childChainManager_;
    }

    function deposit(address user, bytes calldata depositData) external {
        require(msg.sender == childChainManager, "ChildERC721: INSUFFICIENT_PERMISSIONS");
        _mint(user, abi.decode(depositData, (uint256)));
    }

    function withdrawTo(address to, uint256 tokenId) external {
        require(ownerOf(tokenId) == msg.sender, "ChildERC721: not the owner");
        _burn(tokenId);
        emit WithdrawTo(to, address(0), tokenId);
    }
}

/// BTT, the BTTC chain's native coin, at 0x…1010 in genesis. Balances are native balances;
/// the contract holds the coin not yet bridged in, pays deposits out of it and takes
/// withdrawals back into it.
contract NativeToken is WithdrawEvent {
    address public constant SYSTEM_ADDRESS = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    uint256 public constant TOTAL_SUPPLY = 990_000_000_000_000 * 10 ** 18;

    address public childChainManager;

    event Deposit(address indexed user, uint256 amount);

    function name() external pure returns (string memory) {
        return "BitTorrent";
    }

    function symbol() external pure returns (string memory) {
        return "BTT";
    }

    function decimals() external pure returns (uint8) {
        return 18;
    }

    function totalSupply() external pure returns (uint256) {
        return TOTAL_SUPPLY;
    }

    function balanceOf(address account) external view returns (uint256) {
        return account.balance;
    }

    /// Set once, by the system (the genesis builder).
    function initialize(address childChainManager_) external {
        require(msg.sender == SYSTEM_ADDRESS && childChainManager == address(0), "NativeToken: already initialized");
        childChainManager = childChainManager_;
    }

    function deposit(address user, bytes calldata depositData) external {
        require(msg.sender == childChainManager, "NativeToken: INSUFFICIENT_PERMISSIONS");
        uint256 amount = abi.decode(depositData, (uint256));
        (bool ok,) = user.call{value: amount}("");
        require(ok, "NativeToken: transfer failed");
        emit Deposit(user, amount);
    }

    function withdraw(uint256 amount) external payable {
        withdrawTo(msg.sender, amount);
    }

    function withdrawTo(address to, uint256 amount) public payable {
        require(msg.value == amount, "NativeToken: value must equal the amount");
        emit WithdrawTo(to, address(0), amount);
    }
}
