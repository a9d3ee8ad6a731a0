//! [`Placement`]: where the bytes of a volume lie on its disk. A partition is one piece; a
//! logical volume of a volume manager is many (one per extent run, one per stripe chunk),
//! in any order on the disk. Allocation maps are volume-relative; the classification and
//! every disk-absolute listing map them through the volume's placement.

use crate::{ByteRange, RangeSet};

/// A range of one disk of a machine, as JSON names it: `{"disk": INDEX, "start",
/// "length"}` when the machine has several disks, `{"start", "length"}` when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct DiskRange {
    /// The disk, counting from 0 in the order given (only with several disks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<usize>,
    /// First byte on that disk.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

impl From<ByteRange> for DiskRange {
    fn from(r: ByteRange) -> Self {
        DiskRange {
            disk: None,
            start: r.start,
            length: r.length,
        }
    }
}

/// One run of a volume on the disk: volume bytes `[volume, volume + length)` are disk
/// bytes `[disk, disk + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// First volume-relative byte.
    pub volume: u64,
    /// Where it lies on the disk.
    pub disk: u64,
    /// Length in bytes.
    pub length: u64,
}

/// The pieces of a volume, sorted by volume offset, not overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pieces: Vec<Piece>,
}

impl Placement {
    /// A volume that is one contiguous run of the disk (a partition, a whole disk).
    pub fn linear(disk: u64, length: u64) -> Placement {
        // Kept even when empty, so that an empty partition still starts where it starts.
        let pieces = vec![Piece {
            volume: 0,
            disk,
            length,
        }];
        Placement { pieces }
    }

    /// A volume made of `pieces` (sorted here; adjacent runs merged).
    pub fn from_pieces(mut pieces: Vec<Piece>) -> Placement {
        pieces.retain(|p| p.length > 0);
        pieces.sort_by_key(|p| p.volume);
        let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
        for p in pieces {
            match merged.last_mut() {
                Some(l) if l.volume + l.length == p.volume && l.disk + l.length == p.disk => {
                    l.length += p.length
                }
                _ => merged.push(p),
            }
        }
        Placement { pieces: merged }
    }

    /// The pieces, by volume offset.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The first disk byte of the volume (its start, for a partition).
    pub fn first_disk_byte(&self) -> u64 {
        self.pieces.first().map_or(0, |p| p.disk)
    }

    /// Whether the volume is one contiguous run of the disk.
    pub fn is_linear(&self) -> bool {
        self.pieces.len() <= 1
    }

    /// The disk bytes of the volume bytes `r`.
    pub fn to_disk(&self, r: ByteRange) -> impl Iterator<Item = ByteRange> + '_ {
        let first = self
            .pieces
            .partition_point(|p| p.volume + p.length <= r.start);
        self.pieces[first..]
            .iter()
            .take_while(move |p| p.volume < r.end())
            .filter_map(move |p| {
                let v = ByteRange::new(p.volume, p.length).intersect(&r)?;
                Some(ByteRange::new(p.disk + (v.start - p.volume), v.length))
            })
    }

    /// The disk bytes of the volume bytes in `set`.
    pub fn set_to_disk(&self, set: &RangeSet) -> RangeSet {
        set.ranges()
            .flat_map(|r| self.to_disk(r).collect::<Vec<_>>())
            .collect()
    }

    /// Every disk byte of the volume's first `length` bytes.
    pub fn span(&self, length: u64) -> RangeSet {
        self.to_disk(ByteRange::new(0, length)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_volume_maps_piece_by_piece() {
        // Two 64 KiB stripes alternating between disk offsets 1 MiB and 9 MiB.
        let k = 64 << 10;
        let m = 1 << 20;
        let p = Placement::from_pieces(vec![
            Piece {
                volume: k,
                disk: 9 * m,
                length: k,
            },
            Piece {
                volume: 0,
                disk: m,
                length: k,
            },
            Piece {
                volume: 2 * k,
                disk: m + k,
                length: k,
            },
        ]);
        let got: Vec<ByteRange> = p.to_disk(ByteRange::new(k / 2, 2 * k)).collect();
        assert_eq!(
            got,
            vec![
                ByteRange::new(m + k / 2, k / 2),
                ByteRange::new(9 * m, k),
                ByteRange::new(m + k, k / 2),
            ]
        );
        assert_eq!(p.first_disk_byte(), m);
        assert_eq!(p.span(3 * k).bytes(), 3 * k);
    }

    #[test]
    fn a_partition_is_one_shifted_run() {
        let p = Placement::linear(4096, 1 << 20);
        let got: Vec<ByteRange> = p.to_disk(ByteRange::new(10, 20)).collect();
        assert_eq!(got, vec![ByteRange::new(4106, 20)]);
        assert!(p.to_disk(ByteRange::new(1 << 20, 5)).next().is_none());
    }
}
