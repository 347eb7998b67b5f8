//! BTTC net.
