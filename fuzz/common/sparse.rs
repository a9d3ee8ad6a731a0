//! Sector records: a compact input shape for disks whose interesting bytes are far apart
//! (a fragmented `$MFT`, a journal at the end of an ext volume, partitions at 1 MiB on a
//! 4096-byte-sector disk). The input is a run of records, each a little-endian `u16`
//! sector number (taken modulo the disk's sector count) and up to [`SECTOR`] bytes
//! written there; everything else is zero. `fuzz/seed.sh` writes seeds in this shape
//! from the fixtures' non-zero sectors.

/// Bytes a record writes.
pub const SECTOR: usize = 512;
/// Bytes of a record: its sector number and its sector.
pub const RECORD: usize = 2 + SECTOR;

/// A zeroed disk of `capacity` bytes (a multiple of [`SECTOR`], at most 65536 sectors)
/// with `records` written over it.
pub fn disk(records: &[u8], capacity: usize) -> Vec<u8> {
    let sectors = capacity / SECTOR;
    let mut bytes = vec![0u8; capacity];
    for r in records.chunks(RECORD) {
        if r.len() < 2 {
            break;
        }
        let at = (u16::from_le_bytes([r[0], r[1]]) as usize % sectors) * SECTOR;
        let body = &r[2..];
        bytes[at..at + body.len()].copy_from_slice(body);
    }
    bytes
}
