// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20Base} from "../lib/ERC20Base.sol";
import {ERC721Base} from "../lib/ERC721Base.sol";

/// A root-chain ERC-20 anyone can mint (tests only).
contract TestRootERC20 is ERC20Base {
    constructor() ERC20Base("Test Root Token", "TRT", 18) {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// A root-chain ERC-721 anyone can mint (tests only).
contract TestRootERC721 is ERC721Base {
    constructor() ERC721Base("Test Root NFT", "TRN") {}

    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }
}
