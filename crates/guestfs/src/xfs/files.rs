//! The file view of XFS: inodes (v2 and v3 cores), short-form, block, leaf and node
//! directories (their data blocks, read in address order), extent-list and B+tree data
//! forks, local and remote symlinks, holes and unwritten extents as zeros. Deleted files
//! are not recovered on XFS (freed inodes lose their extent lists).
//!
//! Sources: "XFS Algorithms & Data Structures" (3rd ed.): On-disk inode, Data Extents,
//! Directories (short form, block, leaf, node), Symbolic Links.

use super::{be16, be32, be64, Xfs};
use crate::files::{copy_pieces, decode_name, pieces_of, FileHandle, FileType, FileView};
use diskray_core::{ByteRange, Error, Result};
use std::collections::HashSet;
use std::io::Write;

/// How XFS finds an entry again: its inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct XfsHandle(pub(crate) u64);

impl FileHandle for XfsHandle {}

/// The entries of this file view.
type Entry = crate::files::Entry<XfsHandle>;

/// Directory data blocks live below this byte offset of the directory's address space.
const DIR_LEAF_OFFSET: u64 = 32 << 30;
/// Largest directory read into memory.
const MAX_DIR_BYTES: u64 = 256 << 20;
/// Deepest data-fork B+tree accepted.
const MAX_BMBT_LEVELS: u16 = 9;
/// Most extents collected for one file (bounds hostile forks).
const MAX_EXTENTS: usize = 1 << 20;
/// Longest symlink target XFS stores (`XFS_SYMLINK_MAXLEN`).
const SYMLINK_MAXLEN: u64 = 1024;
/// The header each block of a remote symlink starts with on v5 (`struct xfs_dsymlink_hdr`:
/// magic `XSLM`, offset, bytes, crc, uuid, owner, blkno, lsn).
const SYMLINK_HDR: usize = 56;
/// Most blocks a remote symlink takes: 1024 bytes in blocks of at least 512 bytes, less
/// their headers.
const SYMLINK_MAX_BLOCKS: u64 = SYMLINK_MAXLEN.div_ceil(512 - SYMLINK_HDR as u64);

/// One data-fork extent, in filesystem blocks.
#[derive(Debug, Clone, Copy)]
struct Extent {
    offset: u64,
    fsblock: u64,
    count: u64,
    unwritten: bool,
}

/// A parsed inode.
struct Inode {
    ino: u64,
    at: u64,
    mode: u16,
    format: u8,
    size: u64,
    mtime: i64,
    nextents: u64,
    fork: Vec<u8>,
}

