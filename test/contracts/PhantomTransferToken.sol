// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// A lying token: transfer and transferFrom emit a Transfer log and return true, but no balance
/// changes. A watcher that trusts logs alone would credit money that never arrived.
contract PhantomTransferToken is ERC20 {
    constructor() ERC20("Phantom USD", "PUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        emit Transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        emit Transfer(from, to, value);
        return true;
    }
}
