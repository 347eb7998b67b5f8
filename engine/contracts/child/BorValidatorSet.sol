// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RLPReader} from "../lib/RLPReader.sol";

/// The BTTC chain's producer spans (spec §4.4), at 0x…1000 in genesis. The system address
/// commits each span Delivery decided; block producers read `getBorValidators(number)`.
/// Span 0 (blocks 0–255 on BTTC) is committed at genesis and holds the initial validators.
contract BorValidatorSet {
    using RLPReader for RLPReader.Item;
    using RLPReader for bytes;

    struct Validator {
        uint256 id;
        uint256 power;
        address signer;
    }

    struct Span {
        uint256 number;
        uint256 startBlock;
        uint256 endBlock;
    }

    address public constant SYSTEM_ADDRESS = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    /// BTTC's sprint, used when genesis sets none.
    uint256 public constant DEFAULT_SPRINT = 64;
    /// A bound on a span's validator list.
    uint256 public constant MAX_VALIDATORS = 256;

    uint256[] public spanNumbers;
    mapping(uint256 => Span) public spans;
    mapping(uint256 => Validator[]) private _validators;
    mapping(uint256 => Validator[]) private _producers;
    /// The chain's sprint, written into storage slot 4 by a genesis that uses another one
    /// (BTTC renders it into its genesis template instead).
    uint256 private _sprint;

    event NewSpan(uint256 indexed id, uint256 indexed startBlock, uint256 indexed endBlock);

    modifier onlySystem() {
        require(msg.sender == SYSTEM_ADDRESS, "not the system address");
        _;
    }

    /// `validatorBytes` and `producerBytes` are `RLP([[id, power, signer], ...])`.
    function commitSpan(
        uint256 newSpan,
        uint256 startBlock,
        uint256 endBlock,
        bytes calldata validatorBytes,
        bytes calldata producerBytes
    ) external onlySystem {
        if (spanNumbers.length == 0) {
            require(newSpan == 0 && startBlock == 0, "the first span is span 0 from block 0");
        } else {
            Span storage last = spans[currentSpanNumber()];
            require(newSpan == last.number + 1, "Invalid span id");
            require(startBlock == last.endBlock + 1, "span must start after the last one");
        }
        require(endBlock > startBlock, "End block must be greater than start block");
        require((endBlock - startBlock + 1) % SPRINT() == 0, "span length must be a multiple of the sprint");
        spanNumbers.push(newSpan);
        spans[newSpan] = Span(newSpan, startBlock, endBlock);
        _store(_validators[newSpan], validatorBytes);
        _store(_producers[newSpan], producerBytes);
        emit NewSpan(newSpan, startBlock, endBlock);
    }

    function SPRINT() public view returns (uint256) {
        return _sprint == 0 ? DEFAULT_SPRINT : _sprint;
    }

    /// The last block of span 0, whose producers are the initial validators (255 on BTTC).
    function FIRST_END_BLOCK() public view returns (uint256) {
        return spans[0].endBlock;
    }

    function currentSpanNumber() public view returns (uint256) {
        uint256 n = spanNumbers.length;
        return n == 0 ? 0 : spanNumbers[n - 1];
    }

    /// The last committed span (Bor reads it to decide when to fetch the next one).
    function getCurrentSpan() external view returns (uint256 number, uint256 startBlock, uint256 endBlock) {
        Span storage s = spans[currentSpanNumber()];
        return (s.number, s.startBlock, s.endBlock);
    }

    function getSpan(uint256 span) external view returns (uint256 number, uint256 startBlock, uint256 endBlock) {
        Span storage s = spans[span];
        return (s.number, s.startBlock, s.endBlock);
    }

    /// The span holding block `number`; past the last span, the last span.
    function getSpanByBlock(uint256 number) public view returns (uint256) {
        for (uint256 i = spanNumbers.length; i > 0; i--) {
            Span storage s = spans[spanNumbers[i - 1]];
            if (s.startBlock <= number && number <= s.endBlock) return s.number;
        }
        return currentSpanNumber();
    }

    /// The producers of block `number`, in the order committed (sorted by signer).
    function getBorValidators(uint256 number) public view returns (address[] memory, uint256[] memory) {
        if (number <= FIRST_END_BLOCK()) return getInitialValidators();
        return _unpack(_producers[getSpanByBlock(number)]);
    }

    function getInitialValidators() public view returns (address[] memory, uint256[] memory) {
        return _unpack(_producers[0]);
    }

    function getValidators() external view returns (address[] memory, uint256[] memory) {
        return getBorValidators(block.number);
    }

    /// The whole validator set of `span` (not only its producers).
    function getSpanValidators(uint256 span) external view returns (address[] memory, uint256[] memory) {
        return _unpack(_validators[span]);
    }

    function _store(Validator[] storage list, bytes calldata encoded) private {
        RLPReader.Item[] memory items = bytes(encoded).toItem().toList();
        require(items.length > 0 && items.length <= MAX_VALIDATORS, "validator list size");
        for (uint256 i = 0; i < items.length; i++) {
            RLPReader.Item[] memory v = items[i].toList();
            require(v.length == 3, "validator must be [id, power, signer]");
            list.push(Validator(v[0].toUint(), v[1].toUint(), v[2].toAddress()));
        }
    }

    function _unpack(Validator[] storage list) private view returns (address[] memory signers, uint256[] memory powers) {
        signers = new address[](list.length);
        powers = new uint256[](list.length);
        for (uint256 i = 0; i < list.length; i++) {
            signers[i] = list[i].signer;
            powers[i] = list[i].power;
        }
    }
}
