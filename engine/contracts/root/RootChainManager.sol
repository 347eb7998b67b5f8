// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Merkle} from "../lib/Merkle.sol";
import {MerklePatriciaProof} from "../lib/MerklePatriciaProof.sol";
import {RLPReader} from "../lib/RLPReader.sol";

interface IStateSender {
    function syncState(address receiver, bytes calldata data) external;
}

interface ICheckpointManager {
    function headerBlocks(uint256 headerNumber)
        external
        view
        returns (bytes32 root, uint256 start, uint256 end, uint256 createdAt, address proposer);
}

interface ITokenPredicate {
    function lockTokens(address depositor, address depositReceiver, address rootToken, bytes calldata depositData)
        external;

    function exitTokens(address sender, address rootToken, bytes calldata log) external;
}

/// The bridge's root-chain entry (spec §2.1, §3.2): maps root tokens to BTTC tokens, locks
/// deposits in the token type's predicate and announces them through the state sender, and
/// releases tokens on an exit proven by a checkpoint and a receipt proof.
contract RootChainManager {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    bytes32 public constant DEPOSIT = keccak256("DEPOSIT");
    bytes32 public constant MAP_TOKEN = keccak256("MAP_TOKEN");

    /// This root chain in BTTC's numbering: 1 TRON, 2 Ethereum, 3 BSC.
    uint64 public immutable CHAIN_ID;
    /// The stand-in address of the root chain's native coin.
    address public immutable ETHER_ADDRESS;

    address public owner;
    IStateSender public stateSender;
    ICheckpointManager public checkpointManager;
    address public childChainManagerAddress;
    /// Deposits accepted per root block.
    uint256 public requestLimit = 10;
    uint256 private _depositBlock;
    uint256 private _depositsInBlock;

    mapping(bytes32 => address) public typeToPredicate;
    mapping(address => address) public rootToChildToken;
    mapping(address => address) public childToRootToken;
    mapping(address => bytes32) public tokenToType;
    mapping(bytes32 => bool) public processedExits;

    event TokenMapped(address indexed rootToken, address indexed childToken, bytes32 indexed tokenType);
    event PredicateRegistered(bytes32 indexed tokenType, address indexed predicateAddress);

    constructor(uint64 chainId, address etherAddress) {
        owner = msg.sender;
        CHAIN_ID = chainId;
        ETHER_ADDRESS = etherAddress;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "RootChainManager: only the owner");
        _;
    }

    function setStateSender(address stateSender_) external onlyOwner {
        stateSender = IStateSender(stateSender_);
    }

    function setCheckpointManager(address checkpointManager_) external onlyOwner {
        checkpointManager = ICheckpointManager(checkpointManager_);
    }

    function setChildChainManagerAddress(address childChainManager) external onlyOwner {
        require(childChainManager != address(0), "RootChainManager: INVALID_CHILD_CHAIN_ADDRESS");
        childChainManagerAddress = childChainManager;
    }

    function setRequestLimit(uint256 limit) external onlyOwner {
        requestLimit = limit;
    }

    function registerPredicate(bytes32 tokenType, address predicate) external onlyOwner {
        typeToPredicate[tokenType] = predicate;
        emit PredicateRegistered(tokenType, predicate);
    }

    function mapToken(address rootToken, address childToken, bytes32 tokenType) external onlyOwner {
        require(typeToPredicate[tokenType] != address(0), "RootChainManager: TOKEN_TYPE_NOT_SUPPORTED");
        require(
            rootToChildToken[rootToken] == address(0) && childToRootToken[childToken] == address(0),
            "RootChainManager: ALREADY_MAPPED"
        );
        rootToChildToken[rootToken] = childToken;
        childToRootToken[childToken] = rootToken;
        tokenToType[rootToken] = tokenType;
        emit TokenMapped(rootToken, childToken, tokenType);
        stateSender.syncState(
            childChainManagerAddress, abi.encode(MAP_TOKEN, abi.encode(rootToken, childToken, CHAIN_ID, tokenType))
        );
    }

    function depositEtherFor(address user) external payable {
        _depositFor(user, ETHER_ADDRESS, abi.encode(msg.value));
        (bool ok,) = typeToPredicate[tokenToType[ETHER_ADDRESS]].call{value: msg.value}("");
        require(ok, "RootChainManager: ether predicate refused");
    }

    function depositFor(address user, address rootToken, bytes calldata depositData) external {
        require(rootToken != ETHER_ADDRESS, "RootChainManager: INVALID_ROOT_TOKEN");
        _depositFor(user, rootToken, depositData);
    }

    function _depositFor(address user, address rootToken, bytes memory depositData) private {
        if (_depositBlock == block.number) {
            require(_depositsInBlock < requestLimit, "RootChainManager: too many deposits in this block");
            _depositsInBlock += 1;
        } else {
            _depositBlock = block.number;
            _depositsInBlock = 1;
        }
        bytes32 tokenType = tokenToType[rootToken];
        require(
            rootToChildToken[rootToken] != address(0) && tokenType != 0, "RootChainManager: TOKEN_NOT_MAPPED"
        );
        address predicate = typeToPredicate[tokenType];
        require(predicate != address(0), "RootChainManager: INVALID_TOKEN_TYPE");
        require(user != address(0), "RootChainManager: INVALID_USER");
        ITokenPredicate(predicate).lockTokens(msg.sender, user, rootToken, depositData);
        stateSender.syncState(
            childChainManagerAddress, abi.encode(DEPOSIT, abi.encode(user, rootToken, CHAIN_ID, depositData))
        );
    }

    /// `inputData = RLP([headerNumber, blockProof, blockNumber, blockTime, txRoot, receiptRoot,
    /// receipt, receiptProof, branchMask, receiptLogIndex])` (spec §3.2).
    function exit(bytes calldata inputData) external {
        RLPReader.Item[] memory items = inputData.toItem().toList();
        require(items.length == 10, "RootChainManager: exit payload must have 10 items");
        bytes memory branchMask = items[8].toBytes();
        bytes32 exitHash =
            keccak256(abi.encodePacked(items[2].toUint(), MerklePatriciaProof.nibbles(branchMask), items[9].toUint()));
        require(!processedExits[exitHash], "RootChainManager: EXIT_ALREADY_PROCESSED");
        processedExits[exitHash] = true;

        (address rootToken, bytes memory log) = _provenLog(items, branchMask);
        _checkBlockMembership(items);
        ITokenPredicate(typeToPredicate[tokenToType[rootToken]]).exitTokens(msg.sender, rootToken, log);
    }

    /// The exit's log, proven to be in a receipt of the block's receipt trie, and the root
    /// token its emitter maps to.
    function _provenLog(RLPReader.Item[] memory items, bytes memory branchMask)
        private
        view
        returns (address rootToken, bytes memory log)
    {
        bytes memory receipt = items[6].toBytes();
        uint256 logIndex = items[9].toUint();
        RLPReader.Item[] memory logs = _receiptFields(receipt)[3].toList();
        require(logIndex < logs.length, "RootChainManager: no such log");
        rootToken = childToRootToken[logs[logIndex].toList()[0].toAddress()];
        require(rootToken != address(0), "RootChainManager: TOKEN_NOT_MAPPED");
        require(items[8].toUint() & ~uint256(0xFFFFFFFF) == 0, "RootChainManager: INVALID_BRANCH_MASK");
        require(
            MerklePatriciaProof.verify(receipt, branchMask, items[7].toBytes(), bytes32(items[5].toUint())),
            "RootChainManager: INVALID_PROOF"
        );
        log = logs[logIndex].toRlpBytes();
    }

    /// The fields of a receipt as stored in the trie. A typed (EIP-2718) receipt is its type
    /// byte then the RLP list; BTTC's contract reads legacy receipts only, which would leave
    /// withdrawals made by typed transactions (Berlin's type 1) unexitable.
    function _receiptFields(bytes memory receipt) private pure returns (RLPReader.Item[] memory) {
        require(receipt.length > 0, "RootChainManager: empty receipt");
        if (uint8(receipt[0]) >= 0xc0) return receipt.toItem().toList();
        require(uint8(receipt[0]) < 0x80, "RootChainManager: not a receipt");
        bytes memory inner = new bytes(receipt.length - 1);
        for (uint256 i = 0; i < inner.length; i++) {
            inner[i] = receipt[i + 1];
        }
        return inner.toItem().toList();
    }

    /// The block is a leaf of the checkpoint `headerNumber` (spec §1.2).
    function _checkBlockMembership(RLPReader.Item[] memory items) private view {
        uint256 blockNumber = items[2].toUint();
        (bytes32 root, uint256 start, uint256 end,,) = checkpointManager.headerBlocks(items[0].toUint());
        require(root != bytes32(0) && start <= blockNumber && blockNumber <= end, "RootChainManager: INVALID_HEADER");
        bytes32 leaf = keccak256(
            abi.encodePacked(blockNumber, items[3].toUint(), bytes32(items[4].toUint()), bytes32(items[5].toUint()))
        );
        require(
            Merkle.checkMembership(leaf, blockNumber - start, root, items[1].toBytes()),
            "RootChainManager: INVALID_HEADER"
        );
    }
}
