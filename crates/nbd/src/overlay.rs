//! The writable layer of `diskray serve --overlay FILE`: writes to the export land in FILE,
//! never in the repository (instant recovery: a VM boots from the backup while its
//! writes go aside). FILE is a sparse file as large as the export holding each written
//! block at its own offset; `FILE.map` records which [`BLOCK`]-byte blocks were written,
//! one bit each, so that a later `serve` with the same FILE sees them again. Data is
//! written before its bits; `NBD_CMD_FLUSH` makes both durable (`docs/nbd.md` §11).

use diskray_core::{BlockState, ByteRange, Error, MapRange, Result, VirtualDisk};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes per tracked block: the page size, the smallest write a guest makes.
pub const BLOCK: u64 = 4096;

/// The written blocks and the files that hold them.
struct State {
    data: File,
    map: File,
    written: Vec<u8>,
}

/// An export's base disk with the overlay's writes over it.
pub struct Overlay<'a> {
    base: &'a dyn VirtualDisk,
    path: PathBuf,
    state: Mutex<State>,
}

fn io(path: &Path, at: u64) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, at, e)
}

impl<'a> Overlay<'a> {
    /// Opens (or creates) the overlay `path` over `base`. An existing overlay must be as
    /// large as the export and have its map.
    pub fn open(base: &'a dyn VirtualDisk, path: &Path) -> Result<Overlay<'a>> {
        let cap = base.capacity();
        let map_path = PathBuf::from(format!("{}.map", path.display()));
        let bits = cap.div_ceil(BLOCK).div_ceil(8);
        let fresh = !path.exists();
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(fresh)
                .truncate(false)
                .open(p)
                .map_err(|e| Error::Open {
                    path: p.to_path_buf(),
                    source: e,
                })
        };
        let data = open(path)?;
        let map = open(&map_path)?;
        if fresh {
            data.set_len(cap).map_err(io(path, 0))?;
            map.set_len(bits).map_err(io(&map_path, 0))?;
        }
        let found = (data.metadata(), map.metadata());
        let (Ok(d), Ok(m)) = found else {
            return Err(Error::refused(path, "cannot read the overlay's size"));
        };
        if d.len() != cap || m.len() != bits {
            return Err(Error::refused(
                path,
                format!(
                    "an overlay of another export: expected {cap} bytes and a {bits}-byte map, found {} and {}",
                    d.len(),
                    m.len()
                ),
            ));
        }
        let mut written = vec![0u8; bits as usize];
        map.read_exact_at(&mut written, 0)
            .map_err(io(&map_path, 0))?;
        Ok(Overlay {
            base,
            path: path.to_path_buf(),
            state: Mutex::new(State { data, map, written }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `buf` at `offset` (inside the export): partial blocks are completed from
    /// what the export holds there now.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<()> {
        let cap = self.base.capacity();
        let inside = offset
            .checked_add(buf.len() as u64)
            .is_some_and(|e| e <= cap);
        if !inside {
            return Err(Error::out_of_range(
                "overlay",
                offset,
                buf.len() as u64,
                cap,
            ));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let range = ByteRange::new(offset, buf.len() as u64);
        let whole = range.align_out(BLOCK, self.base.capacity());
        let mut block = vec![0u8; whole.length as usize];
        let mut st = self.lock();
        // The edges of the first and last blocks as they read now.
        for edge in [
            whole.start,
            whole.end().saturating_sub(BLOCK).max(whole.start),
        ] {
            let len = BLOCK.min(whole.end() - edge) as usize;
            let at = (edge - whole.start) as usize;
            self.read_locked(&st, &mut block[at..at + len], edge)?;
        }
        let at = (offset - whole.start) as usize;
        block[at..at + buf.len()].copy_from_slice(buf);
        st.data
            .write_all_at(&block, whole.start)
            .map_err(io(&self.path, whole.start))?;
        let (first, last) = (whole.start / BLOCK, (whole.end() - 1) / BLOCK);
        for b in first..=last {
            st.written[(b / 8) as usize] |= 1 << (b % 8);
        }
        let (lo, hi) = ((first / 8) as usize, (last / 8) as usize);
        let bytes = st.written[lo..=hi].to_vec();
        st.map
            .write_all_at(&bytes, lo as u64)
            .map_err(io(&self.path, lo as u64))
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        let st = self.lock();
        st.data.sync_data().map_err(io(&self.path, 0))?;
        st.map.sync_data().map_err(io(&self.path, 0))
    }

    fn is_written(st: &State, block: u64) -> bool {
        st.written[(block / 8) as usize] & (1 << (block % 8)) != 0
    }

    /// Runs of blocks over `range`: (range, written).
    fn runs(st: &State, range: ByteRange) -> Vec<(ByteRange, bool)> {
        let mut out: Vec<(ByteRange, bool)> = Vec::new();
        let mut pos = range.start;
        while pos < range.end() {
            let w = Self::is_written(st, pos / BLOCK);
            let end = ((pos / BLOCK + 1) * BLOCK).min(range.end());
            match out.last_mut() {
                Some((r, lw)) if *lw == w => *r = ByteRange::from_bounds(r.start, end),
                _ => out.push((ByteRange::from_bounds(pos, end), w)),
            }
            pos = end;
        }
        out
    }

    fn read_locked(&self, st: &State, buf: &mut [u8], offset: u64) -> Result<()> {
        for (r, written) in Self::runs(st, ByteRange::new(offset, buf.len() as u64)) {
            let at = (r.start - offset) as usize;
            let part = &mut buf[at..at + r.length as usize];
            if written {
                st.data
                    .read_exact_at(part, r.start)
                    .map_err(io(&self.path, r.start))?;
            } else {
                self.base.read_at(part, r.start)?;
            }
        }
        Ok(())
    }
}

impl VirtualDisk for Overlay<'_> {
    fn capacity(&self) -> u64 {
        self.base.capacity()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let st = self.lock();
        self.read_locked(&st, buf, offset)
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let base = self.base.map(range)?;
        let st = self.lock();
        let mut out: Vec<MapRange> = Vec::new();
        for m in base {
            for (r, written) in Self::runs(&st, m.range()) {
                let state = if written { BlockState::Data } else { m.state };
                let piece = MapRange {
                    start: r.start,
                    length: r.length,
                    state,
                    ..m
                };
                match out.last_mut() {
                    Some(l) if l.state == piece.state && l.start + l.length == piece.start => {
                        l.length += piece.length
                    }
                    _ => out.push(piece),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diskray_core::MemDisk;

    #[test]
    fn writes_cross_blocks_read_back_over_the_base_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ov");
        let base_bytes: Vec<u8> = (0..(64 << 10) + 100).map(|i| (i % 251) as u8).collect();
        let base = MemDisk::new(base_bytes.clone());
        let mut want = base_bytes.clone();
        {
            let o = Overlay::open(&base, &path).unwrap();
            // Across a block boundary, inside one block, and the unaligned tail.
            for (at, len, v) in [
                (4000u64, 200usize, 1u8),
                (9000, 10, 2),
                ((64 << 10) + 50, 50, 3),
            ] {
                o.write(&vec![v; len], at).unwrap();
                want[at as usize..at as usize + len].fill(v);
            }
            o.flush().unwrap();
            let mut got = vec![0u8; want.len()];
            o.read_at(&mut got, 0).unwrap();
            assert_eq!(got, want);
        }
        let o = Overlay::open(&base, &path).unwrap();
        let mut got = vec![0u8; want.len()];
        o.read_at(&mut got, 0).unwrap();
        assert_eq!(got, want, "after a reopen");
        let written: u64 = o
            .map(ByteRange::new(0, base.capacity()))
            .unwrap()
            .iter()
            .filter(|m| m.state == BlockState::Data)
            .map(|m| m.length)
            .sum();
        assert!(written > 0);
        // Empty and out-of-range writes: nothing written, an error, never a panic.
        o.write(&[], 0).unwrap();
        assert!(o.write(&[1; 10], base.capacity() - 5).is_err());
        assert!(o.write(&[1; 10], u64::MAX - 3).is_err());
        // The overlay of another export is refused.
        let other = MemDisk::new(vec![0u8; 1 << 20]);
        assert!(Overlay::open(&other, &path).is_err());
    }
}
