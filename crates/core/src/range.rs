//! A half-open byte range `[start, start + length)`, the unit every map and report uses.

use serde::{Deserialize, Serialize};

/// A half-open range of bytes: `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte of the range.
    pub start: u64,
    /// Number of bytes in the range.
    pub length: u64,
}

impl ByteRange {
    /// A range from `start` covering `length` bytes.
    pub const fn new(start: u64, length: u64) -> Self {
        Self { start, length }
    }

    /// The range `[start, end)`; empty when `end <= start`.
    pub fn from_bounds(start: u64, end: u64) -> Self {
        Self {
            start,
            length: end.saturating_sub(start),
        }
    }

    /// One past the last byte (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }

    /// True when the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &ByteRange) -> Option<ByteRange> {
        let start = self.start.max(other.start);
        let end = self.end().min(other.end());
        (start < end).then(|| ByteRange::from_bounds(start, end))
    }

    /// This range widened outward to multiples of `align` (a power of two or any non-zero
    /// value), clamped to `limit`.
    pub fn align_out(&self, align: u64, limit: u64) -> ByteRange {
        debug_assert!(align > 0);
        let start = self.start - self.start % align;
        let end = self.end().div_ceil(align).saturating_mul(align).min(limit);
        ByteRange::from_bounds(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_and_align() {
        let a = ByteRange::new(10, 10);
        assert_eq!(
            a.intersect(&ByteRange::new(15, 100)),
            Some(ByteRange::new(15, 5))
        );
        assert_eq!(a.intersect(&ByteRange::new(20, 1)), None);
        assert_eq!(a.align_out(8, 100), ByteRange::new(8, 16));
        assert_eq!(a.align_out(8, 18), ByteRange::new(8, 10));
        assert_eq!(ByteRange::from_bounds(5, 3), ByteRange::new(5, 0));
    }
}
