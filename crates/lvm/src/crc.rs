//! LVM2's checksum: the reflected CRC-32 of polynomial 0xEDB88320, started from
//! 0xF597A6CF and not inverted at the end (LVM2 `lib/misc/crc.c`, `INITIAL_CRC` in
//! `crc.h`; docs/formats.md §9.4). It guards the label sector, the metadata area
//! header and the metadata text.

/// The value LVM2 starts every checksum from.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// LVM2's checksum of `parts`, one after the other (a wrapped metadata text is two parts).
pub fn lvm_crc(parts: &[&[u8]]) -> u32 {
    // crc32fast computes the standard CRC-32: it inverts the state on entry and on exit.
    // Inverting the initial value and the result cancels both, leaving LVM2's variant.
    let mut h = crc32fast::Hasher::new_with_initial(!INITIAL_CRC);
    for p in parts {
        h.update(p);
    }
    !h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LVM2's table-driven loop, bit by bit, as the reference.
    fn reference(init: u32, bytes: &[u8]) -> u32 {
        let mut crc = init;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn matches_the_bitwise_definition() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(lvm_crc(&[&data]), reference(INITIAL_CRC, &data));
        assert_eq!(
            lvm_crc(&[&data[..10], &data[10..]]),
            reference(INITIAL_CRC, &data)
        );
        assert_eq!(lvm_crc(&[]), INITIAL_CRC);
    }
}
