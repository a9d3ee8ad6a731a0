//! Zero detection: the cheapest way to skip work is to notice there is nothing there.

use crate::disk::push_run;
use crate::{BlockState, MapRange, Result, VirtualDisk};

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

/// Splits `buf` into maximal runs of whole `block`-byte blocks (the last may be shorter)
/// that are all zero or not: `(offset, length, zero)`. The one zero scan behind `map
/// --detect-zeroes`, the residue of free space and the holes of a sparse export.
pub fn zero_runs(buf: &[u8], block: usize) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
    let block = block.max(1);
    let mut blocks = buf.chunks(block).map(is_zero).enumerate().peekable();
    std::iter::from_fn(move || {
        let (first, zero) = blocks.next()?;
        let mut last = first;
        while let Some(&(i, z)) = blocks.peek() {
            if z != zero {
                break;
            }
            last = i;
            blocks.next();
        }
        let start = first * block;
        let end = ((last + 1) * block).min(buf.len());
        Some((start, end - start, zero))
    })
}

/// Bytes read per task by [`detect_zeroes`].
const DETECT_CHUNK: u64 = 1 << 20;

/// Splits every `data` run of `map` into `data` and `zero` runs at `block` granularity by
/// reading it (in parallel, [`DETECT_CHUNK`] bytes per task); other runs are kept.
pub fn detect_zeroes(
    disk: &dyn VirtualDisk,
    map: &[MapRange],
    block: u64,
) -> Result<Vec<MapRange>> {
    use rayon::prelude::*;
    let mut tasks = Vec::new();
    for r in map {
        let mut pos = r.start;
        while pos < r.start + r.length {
            let len = (r.start + r.length - pos).min(DETECT_CHUNK.max(block));
            tasks.push((*r, pos, len));
            pos += len;
        }
    }
    let pieces: Vec<Vec<MapRange>> = tasks
        .par_iter()
        .map_init(Vec::new, |buf, &(r, pos, len)| -> Result<Vec<MapRange>> {
            let piece = MapRange {
                start: pos,
                length: len,
                ..r
            };
            if r.state != BlockState::Data {
                return Ok(vec![piece]);
            }
            buf.resize(len as usize, 0);
            disk.read_at(buf, pos)?;
            Ok(zero_runs(buf, block as usize)
                .map(|(at, n, zero)| MapRange {
                    start: pos + at as u64,
                    length: n as u64,
                    state: if zero {
                        BlockState::Zero
                    } else {
                        BlockState::Data
                    },
                    depth: r.depth,
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let mut merged = Vec::new();
    for run in pieces.into_iter().flatten() {
        push_run(&mut merged, run);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_runs_are_maximal_and_cover_the_buffer() {
        let mut buf = vec![0u8; 4096 * 5 + 100];
        buf[4096 * 2 + 7] = 1;
        buf[4096 * 3] = 1;
        buf[4096 * 5 + 99] = 1;
        let runs: Vec<_> = zero_runs(&buf, 4096).collect();
        assert_eq!(
            runs,
            vec![
                (0, 8192, true),
                (8192, 8192, false),
                (16384, 4096, true),
                (20480, 100, false)
            ]
        );
        assert_eq!(zero_runs(&[], 4096).count(), 0);
    }

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
