//! Zero detection: the cheapest way to skip work is to notice there is nothing there.

/// Block size of the zero scan; large enough that the compiler vectorises the OR-fold.
const SCAN_BLOCK: usize = 256;

/// True when every byte of `buf` is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    let mut blocks = buf.chunks_exact(SCAN_BLOCK);
    for block in &mut blocks {
        if block.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_single_bit_anywhere() {
        let mut buf = vec![0u8; 4099];
        assert!(is_zero(&buf));
        for pos in [0, 255, 256, 4095, 4096, 4098] {
            buf[pos] = 0x10;
            assert!(!is_zero(&buf), "missed byte {pos}");
            buf[pos] = 0;
        }
        assert!(is_zero(&[]));
    }
}