impl Inode {
    fn kind(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

impl Xfs<'_> {
    fn fsblock_byte(&self, fsb: u64) -> u64 {
        let sb = self.superblock();
        let agno = fsb >> sb.agblklog;
        let agbno = fsb & ((1u64 << sb.agblklog) - 1);
        self.ag_byte(agno, agbno)
    }

    fn inode(&self, ino: u64) -> Result<Inode> {
        let sb = self.superblock();
        let agino_log = sb.inopblog + sb.agblklog;
        let agno = ino >> agino_log;
        let agino = ino & ((1u64 << agino_log) - 1);
        let agbno = agino >> sb.inopblog;
        if agno >= sb.agcount || agbno >= sb.agblocks {
            return Err(self
                .slice()
                .corrupt(0, format!("XFS inode {ino} lies outside the filesystem")));
        }
        let at = self.ag_byte(agno, agbno) + (agino & ((1u64 << sb.inopblog) - 1)) * sb.inode_size;
        let raw = self.slice().read_vec(at, sb.inode_size)?;
        if &raw[0..2] != b"IN" {
            return Err(self
                .slice()
                .corrupt(at, format!("XFS inode {ino}: bad magic")));
        }
        let version = raw[4];
        let core = if version >= 3 { 176 } else { 100 };
        let forkoff = raw[0x52] as usize * 8;
        let fork_end = if forkoff == 0 {
            raw.len()
        } else {
            (core + forkoff).min(raw.len())
        };
        Ok(Inode {
            ino,
            at,
            mode: be16(&raw, 2) as u16,
            format: raw[5],
            size: be64(&raw, 0x38),
            mtime: mtime(&raw, version),
            nextents: be32(&raw, 0x4C),
            fork: raw[core.min(fork_end)..fork_end].to_vec(),
        })
    }

    /// The data-fork extents of `i`, sorted by file offset.
    fn fork_extents(&self, i: &Inode) -> Result<Vec<Extent>> {
        let mut out = Vec::new();
        match i.format {
            2 => {
                let n = (i.nextents as usize).min(i.fork.len() / 16);
                for rec in i.fork.chunks_exact(16).take(n) {
                    out.push(parse_rec(rec));
                }
            }
            3 => {
                let f = &i.fork;
                if f.len() < 4 {
                    return Err(self.slice().corrupt(i.at, "XFS btree root too small"));
                }
                let (level, numrecs) = (be16(f, 0) as u16, be16(f, 2) as usize);
                let maxrecs = (f.len() - 4) / 16;
                if level == 0 || level > MAX_BMBT_LEVELS || numrecs > maxrecs {
                    return Err(self.slice().corrupt(
                        i.at,
                        format!(
                            "XFS inode {}: btree root level {level} with {numrecs} records",
                            i.ino
                        ),
                    ));
                }
                let mut seen = HashSet::new();
                for k in 0..numrecs {
                    let ptr = be64(f, 4 + maxrecs * 8 + k * 8);
                    self.bmbt_block(ptr, level - 1, &mut seen, &mut out)?;
                }
            }
            _ => {}
        }
        out.sort_by_key(|e| e.offset);
        Ok(out)
    }

    fn bmbt_block(
        &self,
        fsb: u64,
        level: u16,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        let sb = self.superblock();
        let at = self.fsblock_byte(fsb);
        // Each tree block is read once: records that share a child would otherwise make
        // the walk exponential.
        if !seen.insert(fsb) {
            return Err(self.slice().corrupt(
                at,
                format!("XFS data-fork btree block {fsb} is referenced twice"),
            ));
        }
        let b = self.slice().read_vec(at, sb.block_size)?;
        let (magic, hdr): (&[u8], usize) = if sb.v5 { (b"BMA3", 72) } else { (b"BMAP", 24) };
        if &b[0..4] != magic || be16(&b, 4) as u16 != level {
            return Err(self.slice().corrupt(
                at,
                format!("XFS data-fork btree block {fsb}: bad magic or level"),
            ));
        }
        let numrecs = be16(&b, 6) as usize;
        let maxrecs = (b.len() - hdr) / 16;
        if numrecs > maxrecs {
            return Err(self.slice().corrupt(
                at + 6,
                format!("XFS btree block: {numrecs} records, room for {maxrecs}"),
            ));
        }
        if level == 0 {
            for k in 0..numrecs {
                if out.len() >= MAX_EXTENTS {
                    return Err(self.slice().corrupt(at, "XFS file has too many extents"));
                }
                out.push(parse_rec(&b[hdr + k * 16..hdr + k * 16 + 16]));
            }
            return Ok(());
        }
        for k in 0..numrecs {
            let ptr = be64(&b, hdr + maxrecs * 8 + k * 8);
            self.bmbt_block(ptr, level - 1, seen, out)?;
        }
        Ok(())
    }

    /// Streams the first `limit` bytes of an extent-format inode.
    fn stream(&self, i: &Inode, limit: u64, out: &mut dyn Write) -> Result<u64> {
        let werr = |e: std::io::Error| Error::output("file data", e);
        let size = i.size.min(limit);
        if i.format == 1 {
            let n = (size as usize).min(i.fork.len());
            out.write_all(&i.fork[..n]).map_err(werr)?;
            return Ok(n as u64);
        }
        let bs = self.superblock().block_size;
        let extents: Vec<(u64, u64, Option<u64>)> = self
            .fork_extents(i)?
            .iter()
            .map(|e| {
                (
                    e.offset * bs,
                    e.count * bs,
                    (!e.unwritten).then(|| self.fsblock_byte(e.fsblock)),
                )
            })
            .collect();
        copy_pieces(self.slice(), &pieces_of(extents, size), out)
    }

    /// (name as stored, inode) pairs of a directory.
    fn dir_entries(&self, d: &Inode) -> Result<Vec<(Vec<u8>, u64)>> {
        let sb = self.superblock();
        let ft = sb.ftype as usize;
        let mut out = Vec::new();
        if d.format == 1 {
            // Short form: count, i8count, parent, then entries.
            let f = &d.fork;
            let (count, i8) = (
                f.first().copied().unwrap_or(0) as usize,
                f.get(1).copied().unwrap_or(0),
            );
            let inum = if i8 > 0 { 8 } else { 4 };
            let mut o = 2 + inum;
            for _ in 0..count {
                let Some(&len) = f.get(o) else { break };
                let len = len as usize;
                let name_at = o + 3;
                let ino_at = name_at + len + ft;
                if ino_at + inum > f.len() {
                    return Err(self.slice().corrupt(
                        d.at,
                        format!(
                            "XFS inode {}: short-form directory entry runs past the fork",
                            d.ino
                        ),
                    ));
                }
                let ino = if inum == 8 {
                    be64(f, ino_at)
                } else {
                    be32(f, ino_at)
                };
                out.push((f[name_at..name_at + len].to_vec(), ino));
                o = ino_at + inum;
            }
            return Ok(out);
        }
        let bs = sb.block_size;
        let dirblk = bs << sb.dirblklog;
        let (block_magic, data_magic, hdr): (&[u8], &[u8], usize) = if sb.v5 {
            (b"XDB3", b"XDD3", 64)
        } else {
            (b"XD2B", b"XD2D", 16)
        };
        let mut total = 0u64;
        for e in self.fork_extents(d)? {
            if e.offset * bs >= DIR_LEAF_OFFSET || e.unwritten {
                continue;
            }
            let bytes = e.count * bs;
            total += bytes;
            if total > MAX_DIR_BYTES {
                return Err(self.slice().corrupt(
                    d.at,
                    format!(
                        "XFS directory inode {} is larger than {MAX_DIR_BYTES} bytes",
                        d.ino
                    ),
                ));
            }
            let data = self.slice().read_vec(self.fsblock_byte(e.fsblock), bytes)?;
            for blk in data.chunks(dirblk as usize) {
                if blk.len() < hdr + 16 {
                    continue; // a short tail: no room for a header and an entry
                }
                let is_block = blk.starts_with(block_magic);
                if !is_block && !blk.starts_with(data_magic) {
                    continue;
                }
                let mut end = blk.len();
                if is_block {
                    let count = be32(blk, blk.len() - 8) as usize;
                    end = blk.len().saturating_sub(8 + count * 8);
                }
                let mut o = hdr;
                // An entry is at least 16 bytes (inode, name length, one character, tag).
                while o + 16 <= end {
                    if be16(blk, o) == 0xFFFF {
                        let len = be16(blk, o + 2) as usize;
                        if len < 8 {
                            break;
                        }
                        o += len;
                        continue;
                    }
                    let ino = be64(blk, o);
                    let len = blk[o + 8] as usize;
                    let size = (8 + 1 + len + ft + 2).div_ceil(8) * 8;
                    if o + 9 + len > end {
                        break;
                    }
                    out.push((blk[o + 9..o + 9 + len].to_vec(), ino));
                    o += size;
                }
            }
        }
        out.retain(|(n, _)| n != b"." && n != b"..");
        Ok(out)
    }

    /// A symlink's target: in the inode (local), or in blocks (remote), each of which
    /// starts with a header on v5.
    fn symlink_target(&self, i: &Inode) -> Result<Vec<u8>> {
        let size = i.size.min(SYMLINK_MAXLEN);
        let sb = self.superblock();
        if i.format == 1 || !sb.v5 {
            let mut v = Vec::new();
            self.stream(i, size, &mut v)?;
            return Ok(v);
        }
        let mut out = Vec::new();
        let mut blocks = 0;
        for e in self.fork_extents(i)? {
            for k in 0..e.count {
                if out.len() as u64 >= size || blocks == SYMLINK_MAX_BLOCKS {
                    return Ok(out);
                }
                blocks += 1;
                let at = self.fsblock_byte(e.fsblock + k);
                let blk = self.slice().read_vec(at, sb.block_size)?;
                if !blk.starts_with(b"XSLM") || blk.len() < SYMLINK_HDR {
                    return Err(self.slice().corrupt(
                        at,
                        format!(
                            "XFS inode {}: remote symlink block without its XSLM header",
                            i.ino
                        ),
                    ));
                }
                let take = (be32(&blk, 8) as usize)
                    .min(blk.len() - SYMLINK_HDR)
                    .min((size - out.len() as u64) as usize);
                out.extend_from_slice(&blk[SYMLINK_HDR..SYMLINK_HDR + take]);
            }
        }
        Ok(out)
    }

    fn entry(&self, name: &[u8], ino: u64) -> Result<Entry> {
        let (name, raw_name) = decode_name(name);
        let i = self.inode(ino)?;
        let kind = i.kind();
        let target = if kind == FileType::Symlink {
            Some(String::from_utf8_lossy(&self.symlink_target(&i)?).into_owned())
        } else {
            None
        };
        Ok(Entry {
            name,
            kind,
            size: if kind == FileType::Dir { 0 } else { i.size },
            inode: ino,
            mtime: Some(i.mtime),
            raw_name,
            target,
            handle: XfsHandle(ino),
            ..Default::default()
        })
    }
}

/// Inode flag (v3 `di_flags2`): timestamps are 64-bit nanoseconds since 1901-12-13.
const DIFLAG2_BIGTIME: u64 = 0x8;

fn mtime(raw: &[u8], version: u8) -> i64 {
    if version >= 3 && be64(raw, 0x78) & DIFLAG2_BIGTIME != 0 {
        (be64(raw, 0x28) / 1_000_000_000) as i64 - (1i64 << 31)
    } else {
        be32(raw, 0x28) as i32 as i64
    }
}

fn parse_rec(r: &[u8]) -> Extent {
    let l0 = u64::from_be_bytes(r[0..8].try_into().unwrap());
    let l1 = u64::from_be_bytes(r[8..16].try_into().unwrap());
    Extent {
        unwritten: l0 >> 63 == 1,
        offset: (l0 & 0x7FFF_FFFF_FFFF_FFFF) >> 9,
        fsblock: ((l0 & 0x1FF) << 43) | (l1 >> 21),
        count: l1 & 0x1F_FFFF,
    }
}

impl FileView for Xfs<'_> {
    type Handle = XfsHandle;

    fn root(&self) -> Result<Entry> {
        self.entry(b"", self.superblock().rootino)
    }

    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let XfsHandle(ino) = dir.handle;
        let d = self.inode(ino)?;
        self.dir_entries(&d)?
            .into_iter()
            .map(|(n, i)| self.entry(&n, i))
            .collect()
    }

    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        let XfsHandle(ino) = file.handle;
        let i = self.inode(ino)?;
        self.stream(&i, i.size, out)
    }

    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        let XfsHandle(ino) = entry.handle;
        let i = self.inode(ino)?;
        let bs = self.superblock().block_size;
        Ok(self
            .fork_extents(&i)?
            .iter()
            .map(|e| ByteRange::new(self.fsblock_byte(e.fsblock), e.count * bs))
            .collect())
    }

    fn deleted(&self) -> Result<Vec<(String, Entry)>> {
        Ok(Vec::new())
    }

    fn label(&self) -> String {
        format!("{} (xfs)", self.slice().label().display())
    }
}
