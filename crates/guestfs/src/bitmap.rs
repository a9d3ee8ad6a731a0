//! Allocation bitmaps (ext block bitmaps, NTFS `$Bitmap`): one bit per unit, least
//! significant bit first, 1 = in use.

/// The runs of set bits among the first `count` bits of `bits`, as (first, length).
/// Bits past the end of `bits` count as clear.
pub fn set_runs(bits: &[u8], count: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut run: Option<u64> = None;
    for i in 0..=count {
        let set = i < count
            && bits
                .get((i / 8) as usize)
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
        match (set, run) {
            (true, None) => run = Some(i),
            (false, Some(s)) => {
                out.push((s, i - s));
                run = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_lsb_first() {
        assert_eq!(
            super::set_runs(&[0b1000_0110, 0b0000_0001], 16),
            vec![(1, 2), (7, 2)]
        );
        assert_eq!(super::set_runs(&[0xFF], 5), vec![(0, 5)]);
        assert_eq!(super::set_runs(&[0xFF], 12), vec![(0, 8)]);
        assert!(super::set_runs(&[], 0).is_empty());
    }
}
