//! BTTC storage.
