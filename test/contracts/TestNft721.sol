// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// An ERC-721 collection anyone may mint into and burn from (tests only); tokenURI is base + id.
contract TestNft721 is ERC721 {
    string private base;

    constructor() ERC721("Test NFT", "TNFT") {}

    function mint(address to, uint256 id) external {
        _mint(to, id);
    }

    function burn(uint256 id) external {
        _burn(id);
    }

    function setBaseURI(string calldata newBase) external {
        base = newBase;
    }

    function _baseURI() internal view override returns (string memory) {
        return base;
    }
}
