// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Reads RLP in memory without copying until asked: an item is a (memory pointer, length) pair
/// covering its header and payload. Every read is bounds-checked and reverts on malformed input.
library RLPReader {
    struct Item {
        uint256 ptr;
        uint256 len;
    }

    function toItem(bytes memory data) internal pure returns (Item memory item) {
        uint256 ptr;
        assembly {
            ptr := add(data, 0x20)
        }
        item = Item(ptr, data.length);
        (uint256 start, uint256 len,) = _payload(item);
        require(start + len == ptr + data.length, "RLP: trailing or missing bytes");
    }

    function _byteAt(uint256 ptr) private pure returns (uint256 b) {
        assembly {
            b := byte(0, mload(ptr))
        }
    }

    /// Payload start, payload length and whether the item is a list.
    function _payload(Item memory item) private pure returns (uint256 start, uint256 len, bool list) {
        require(item.len > 0, "RLP: empty item");
        uint256 b0 = _byteAt(item.ptr);
        uint256 headerLen;
        if (b0 < 0x80) {
            return (item.ptr, 1, false);
        } else if (b0 < 0xb8) {
            headerLen = 1;
            len = b0 - 0x80;
        } else if (b0 < 0xc0) {
            uint256 lenOfLen = b0 - 0xb7;
            require(item.len > lenOfLen, "RLP: short length");
            len = _bigEndian(item.ptr + 1, lenOfLen);
            headerLen = 1 + lenOfLen;
        } else if (b0 < 0xf8) {
            headerLen = 1;
            len = b0 - 0xc0;
            list = true;
        } else {
            uint256 lenOfLen = b0 - 0xf7;
            require(item.len > lenOfLen, "RLP: short length");
            len = _bigEndian(item.ptr + 1, lenOfLen);
            headerLen = 1 + lenOfLen;
            list = true;
        }
        require(headerLen + len <= item.len, "RLP: item overruns its bytes");
        start = item.ptr + headerLen;
    }

    function _bigEndian(uint256 ptr, uint256 len) private pure returns (uint256 value) {
        require(len > 0 && len <= 32, "RLP: bad length of length");
        assembly {
            value := shr(mul(8, sub(32, len)), mload(ptr))
        }
    }

    /// The whole encoded length of the item starting at `ptr` within `limit` bytes.
    function _itemLength(uint256 ptr, uint256 limit) private pure returns (uint256) {
        (uint256 start, uint256 len,) = _payload(Item(ptr, limit));
        return start - ptr + len;
    }

    function isList(Item memory item) internal pure returns (bool list) {
        (,, list) = _payload(item);
    }

    function toList(Item memory item) internal pure returns (Item[] memory items) {
        (uint256 start, uint256 len, bool list) = _payload(item);
        require(list, "RLP: not a list");
        uint256 count;
        uint256 end = start + len;
        for (uint256 p = start; p < end; count++) {
            p += _itemLength(p, end - p);
        }
        items = new Item[](count);
        uint256 pos = start;
        for (uint256 i = 0; i < count; i++) {
            uint256 l = _itemLength(pos, end - pos);
            items[i] = Item(pos, l);
            pos += l;
        }
    }

    function _copy(uint256 src, uint256 len) private pure returns (bytes memory out) {
        out = new bytes(len);
        uint256 dest;
        assembly {
            dest := add(out, 0x20)
        }
        // Whole words: `new bytes` allocated `len` rounded up to a word, so the last write stays
        // inside `out`.
        for (uint256 i = 0; i < len; i += 32) {
            assembly {
                mstore(add(dest, i), mload(add(src, i)))
            }
        }
    }

    /// The payload of a string item.
    function toBytes(Item memory item) internal pure returns (bytes memory) {
        (uint256 start, uint256 len, bool list) = _payload(item);
        require(!list, "RLP: not a string");
        return _copy(start, len);
    }

    /// The whole encoding of the item.
    function toRlpBytes(Item memory item) internal pure returns (bytes memory) {
        return _copy(item.ptr, item.len);
    }

    function toUint(Item memory item) internal pure returns (uint256 value) {
        (uint256 start, uint256 len, bool list) = _payload(item);
        require(!list && len <= 32, "RLP: not an integer");
        if (len == 0) return 0;
        return _bigEndian(start, len);
    }

    /// A 32-byte string as a word (a trie node reference).
    function toBytes32Strict(Item memory item) internal pure returns (bytes32 value) {
        (uint256 start, uint256 len, bool list) = _payload(item);
        require(!list && len == 32, "RLP: not a 32-byte string");
        assembly {
            value := mload(start)
        }
    }

    function toAddress(Item memory item) internal pure returns (address) {
        (uint256 start, uint256 len, bool list) = _payload(item);
        require(!list && len == 20, "RLP: not an address");
        return address(uint160(_bigEndian(start, 20)));
    }
}
