// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721Base} from "../lib/ERC721Base.sol";

/// Validator identity (spec §5.1): token id = validator id, holder = the validator's owner.
/// Only the stake manager mints and burns, and an address holds at most one validator.
contract StakingNFT is ERC721Base {
    address public immutable stakeManager;
    mapping(address => uint256) private _tokenOf;

    constructor(address stakeManager_) ERC721Base("BTTC Validator", "BTTCV") {
        stakeManager = stakeManager_;
    }

    modifier onlyStakeManager() {
        require(msg.sender == stakeManager, "StakingNFT: only the stake manager");
        _;
    }

    function mint(address to, uint256 tokenId) external onlyStakeManager {
        _mint(to, tokenId);
    }

    function burn(uint256 tokenId) external onlyStakeManager {
        _burn(tokenId);
    }

    /// The validator id held by `owner` (index 0 only: one per address).
    function tokenOfOwnerByIndex(address owner, uint256 index) external view returns (uint256) {
        require(index == 0 && _tokenOf[owner] != 0, "StakingNFT: no validator");
        return _tokenOf[owner];
    }

    function _beforeTransfer(address from, address to, uint256 tokenId) internal override {
        if (to != address(0)) {
            require(balanceOf[to] == 0, "StakingNFT: one validator per address");
            _tokenOf[to] = tokenId;
        }
        if (from != address(0)) delete _tokenOf[from];
    }
}
