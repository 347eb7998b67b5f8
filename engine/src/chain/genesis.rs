//! Genesis: the dev accounts derived from a fixed mnemonic, and the genesis block.
