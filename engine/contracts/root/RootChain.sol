// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IStakeManager {
    function mirror() external view returns (bool);

    function checkSignatures(
        uint256 blockInterval,
        bytes32 voteHash,
        bytes32 stateRoot,
        address proposer,
        uint256[3][] calldata sigs
    ) external returns (uint256);

    function checkSignatures(
        uint256 blockInterval,
        uint256 checkpointEpoch,
        bytes32 voteHash,
        bytes32 stateRoot,
        address proposer,
        uint256[3][] calldata sigs
    ) external returns (uint256);
}

/// Checkpoints of the BTTC chain on one root chain (spec §1.1, §1.5): each stores the Merkle
/// root of a contiguous range of BTTC block headers under key `checkpointNumber × 10000`,
/// once the validators' signatures over the seven-word data pass the stake manager.
contract RootChain {
    struct HeaderBlock {
        bytes32 root;
        uint256 start;
        uint256 end;
        uint256 createdAt;
        address proposer;
    }

    uint256 public constant MAX_DEPOSITS = 10000;
    uint256 public constant CHECKPOINT_DATA_LENGTH = 7 * 32;

    /// The BTTC chain id the checkpoints must name (199 on mainnet).
    uint256 public immutable CHAINID;
    /// The first BTTC block this root chain checkpoints (0, or BSC's activation height).
    uint256 public immutable firstChildBlock;
    IStakeManager public immutable stakeManager;
    bool public immutable mirror;

    uint256 internal _nextHeaderBlock = MAX_DEPOSITS;
    mapping(uint256 => HeaderBlock) public headerBlocks;

    event NewHeaderBlock(
        address indexed proposer,
        uint256 indexed headerBlockId,
        uint256 indexed reward,
        uint256 start,
        uint256 end,
        bytes32 root
    );

    constructor(address stakeManager_, uint256 chainId, uint256 firstChildBlock_) {
        stakeManager = IStakeManager(stakeManager_);
        mirror = IStakeManager(stakeManager_).mirror();
        CHAINID = chainId;
        firstChildBlock = firstChildBlock_;
    }

    /// The legacy entry point, disabled as on BTTC.
    function submitHeaderBlock(bytes calldata, bytes calldata) external pure {
        revert("RootChain: use submitCheckpoint");
    }

    /// `data = abi.encode(proposer, start, end, rootHash, accountRootHash, borChainId, epoch)`;
    /// `sigs` = `[r, s, v]` of the validators over `keccak256(0x01 ‖ data)`, ascending by signer.
    function submitCheckpoint(bytes calldata data, uint256[3][] calldata sigs) external {
        require(data.length == CHECKPOINT_DATA_LENGTH, "RootChain: checkpoint data must be 7 words");
        Checkpoint memory c = _decode(data);
        require(c.borChainId == CHAINID, "RootChain: wrong BTTC chain id");
        require(_buildHeaderBlock(c.proposer, c.start, c.end, c.rootHash), "INCORRECT_HEADER_DATA");

        bytes32 voteHash = keccak256(abi.encodePacked(bytes1(0x01), data));
        uint256 blockInterval = c.end - c.start + 1;
        uint256 reward = mirror
            ? stakeManager.checkSignatures(blockInterval, c.epoch, voteHash, c.accountHash, c.proposer, sigs)
            : stakeManager.checkSignatures(blockInterval, voteHash, c.accountHash, c.proposer, sigs);
        require(reward != 0, "Invalid checkpoint");
        emit NewHeaderBlock(c.proposer, _nextHeaderBlock, reward, c.start, c.end, c.rootHash);
        _nextHeaderBlock += MAX_DEPOSITS;
    }

    /// The seven words validators sign (spec §1.4).
    struct Checkpoint {
        address proposer;
        uint256 start;
        uint256 end;
        bytes32 rootHash;
        bytes32 accountHash;
        uint256 borChainId;
        uint256 epoch;
    }

    function _decode(bytes calldata data) private pure returns (Checkpoint memory c) {
        (c.proposer, c.start, c.end, c.rootHash, c.accountHash, c.borChainId, c.epoch) =
            abi.decode(data, (address, uint256, uint256, bytes32, bytes32, uint256, uint256));
    }

    function currentHeaderBlock() public view returns (uint256) {
        return _nextHeaderBlock - MAX_DEPOSITS;
    }

    function getLastChildBlock() external view returns (uint256) {
        return headerBlocks[currentHeaderBlock()].end;
    }

    function _buildHeaderBlock(address proposer, uint256 start, uint256 end, bytes32 rootHash) private returns (bool) {
        uint256 nextChildBlock =
            _nextHeaderBlock == MAX_DEPOSITS ? firstChildBlock : headerBlocks[currentHeaderBlock()].end + 1;
        if (start != nextChildBlock || end < start || rootHash == bytes32(0) || proposer == address(0)) return false;
        headerBlocks[_nextHeaderBlock] = HeaderBlock({
            root: rootHash,
            start: start,
            end: end,
            createdAt: block.timestamp,
            proposer: proposer
        });
        return true;
    }
}
