// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

/// Answers like a Chainlink AggregatorV3 feed; the answer and its update time are set by tests,
/// so staleness and price moves can be played out.
contract TestPriceFeed {
    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;

    uint80 private roundId;
    int256 private answer;
    uint256 private updatedAt;

    constructor(uint8 decimals_, string memory description_) {
        decimals = decimals_;
        description = description_;
    }

    function setAnswer(int256 newAnswer, uint256 newUpdatedAt) external {
        roundId += 1;
        answer = newAnswer;
        updatedAt = newUpdatedAt;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }
}
