// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECVerify} from "../lib/ECVerify.sol";
import {SafeTransfer} from "../lib/SafeTransfer.sol";
import {StakingNFT} from "./StakingNFT.sol";

/// Validator staking (spec §5.1) and checkpoint signature checks (spec §1.6).
///
/// On the staking chain (TRON) validators stake here and each accepted checkpoint advances the
/// epoch. On the other root chains (`mirror`), the same contract holds a copy of the staking
/// chain's set that changes only through staking-sync calls carrying the Delivery validators'
/// signatures (spec §5.2), so each root chain verifies checkpoints by itself. The contract is
/// also its own staking-info: it emits the staking events, with per-validator nonces.
contract StakeManager {
    enum Status {
        Inactive,
        Active,
        Unstaked
    }

    struct Validator {
        uint256 amount;
        uint256 reward;
        uint256 activationEpoch;
        uint256 deactivationEpoch;
        address signer;
        Status status;
    }

    /// A change of the counted set taking effect at `epoch` (an exit, or a mirrored join).
    struct Change {
        uint64 epoch;
        int64 stakers;
        int128 stake;
    }

    uint256 public constant REWARD_PRECISION = 10 ** 25;
    /// A bound on scheduled changes: each validator has at most one pending at a time.
    uint256 public constant MAX_PENDING_CHANGES = 1024;

    bool public immutable mirror;
    address public immutable token;
    StakingNFT public immutable NFTContract;
    address public owner;
    address public rootChain;
    /// 1 = TRON, 2 = Ethereum, 3 = BSC: whose checkpoint reward table applies.
    uint256 public immutable rewardChainId;

    uint256 public currentEpoch = 1;
    uint256 public WITHDRAWAL_DELAY = 80;
    uint256 public minDeposit = 1000 * 10 ** 27;
    uint256 public minHeimdallFee = 100_000 * 10 ** 18;
    uint256 public signerUpdateLimit = 100;
    uint256 public validatorThreshold = 7;
    uint256 public checkPointBlockInterval = 1024;
    uint256 public proposerBonus = 10;
    uint256 public NFTCounter = 1;

    /// Validators counted by checkpoints now, and their stake.
    uint256 public stakerCount;
    uint256 public totalStaked;
    uint256 public rewardPerStake;
    bytes32 public accountStateRoot;
    mapping(uint256 => uint256) public CHAIN_CHECKPOINT_REWARD;

    mapping(uint256 => Validator) public validators;
    mapping(address => uint256) public signerToValidator;
    mapping(uint256 => uint256) public validatorNonce;
    mapping(uint256 => uint256) public latestSignerUpdateEpoch;
    Change[] private _pending;

    event Staked(
        address indexed signer,
        uint256 indexed validatorId,
        uint256 nonce,
        uint256 indexed activationEpoch,
        uint256 amount,
        uint256 total,
        bytes signerPubkey
    );
    event Unstaked(address indexed user, uint256 indexed validatorId, uint256 amount, uint256 total);
    event UnstakeInit(
        address indexed user, uint256 indexed validatorId, uint256 nonce, uint256 deactivationEpoch, uint256 indexed amount
    );
    event SignerChange(
        uint256 indexed validatorId, uint256 nonce, address indexed oldSigner, address indexed newSigner, bytes signerPubkey
    );
    event Restaked(uint256 indexed validatorId, uint256 amount, uint256 total);
    event StakeUpdate(uint256 indexed validatorId, uint256 indexed nonce, uint256 indexed newAmount);
    event TopUpFee(address indexed user, uint256 indexed fee);
    event StakeAck(uint256 indexed validatorId, uint256 indexed nonce);

    constructor(address token_, bool mirror_, uint256 rewardChainId_) {
        owner = msg.sender;
        token = token_;
        mirror = mirror_;
        rewardChainId = rewardChainId_;
        NFTContract = new StakingNFT(address(this));
        CHAIN_CHECKPOINT_REWARD[1] = 29_761_460 * 10 ** 18;
        CHAIN_CHECKPOINT_REWARD[2] = 537_693_670 * 10 ** 18;
        CHAIN_CHECKPOINT_REWARD[3] = 4_129_520 * 10 ** 18;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "StakeManager: only the owner");
        _;
    }

    modifier onlyStakingChain() {
        require(!mirror, "StakeManager: this chain mirrors the staking chain");
        _;
    }

    modifier onlyMirror() {
        require(mirror, "StakeManager: only a mirror takes staking syncs");
        _;
    }

    modifier onlyStaker(uint256 validatorId) {
        require(NFTContract.ownerOf(validatorId) == msg.sender, "StakeManager: not the validator's owner");
        _;
    }

    // --- governance ---------------------------------------------------------------------

    function setRootChain(address rootChain_) external onlyOwner {
        rootChain = rootChain_;
    }

    function updateValidatorThreshold(uint256 threshold) external onlyOwner {
        validatorThreshold = threshold;
    }

    function updateMinAmounts(uint256 minDeposit_, uint256 minHeimdallFee_) external onlyOwner {
        minDeposit = minDeposit_;
        minHeimdallFee = minHeimdallFee_;
    }

    function updateSignerUpdateLimit(uint256 limit) external onlyOwner {
        signerUpdateLimit = limit;
    }

    function updateDynastyValue(uint256 delay) external onlyOwner {
        WITHDRAWAL_DELAY = delay;
    }

    function withdrawalDelay() external view returns (uint256) {
        return WITHDRAWAL_DELAY;
    }

    function epoch() external view returns (uint256) {
        return currentEpoch;
    }

    function currentValidatorSetSize() public view returns (uint256) {
        return stakerCount;
    }

    function getValidatorId(address user) external view returns (uint256) {
        return NFTContract.tokenOfOwnerByIndex(user, 0);
    }

    /// Whether `validatorId` counts in checkpoints at `atEpoch`.
    function isValidator(uint256 validatorId) public view returns (bool) {
        return _counts(validators[validatorId], currentEpoch);
    }

    // --- staking chain ------------------------------------------------------------------

    function stakeFor(address user, uint256 amount, uint256 heimdallFee, bool, bytes calldata signerPubkey)
        external
        onlyStakingChain
    {
        require(currentValidatorSetSize() < validatorThreshold, "StakeManager: no more slots");
        require(amount >= minDeposit, "StakeManager: stake below the minimum");
        require(heimdallFee >= minHeimdallFee, "StakeManager: fee below the minimum");
        require(NFTContract.balanceOf(user) == 0, "StakeManager: one validator per address");
        address signer = _signerOf(signerPubkey);
        SafeTransfer.safeTransferFrom(token, msg.sender, address(this), amount + heimdallFee);

        uint256 validatorId = NFTCounter++;
        validators[validatorId] = Validator({
            amount: amount,
            reward: 0,
            activationEpoch: currentEpoch,
            deactivationEpoch: 0,
            signer: signer,
            status: Status.Active
        });
        signerToValidator[signer] = validatorId;
        NFTContract.mint(user, validatorId);
        stakerCount += 1;
        totalStaked += amount;
        uint256 nonce = ++validatorNonce[validatorId];
        emit Staked(signer, validatorId, nonce, currentEpoch, amount, totalStaked, signerPubkey);
        emit TopUpFee(user, heimdallFee);
    }

    function topUpForFee(address user, uint256 heimdallFee) external onlyStakingChain {
        require(heimdallFee >= minHeimdallFee, "StakeManager: fee below the minimum");
        SafeTransfer.safeTransferFrom(token, msg.sender, address(this), heimdallFee);
        emit TopUpFee(user, heimdallFee);
    }

    function restake(uint256 validatorId, uint256 amount, bool stakeRewards)
        external
        onlyStakingChain
        onlyStaker(validatorId)
    {
        Validator storage v = validators[validatorId];
        require(v.deactivationEpoch == 0, "StakeManager: no restaking while unstaking");
        // Rewards are accounted but not funded or paid here (see `_reward`).
        require(!stakeRewards, "StakeManager: staking rewards is not supported");
        if (amount > 0) SafeTransfer.safeTransferFrom(token, msg.sender, address(this), amount);
        v.amount += amount;
        totalStaked += amount;
        uint256 nonce = ++validatorNonce[validatorId];
        emit StakeUpdate(validatorId, nonce, v.amount);
        emit Restaked(validatorId, v.amount, totalStaked);
    }

    function updateSigner(uint256 validatorId, bytes calldata signerPubkey)
        external
        onlyStakingChain
        onlyStaker(validatorId)
    {
        Validator storage v = validators[validatorId];
        require(v.deactivationEpoch == 0, "StakeManager: validator is unstaking");
        require(
            currentEpoch - latestSignerUpdateEpoch[validatorId] >= signerUpdateLimit, "StakeManager: signer update too soon"
        );
        address signer = _signerOf(signerPubkey);
        address old = v.signer;
        delete signerToValidator[old];
        signerToValidator[signer] = validatorId;
        v.signer = signer;
        latestSignerUpdateEpoch[validatorId] = currentEpoch;
        uint256 nonce = ++validatorNonce[validatorId];
        emit SignerChange(validatorId, nonce, old, signer, signerPubkey);
    }

    function unstake(uint256 validatorId) external onlyStakingChain onlyStaker(validatorId) {
        Validator storage v = validators[validatorId];
        require(v.status == Status.Active && v.deactivationEpoch == 0, "StakeManager: already unstaking");
        uint256 exitEpoch = currentEpoch + 1;
        v.deactivationEpoch = exitEpoch;
        _schedule(exitEpoch, -1, -_signed(v.amount));
        uint256 nonce = ++validatorNonce[validatorId];
        emit UnstakeInit(msg.sender, validatorId, nonce, exitEpoch, v.amount);
    }

    function unstakeClaim(uint256 validatorId) external onlyStakingChain onlyStaker(validatorId) {
        Validator storage v = validators[validatorId];
        uint256 deactivation = v.deactivationEpoch;
        require(deactivation > 0, "StakeManager: not unstaking");
        require(deactivation + WITHDRAWAL_DELAY <= currentEpoch, "StakeManager: withdrawal delay not over");
        uint256 amount = v.amount;
        delete signerToValidator[v.signer];
        v.amount = 0;
        v.status = Status.Unstaked;
        NFTContract.burn(validatorId);
        SafeTransfer.safeTransfer(token, msg.sender, amount);
        emit Unstaked(msg.sender, validatorId, amount, totalStaked);
    }

    /// The staking chain's checkpoint check (spec §1.6): at least ⌊2n/3⌋+1 distinct active
    /// validators by count. Advances the epoch.
    function checkSignatures(
        uint256 blockInterval,
        bytes32 voteHash,
        bytes32 stateRoot,
        address proposer,
        uint256[3][] calldata sigs
    ) external onlyStakingChain returns (uint256 reward) {
        require(msg.sender == rootChain, "StakeManager: only the root chain");
        uint256 quorum = stakerCount * 2 / 3 + 1;
        require(sigs.length >= quorum, "2/3+1 non-majority!");
        (uint256 count, uint256 stake) = _countSigners(voteHash, sigs, currentEpoch);
        require(count >= quorum, "2/3+1 non-majority!");
        reward = _reward(blockInterval, stake, proposer, stateRoot);
        currentEpoch += 1;
        _applyChanges(currentEpoch);
    }

    // --- mirror (Ethereum, BSC) ---------------------------------------------------------

    /// The genesis set of a mirror, once, before any checkpoint or sync.
    function initMirror(uint256[] calldata ids, address[] calldata signers, uint256[] calldata nonces)
        external
        onlyOwner
        onlyMirror
    {
        require(stakerCount == 0 && ids.length == signers.length && ids.length == nonces.length, "StakeManager: bad genesis");
        for (uint256 i = 0; i < ids.length; i++) {
            _join(ids[i], nonces[i], 10 ** 18, currentEpoch, signers[i]);
        }
    }

    /// A mirror's checkpoint check: the checkpoint carries the staking chain's epoch, which
    /// becomes ours. More than 2/3 of the stake must sign.
    function checkSignatures(
        uint256 blockInterval,
        uint256 checkpointEpoch,
        bytes32 voteHash,
        bytes32 stateRoot,
        address proposer,
        uint256[3][] calldata sigs
    ) external onlyMirror returns (uint256 reward) {
        require(msg.sender == rootChain, "StakeManager: only the root chain");
        if (checkpointEpoch > currentEpoch) {
            currentEpoch = checkpointEpoch;
            _applyChanges(checkpointEpoch);
        }
        uint256 stake = _verifyConsensus(voteHash, sigs);
        reward = _reward(blockInterval, stake, proposer, stateRoot);
    }

    /// `data = abi.encode(id, nonce, amount, activationEpoch, delegatedAmount, signer)`.
    function validatorJoin(bytes calldata data, uint256[3][] calldata sigs) external onlyMirror {
        require(data.length == 6 * 32, "StakeManager: join data must be 6 words");
        (uint256 id, uint256 nonce, uint256 amount, uint256 activationEpoch, uint256 delegated, address signer) =
            abi.decode(data, (uint256, uint256, uint256, uint256, uint256, address));
        require(activationEpoch <= type(uint64).max, "StakeManager: not an epoch");
        _checkSync(id, nonce, data, sigs);
        _join(id, nonce, amount + delegated, activationEpoch, signer);
    }

    /// `data = abi.encode(id, nonce, newSigner)`.
    function signerUpdate(bytes calldata data, uint256[3][] calldata sigs) external onlyMirror {
        require(data.length == 3 * 32, "StakeManager: signer update data must be 3 words");
        (uint256 id, uint256 nonce, address signer) = abi.decode(data, (uint256, uint256, address));
        // Exit data has the same shape and is signed the same way; a real signer (a keccak
        // output) is never below 2^64, an epoch always is, so one cannot pass for the other.
        require(uint160(signer) > type(uint64).max, "StakeManager: not a signer address");
        _checkSync(id, nonce, data, sigs);
        Validator storage v = validators[id];
        require(v.status == Status.Active, "StakeManager: no such validator");
        require(signer != address(0) && signerToValidator[signer] == 0, "StakeManager: signer in use");
        address old = v.signer;
        delete signerToValidator[old];
        signerToValidator[signer] = id;
        v.signer = signer;
        validatorNonce[id] = nonce;
        emit SignerChange(id, nonce, old, signer, "");
        emit StakeAck(id, nonce);
    }

    /// `data = abi.encode(id, nonce, deactivationEpoch)`.
    function validatorExit(bytes calldata data, uint256[3][] calldata sigs) external onlyMirror {
        require(data.length == 3 * 32, "StakeManager: exit data must be 3 words");
        (uint256 id, uint256 nonce, uint256 deactivationEpoch) = abi.decode(data, (uint256, uint256, uint256));
        require(deactivationEpoch <= type(uint64).max, "StakeManager: not an epoch");
        _checkSync(id, nonce, data, sigs);
        Validator storage v = validators[id];
        require(v.status == Status.Active && v.deactivationEpoch == 0, "StakeManager: not an active validator");
        v.deactivationEpoch = deactivationEpoch;
        _schedule(deactivationEpoch, -1, -_signed(v.amount));
        validatorNonce[id] = nonce;
        emit UnstakeInit(address(0), id, nonce, deactivationEpoch, v.amount);
        emit StakeAck(id, nonce);
    }

    function _checkSync(uint256 id, uint256 nonce, bytes calldata data, uint256[3][] calldata sigs) private view {
        require(nonce == validatorNonce[id] + 1, "StakeManager: invalid nonce");
        _verifyConsensus(keccak256(abi.encodePacked(bytes1(0x01), data)), sigs);
    }

    function _join(uint256 id, uint256 nonce, uint256 amount, uint256 activationEpoch, address signer) private {
        require(id != 0 && validators[id].status == Status.Inactive, "StakeManager: validator exists");
        require(signer != address(0) && signerToValidator[signer] == 0, "StakeManager: signer in use");
        validators[id] = Validator({
            amount: amount,
            reward: 0,
            activationEpoch: activationEpoch,
            deactivationEpoch: 0,
            signer: signer,
            status: Status.Active
        });
        signerToValidator[signer] = id;
        validatorNonce[id] = nonce;
        _schedule(activationEpoch, 1, _signed(amount));
        emit Staked(signer, id, nonce, activationEpoch, amount, totalStaked, "");
        emit StakeAck(id, nonce);
    }

    // --- shared -------------------------------------------------------------------------

    /// More than 2/3 of the counted stake signed `voteHash`; returns the signed stake.
    function _verifyConsensus(bytes32 voteHash, uint256[3][] calldata sigs) private view returns (uint256 stake) {
        (, stake) = _countSigners(voteHash, sigs, currentEpoch);
        require(stake >= totalStaked * 2 / 3 + 1, "2/3+1 non-majority!");
    }

    /// BTTC's loop (spec §1.6): signers must be strictly ascending; a repeat of the last
    /// counted signer is skipped, a lower one ends the count; signatures of non-validators
    /// (and high-s ones, which recover to zero) do not count.
    function _countSigners(bytes32 voteHash, uint256[3][] calldata sigs, uint256 atEpoch)
        private
        view
        returns (uint256 count, uint256 stake)
    {
        address last;
        for (uint256 i = 0; i < sigs.length; i++) {
            address signer = ECVerify.recover(voteHash, sigs[i]);
            if (signer == last) continue;
            if (signer < last) break;
            Validator storage v = validators[signerToValidator[signer]];
            if (_counts(v, atEpoch)) {
                last = signer;
                count += 1;
                stake += v.amount;
            }
        }
    }

    function _counts(Validator storage v, uint256 atEpoch) private view returns (bool) {
        return v.amount > 0 && v.status == Status.Active && v.activationEpoch <= atEpoch
            && (v.deactivationEpoch == 0 || v.deactivationEpoch > atEpoch);
    }

    /// The checkpoint reward (spec §1.6, for checkpoints of at most one target interval):
    /// proportional to the blocks covered and to the signed share of the stake; the proposer
    /// is credited its bonus, the rest accrues per staked unit. Accounting only: no reward pool
    /// is funded and nothing pays rewards out, so stakes and fees are never paid as rewards.
    function _reward(uint256 blockInterval, uint256 signedStake, address proposer, bytes32 stateRoot)
        private
        returns (uint256 reward)
    {
        reward = blockInterval * CHAIN_CHECKPOINT_REWARD[rewardChainId] / checkPointBlockInterval;
        reward = reward * signedStake / totalStaked;
        uint256 bonus = reward * proposerBonus / 100;
        uint256 proposerId = signerToValidator[proposer];
        if (proposerId != 0) validators[proposerId].reward += bonus;
        rewardPerStake += (reward - bonus) * REWARD_PRECISION / signedStake;
        accountStateRoot = stateRoot;
    }

    function _signerOf(bytes calldata pubkey) private view returns (address signer) {
        require(pubkey.length == 64, "StakeManager: public key must be 64 bytes");
        signer = address(uint160(uint256(keccak256(pubkey))));
        require(signer != address(0) && signerToValidator[signer] == 0, "StakeManager: signer in use");
    }

    function _schedule(uint256 atEpoch, int64 stakers, int128 stake) private {
        if (atEpoch <= currentEpoch) {
            _apply(stakers, stake);
        } else {
            require(_pending.length < MAX_PENDING_CHANGES, "StakeManager: too many pending changes");
            _pending.push(Change(uint64(atEpoch), stakers, stake));
        }
    }

    function _applyChanges(uint256 atEpoch) private {
        uint256 i = 0;
        while (i < _pending.length) {
            Change memory c = _pending[i];
            if (c.epoch <= atEpoch) {
                _apply(c.stakers, c.stake);
                _pending[i] = _pending[_pending.length - 1];
                _pending.pop();
            } else {
                i++;
            }
        }
    }

    function _apply(int64 stakers, int128 stake) private {
        int256 count = int256(stakerCount) + stakers;
        int256 total = int256(totalStaked) + stake;
        require(count >= 0 && total >= 0, "StakeManager: negative total");
        stakerCount = uint256(count);
        totalStaked = uint256(total);
    }

    function _signed(uint256 amount) private pure returns (int128) {
        require(amount <= uint256(uint128(type(int128).max)), "StakeManager: amount too large");
        return int128(int256(amount));
    }
}
