// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Root-chain side of state sync (spec §2.1): registered senders emit `StateSynced` with a
/// per-chain counter; the Delivery chain relays each record to the BTTC chain.
contract StateSender {
    address public owner;
    uint256 public counter;
    /// receiver on the BTTC chain => the one root-chain contract allowed to send to it
    mapping(address => address) public registrations;

    event NewRegistration(address indexed user, address indexed sender, address indexed receiver);
    event RegistrationUpdated(address indexed user, address indexed sender, address indexed receiver);
    event StateSynced(uint256 indexed id, address indexed contractAddress, bytes data);

    constructor() {
        owner = msg.sender;
    }

    /// The owner registers a sender for a receiver; afterwards the registered sender may hand
    /// the receiver to another sender.
    function register(address sender, address receiver) public {
        address current = registrations[receiver];
        require(msg.sender == owner || (current != address(0) && msg.sender == current), "Invalid sender");
        registrations[receiver] = sender;
        if (current == address(0)) {
            emit NewRegistration(msg.sender, sender, receiver);
        } else {
            emit RegistrationUpdated(msg.sender, sender, receiver);
        }
    }

    function syncState(address receiver, bytes calldata data) external {
        require(registrations[receiver] == msg.sender, "Invalid sender");
        counter = counter + 1;
        emit StateSynced(counter, receiver, data);
    }
}
