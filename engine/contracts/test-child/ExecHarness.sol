// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A constant-product pool keeping its traders' balances itself: every swap reads and writes
/// the same two reserves, the hot spot of a block of swaps.
contract SwapPool {
    uint256 public reserve0;
    uint256 public reserve1;
    mapping(address => uint256) public balance0;
    mapping(address => uint256) public balance1;

    event Swap(address indexed trader, bool zeroForOne, uint256 amountIn, uint256 amountOut);

    /// Credits the caller with both assets (a test pool: anyone may).
    function mint(uint256 amount0, uint256 amount1) external {
        balance0[msg.sender] += amount0;
        balance1[msg.sender] += amount1;
    }

    function addLiquidity(uint256 amount0, uint256 amount1) external {
        balance0[msg.sender] -= amount0;
        balance1[msg.sender] -= amount1;
        reserve0 += amount0;
        reserve1 += amount1;
    }

    function swap(bool zeroForOne, uint256 amountIn, uint256 minOut) external returns (uint256 out) {
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        out = (amountIn * 997 * reserveOut) / (reserveIn * 1000 + amountIn * 997);
        require(out >= minOut, "pool: slippage");
        if (zeroForOne) {
            balance0[msg.sender] -= amountIn;
            balance1[msg.sender] += out;
            reserve0 = reserveIn + amountIn;
            reserve1 = reserveOut - out;
        } else {
            balance1[msg.sender] -= amountIn;
            balance0[msg.sender] += out;
            reserve1 = reserveIn + amountIn;
            reserve0 = reserveOut - out;
        }
        emit Swap(msg.sender, zeroForOne, amountIn, out);
    }
}

/// Calls that exercise what parallel execution must get right: the fee recipient's balance,
/// BLOCKHASH, precompiles, creation and self-destruct, reverts and running out of gas.
contract Probe {
    uint256 public counter;
    mapping(uint256 => bytes32) public seen;

    event Seen(uint256 indexed key, bytes32 value);

    /// Stores the fee recipient's balance: depends on every earlier transaction's fee.
    function recordCoinbase() external {
        bytes32 value = bytes32(block.coinbase.balance);
        seen[1] = value;
        counter += 1;
        emit Seen(1, value);
    }

    /// Pays the fee recipient `msg.value` and stores its balance afterwards.
    function payCoinbase() external payable {
        payable(block.coinbase).transfer(msg.value);
        seen[2] = bytes32(block.coinbase.balance);
    }

    function recordBlockhash() external {
        bytes32 value = blockhash(block.number - 1);
        seen[3] = value;
        emit Seen(3, value);
    }

    /// sha256, ripemd160, identity and ecrecover precompiles.
    function hashes(bytes calldata data) external {
        seen[4] = sha256(data);
        seen[5] = bytes32(bytes20(ripemd160(data)));
        (bool ok, bytes memory copy) = address(4).staticcall(data);
        require(ok && keccak256(copy) == keccak256(data), "probe: identity");
        seen[6] = bytes32(uint256(uint160(ecrecover(keccak256(data), 27, bytes32(uint256(1)), bytes32(uint256(2))))));
    }

    /// Writes `rounds` slots: with a small gas limit, runs out of gas.
    function burn(uint256 rounds) external {
        for (uint256 i = 0; i < rounds; i++) {
            seen[1000 + i] = bytes32(i + counter);
        }
    }

    /// Writes, then reverts: nothing but the fee remains.
    function fail(uint256 amount) external {
        counter += amount;
        revert("probe: failed");
    }

    function bump(uint256 key) external {
        seen[key] = bytes32(uint256(seen[key]) + 1);
        counter += 1;
    }

    /// Creates a child with `salt`; the child destroys itself in its constructor if asked.
    function spawn(bytes32 salt, bool destroy) external payable returns (address child) {
        child = address(new Child{salt: salt, value: msg.value}(destroy));
        seen[7] = bytes32(uint256(uint160(child)));
    }
}

contract Child {
    uint256 public born;

    constructor(bool destroy) payable {
        born = block.number;
        if (destroy) {
            selfdestruct(payable(msg.sender));
        }
    }

    function destroy(address payable heir) external {
        selfdestruct(heir);
    }
}

/// The smallest ERC-20 transfer: two balance slots per transfer.
contract PlainToken {
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function transfer(address to, uint256 value) external returns (bool) {
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
