//! A set of byte ranges with union, intersection and difference.
//!
//! The interval algebra is `range-set-blaze` (inclusive `u64` ranges); this type speaks the
//! half-open [`ByteRange`] the rest of diskray uses and hides the inclusive bounds.

use crate::ByteRange;
use range_set_blaze::RangeSetBlaze;

/// A set of bytes, stored as sorted, disjoint, merged ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    inner: RangeSetBlaze<u64>,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every byte of `range` (an empty range adds nothing).
    pub fn insert(&mut self, range: ByteRange) {
        if let Some(r) = inclusive(range) {
            self.inner.ranges_insert(r);
        }
    }

    /// The bytes in either set.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            inner: &self.inner | &other.inner,
        }
    }

    /// The bytes in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            inner: &self.inner & &other.inner,
        }
    }

    /// The bytes in `self` but not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            inner: &self.inner - &other.inner,
        }
    }

    /// The ranges, sorted, disjoint and merged where adjacent.
    pub fn ranges(&self) -> impl Iterator<Item = ByteRange> + '_ {
        self.inner
            .ranges()
            .map(|r| ByteRange::from_bounds(*r.start(), r.end().saturating_add(1)))
    }

    /// Total number of bytes in the set.
    pub fn bytes(&self) -> u64 {
        self.ranges().map(|r| r.length).sum()
    }

    /// True when the set holds no byte.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// True when `offset` is in the set.
    pub fn contains(&self, offset: u64) -> bool {
        self.inner.contains(offset)
    }
}

impl FromIterator<ByteRange> for RangeSet {
    fn from_iter<T: IntoIterator<Item = ByteRange>>(iter: T) -> Self {
        let mut set = RangeSet::new();
        for r in iter {
            set.insert(r);
        }
        set
    }
}

fn inclusive(r: ByteRange) -> Option<std::ops::RangeInclusive<u64>> {
    (!r.is_empty()).then(|| r.start..=r.end() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[(u64, u64)]) -> RangeSet {
        v.iter().map(|&(s, l)| ByteRange::new(s, l)).collect()
    }

    fn list(s: &RangeSet) -> Vec<(u64, u64)> {
        s.ranges().map(|r| (r.start, r.length)).collect()
    }

    #[test]
    fn merges_adjacent_and_overlapping() {
        let s = set(&[(0, 10), (10, 5), (30, 5), (32, 10), (50, 0)]);
        assert_eq!(list(&s), vec![(0, 15), (30, 12)]);
        assert_eq!(s.bytes(), 27);
        assert!(s.contains(14) && !s.contains(15));
    }

    #[test]
    fn algebra() {
        let a = set(&[(0, 100)]);
        let b = set(&[(10, 10), (90, 20)]);
        assert_eq!(list(&a.intersection(&b)), vec![(10, 10), (90, 10)]);
        assert_eq!(list(&a.difference(&b)), vec![(0, 10), (20, 70)]);
        assert_eq!(list(&a.union(&b)), vec![(0, 110)]);
    }

    #[test]
    fn extremes() {
        let s = set(&[(u64::MAX - 1, 1), (0, 1)]);
        assert_eq!(list(&s), vec![(0, 1), (u64::MAX - 1, 1)]);
    }
}
