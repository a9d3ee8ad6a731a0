//! In-memory replay of an ext3/4 journal (jbd2) that needs recovery, as the kernel's
//! `jbd2_journal_recover` and e2fsck's replay do it, without writing anything: every
//! filesystem block a committed transaction logged gets its newest committed copy, unless a
//! revoke record of a committed transaction at least as new cancels it; an uncommitted tail
//! is not replayed. The result is a [`JournalOverlay`]: reads of the volume see the
//! journal's copies in place of the blocks they replace, as after recovery.
//!
//! Sources: Linux `include/linux/jbd2.h` (`journal_superblock_t`, `journal_header_t`,
//! block tags v2/v3, `jbd2_journal_revoke_header_t`, feature bits), `fs/jbd2/recovery.c`
//! (`do_one_pass`: sequence, wrap-around, escaped blocks, `scan_revoke_records`),
//! `fs/jbd2/revoke.c` (`jbd2_journal_test_revoke`); `docs/formats.md` §3.1 ("Dirty
//! journal"). Not done: block and commit checksums (csum v2/v3) are not verified.

use super::inode::Run;
use crate::slice::{Overlay, Slice};
use diskray_core::{Fields, Result};
use std::collections::{BTreeMap, HashMap};

/// jbd2 magic (big-endian).
const MAGIC: u32 = 0xC03B_3998;
/// Bytes of a revoke block's header: `journal_header_t` and `r_count`.
const REVOKE_HEADER: usize = 16;
/// Most journal blocks walked in one replay: a full journal is walked once at most.
const MAX_WALK: u64 = 1 << 24;

/// `h_blocktype` values (jbd2.h `JBD2_*_BLOCK`).
mod block_type {
    /// A descriptor block: tags naming the filesystem blocks logged after it.
    pub const DESCRIPTOR: u32 = 1;
    /// A commit block: the transaction is complete.
    pub const COMMIT: u32 = 2;
    /// A version 1 journal superblock.
    pub const SUPERBLOCK_V1: u32 = 3;
    /// A version 2 journal superblock (with feature fields).
    pub const SUPERBLOCK_V2: u32 = 4;
    /// A revoke block: blocks earlier transactions logged that replay must skip.
    pub const REVOKE: u32 = 5;
}

/// `s_feature_incompat` bits (jbd2.h `JBD2_FEATURE_INCOMPAT_*`).
mod feature {
    /// `REVOKE`: revoke blocks may be present.
    pub const REVOKE: u32 = 0x1;
    /// `64BIT`: block numbers have 64 bits.
    pub const BIT64: u32 = 0x2;
    /// `ASYNC_COMMIT`: commit blocks may be written before the blocks they commit.
    pub const ASYNC_COMMIT: u32 = 0x4;
    /// `CSUM_V2`: tags carry a 16-bit checksum.
    pub const CSUM_V2: u32 = 0x8;
    /// `CSUM_V3`: tags are `journal_block_tag3_t`, with 32-bit flags and checksum.
    pub const CSUM_V3: u32 = 0x10;
    /// `FAST_COMMIT`: the journal has a fast-commit area (not replayed here).
    pub const FAST_COMMIT: u32 = 0x20;
    /// The features replay knows.
    pub const KNOWN: u32 = REVOKE | BIT64 | ASYNC_COMMIT | CSUM_V2 | CSUM_V3;
}

/// Descriptor tag `t_flags` bits (jbd2.h `JBD2_FLAG_*`).
mod tag_flag {
    /// The logged block's first 4 bytes were the jbd2 magic, zeroed in the journal.
    pub const ESCAPE: u32 = 0x1;
    /// The tag has no UUID after it: it is the previous tag's.
    pub const SAME_UUID: u32 = 0x2;
    /// The last tag of the descriptor block.
    pub const LAST_TAG: u32 = 0x8;
}

/// Byte offsets of `journal_header_t`, which starts every jbd2 metadata block
/// (big-endian, as all of jbd2).
mod header {
    /// `h_magic` (u32).
    pub const MAGIC: usize = 0x0;
    /// `h_blocktype` (u32).
    pub const BLOCKTYPE: usize = 0x4;
    /// `h_sequence` (u32): the transaction.
    pub const SEQUENCE: usize = 0x8;
    /// Bytes of the header: descriptor tags follow it.
    pub const BYTES: usize = 12;
    /// Revoke block: `r_count` (u32), the bytes of the block in use.
    pub const REVOKE_COUNT: usize = 0xC;
}

/// Byte offsets of `journal_superblock_t`'s fields past its header.
mod sb_off {
    /// `s_blocksize` (u32).
    pub const BLOCKSIZE: usize = 0xC;
    /// `s_maxlen` (u32): blocks in the journal.
    pub const MAXLEN: usize = 0x10;
    /// `s_first` (u32): first block of log information.
    pub const FIRST: usize = 0x14;
    /// `s_sequence` (u32): first commit ID expected in the log.
    pub const SEQUENCE: usize = 0x18;
    /// `s_start` (u32): block number of the start of the log (0: nothing to replay).
    pub const START: usize = 0x1C;
    /// `s_feature_incompat` (u32, v2 superblocks only).
    pub const FEATURE_INCOMPAT: usize = 0x28;
}

/// Byte offsets in a descriptor block tag: `journal_block_tag3_t` (csum v3) or
/// `journal_block_tag_t`.
mod tag {
    /// `t_blocknr` (u32), both forms.
    pub const BLOCKNR: usize = 0;
    /// v3: `t_flags` (u32).
    pub const V3_FLAGS: usize = 4;
    /// v2 and older: `t_flags` (u16), after the 16-bit `t_checksum`.
    pub const FLAGS: usize = 6;
    /// `t_blocknr_high` (u32), with the 64BIT feature (always present in v3).
    pub const BLOCKNR_HIGH: usize = 8;
    /// Bytes of a v3 tag.
    pub const V3_BYTES: usize = 16;
    /// Bytes of the UUID that follows a tag without `tag_flag::SAME_UUID`.
    pub const UUID_BYTES: usize = 16;
}

/// The jbd2 superblock fields replay needs (`journal_superblock_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSuperblock {
    /// `s_blocksize`.
    pub block_size: u64,
    /// `s_maxlen`: blocks in the journal.
    pub max_len: u64,
    /// `s_first`: first block of log information.
    pub first: u64,
    /// `s_sequence`: first transaction expected in the log.
    pub sequence: u32,
    /// `s_start`: first block of the log (0: the journal is empty).
    pub start: u64,
    /// `s_feature_incompat` (0 for a v1 superblock).
    pub incompat: u32,
}

impl JournalSuperblock {
    /// Parses the superblock in `f` (the journal's block 0); `None` without the jbd2
    /// magic and a superblock block type.
    pub fn parse(f: &Fields) -> Result<Option<JournalSuperblock>> {
        let kind = f.be32(header::BLOCKTYPE)?;
        if f.be32(header::MAGIC)? != MAGIC
            || !matches!(kind, block_type::SUPERBLOCK_V1 | block_type::SUPERBLOCK_V2)
        {
            return Ok(None);
        }
        Ok(Some(JournalSuperblock {
            block_size: f.be32(sb_off::BLOCKSIZE)? as u64,
            max_len: f.be32(sb_off::MAXLEN)? as u64,
            first: f.be32(sb_off::FIRST)? as u64,
            sequence: f.be32(sb_off::SEQUENCE)?,
            start: f.be32(sb_off::START)? as u64,
            incompat: if kind == block_type::SUPERBLOCK_V2 {
                f.be32(sb_off::FEATURE_INCOMPAT)?
            } else {
                0
            },
        }))
    }
}

/// The newest committed copy of a filesystem block in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedCopy {
    /// Volume byte offset of the copy.
    pub at: u64,
    /// The copy was escaped: its first four bytes were the jbd2 magic, stored as zeros.
    pub escaped: bool,
}

/// The newest committed copy of a block and the transaction that logged it.
#[derive(Debug, Clone, Copy)]
struct Committed {
    copy: LoggedCopy,
    tid: u32,
}

/// A block logged by the transaction being read, kept when its commit is found.
#[derive(Debug, Clone, Copy)]
struct Pending {
    fs_block: u64,
    copy: LoggedCopy,
}

/// Most revoke records kept (a real journal revokes far fewer blocks; bounds memory on a
/// hostile journal made of revoke blocks).
const MAX_REVOKES: usize = 1 << 22;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// For each filesystem block to replay, its newest committed copy in the journal.
    pub copies: BTreeMap<u64, LoggedCopy>,
    /// Complete transactions replayed.
    pub transactions: u64,
}

/// `a` is the same transaction as `b` or a later one (jbd2's `tid_geq`: sequence numbers
/// wrap around).
fn tid_geq(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

/// Replays the journal whose blocks are `runs` (logical journal block → physical block;
/// the journal file spans `mapped` blocks, all of them mapped).
pub fn replay(slice: &Slice, block_size: u64, runs: &[Run], mapped: u64) -> Result<Replay> {
    let map = |logical: u64| -> Option<u64> {
        let i = runs.partition_point(|r| r.logical + r.len <= logical);
        runs.get(i)
            .filter(|r| r.logical <= logical)
            .map(|r| r.physical + (logical - r.logical))
    };
    let at = |logical: u64| -> Result<u64> {
        map(logical).map(|p| p * block_size).ok_or_else(|| {
            slice.corrupt(
                0,
                format!("journal block {logical} is not mapped by the journal inode"),
            )
        })
    };
    let read = |logical: u64| -> Result<Vec<u8>> { slice.read_vec(at(logical)?, block_size) };
    let sb_at = map(0).unwrap_or(0) * block_size;
    let bad = |why: String| slice.corrupt(sb_at, format!("jbd2 superblock: {why}"));
    let sb_block = read(0)?;
    let Some(sb) = JournalSuperblock::parse(&slice.fields(&sb_block, "jbd2 superblock", sb_at))?
    else {
        return Err(bad("bad magic or block type".into()));
    };
    let (maxlen, first, start, incompat) = (sb.max_len, sb.first, sb.start, sb.incompat);
    let mut seq = sb.sequence;
    if sb.block_size != block_size || first == 0 || first >= maxlen {
        return Err(bad(format!(
            "block size {}, first {first}, length {maxlen}",
            sb.block_size
        )));
    }
    if maxlen > mapped {
        return Err(bad(format!(
            "{maxlen} blocks long, but the journal file holds {mapped} (journal too short)"
        )));
    }
    if incompat & !feature::KNOWN != 0 || incompat & feature::FAST_COMMIT != 0 {
        return Err(bad(format!("unsupported journal features {incompat:#x}")));
    }
    let mut out = Replay::default();
    if start == 0 {
        return Ok(out); // nothing to replay
    }
    if start < first || start >= maxlen {
        return Err(bad(format!(
            "log starts at block {start}, outside {first}..{maxlen}"
        )));
    }
    let tag_bytes: usize = if incompat & feature::CSUM_V3 != 0 {
        tag::V3_BYTES
    } else {
        let base = if incompat & feature::BIT64 != 0 {
            12
        } else {
            8
        };
        base + if incompat & feature::CSUM_V2 != 0 {
            2
        } else {
            0
        }
    };
    let record_bytes = if incompat & feature::BIT64 != 0 { 8 } else { 4 };
    let tail = if incompat & (feature::CSUM_V2 | feature::CSUM_V3) != 0 {
        4
    } else {
        0
    };
    let wrap = |b: u64| if b >= maxlen { first + (b - maxlen) } else { b };
    let mut next = start;
    // Copies and revocations of the transaction being read, kept when its commit is found.
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_revokes: Vec<u64> = Vec::new();
    // Newest committed copy of each block (volume offset, escaped, transaction), and the
    // newest committed transaction that revoked each block.
    let mut copies: HashMap<u64, Committed> = HashMap::new();
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    let mut revokes = 0usize;
    let mut walked = 0u64;
    loop {
        walked += 1;
        if walked > MAX_WALK.min(maxlen + 1) {
            break;
        }
        let block_at = at(next)?;
        let block = read(next)?;
        let b = slice.fields(&block, "jbd2 block", block_at);
        if b.be32(header::MAGIC)? != MAGIC || b.be32(header::SEQUENCE)? != seq {
            break; // end of the log
        }
        next = wrap(next + 1);
        match b.be32(header::BLOCKTYPE)? {
            block_type::DESCRIPTOR => {
                let mut o = header::BYTES;
                let end = block.len() - tail;
                while o + tag_bytes <= end {
                    let t = b.sub(o, tag_bytes, "jbd2 block tag")?;
                    let lo = t.be32(tag::BLOCKNR)? as u64;
                    let flags = if tag_bytes == tag::V3_BYTES {
                        t.be32(tag::V3_FLAGS)?
                    } else {
                        t.be16(tag::FLAGS)? as u32
                    };
                    let hi = if tag_bytes >= tag::BLOCKNR_HIGH + 4 {
                        t.be32(tag::BLOCKNR_HIGH)? as u64
                    } else {
                        0
                    };
                    let fs_block = lo
                        | if incompat & feature::BIT64 != 0 {
                            hi << 32
                        } else {
                            0
                        };
                    pending.push(Pending {
                        fs_block,
                        copy: LoggedCopy {
                            at: at(next)?,
                            escaped: flags & tag_flag::ESCAPE != 0,
                        },
                    });
                    next = wrap(next + 1);
                    o += tag_bytes
                        + if flags & tag_flag::SAME_UUID == 0 {
                            tag::UUID_BYTES
                        } else {
                            0
                        };
                    if flags & tag_flag::LAST_TAG != 0 {
                        break;
                    }
                }
            }
            block_type::COMMIT => {
                for p in pending.drain(..) {
                    copies.insert(
                        p.fs_block,
                        Committed {
                            copy: p.copy,
                            tid: seq,
                        },
                    );
                }
                for b in pending_revokes.drain(..) {
                    let newest = revoked.entry(b).or_insert(seq);
                    if tid_geq(seq, *newest) {
                        *newest = seq;
                    }
                }
                out.transactions += 1;
                seq = seq.wrapping_add(1);
            }
            block_type::REVOKE => {
                // r_count: the bytes of the block in use, header included.
                let used = (b.be32(header::REVOKE_COUNT)? as usize).min(block.len() - tail);
                let mut o = REVOKE_HEADER;
                while o + record_bytes <= used {
                    revokes += 1;
                    if revokes > MAX_REVOKES {
                        return Err(slice.corrupt(
                            at(next)?,
                            format!("jbd2: more than {MAX_REVOKES} revoke records"),
                        ));
                    }
                    pending_revokes.push(if record_bytes == 8 {
                        b.be64(o)?
                    } else {
                        b.be32(o)? as u64
                    });
                    o += record_bytes;
                }
            }
            _ => break,
        }
    }
    // A copy is replayed unless a revocation at least as new as its transaction cancels it
    // (and then every older copy of the block is cancelled too).
    // Blocks past the volume cannot be read back: they are left out.
    out.copies = copies
        .into_iter()
        .filter(|(b, c)| !revoked.get(b).is_some_and(|&r| tid_geq(r, c.tid)))
        .filter(|(b, _)| b.checked_mul(block_size).is_some_and(|o| o < slice.len()))
        .map(|(b, c)| (b, c.copy))
        .collect();
    Ok(out)
}

/// The journal's committed copies laid over the volume: what the filesystem holds after
/// recovery.
pub struct JournalOverlay<'a> {
    /// The volume as the disk holds it (the journal is read from here).
    journal: Slice<'a>,
    block_size: u64,
    copies: BTreeMap<u64, LoggedCopy>,
}

impl<'a> JournalOverlay<'a> {
    /// The overlay of `replay`'s copies, read from `journal` (the volume without overlay).
    pub fn new(journal: Slice<'a>, block_size: u64, replay: Replay) -> Self {
        JournalOverlay {
            journal,
            block_size,
            copies: replay.copies,
        }
    }

    /// Number of filesystem blocks the journal replaces.
    pub fn blocks(&self) -> usize {
        self.copies.len()
    }
}

impl Overlay for JournalOverlay<'_> {
    fn patch(&self, buf: &mut [u8], off: u64) -> Result<()> {
        let bs = self.block_size;
        let Some(end) = off.checked_add(buf.len() as u64).filter(|&e| e > off) else {
            return Ok(());
        };
        let magic = MAGIC.to_be_bytes();
        for (&block, &LoggedCopy { at, escaped }) in self.copies.range(off / bs..=(end - 1) / bs) {
            let b0 = block * bs;
            let (from, to) = (b0.max(off), (b0 + bs).min(end));
            let dst = &mut buf[(from - off) as usize..(to - off) as usize];
            self.journal.read_at(dst, at + (from - b0))?;
            if escaped {
                for i in from..to.min(b0 + 4) {
                    dst[(i - from) as usize] = magic[(i - b0) as usize];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diskray_core::{MemDisk, VirtualDisk};
    use std::path::Path;

    const BS: u64 = 1024;
    /// The journal: 64 blocks from physical block 100.
    const JSTART: u64 = 100;
    const JLEN: u64 = 64;

    fn runs() -> Vec<Run> {
        vec![Run {
            logical: 0,
            physical: JSTART,
            len: JLEN,
            zeroed: false,
        }]
    }

    struct Journal {
        d: Vec<u8>,
        next: u64,
        seq: u32,
    }

    impl Journal {
        /// A v2 journal (64-bit tags, no checksums) whose log starts at block 1, sequence 7.
        fn new() -> Self {
            let mut j = Journal {
                d: vec![0u8; 256 * BS as usize],
                next: 1,
                seq: 7,
            };
            let sb = j.block(0);
            for (o, v) in [
                (0, MAGIC),
                (4, block_type::SUPERBLOCK_V2),
                (0xC, BS as u32),
                (0x10, JLEN as u32),
                (0x14, 1),
                (0x18, 7),
                (0x1C, 1),
                (0x28, feature::BIT64),
            ] {
                sb[o..o + 4].copy_from_slice(&u32::to_be_bytes(v));
            }
            j
        }
        fn block(&mut self, logical: u64) -> &mut [u8] {
            let at = ((JSTART + logical) * BS) as usize;
            &mut self.d[at..at + BS as usize]
        }
        fn header(&mut self, kind: u32) -> u64 {
            let (l, seq) = (self.next, self.seq);
            self.next += 1;
            let b = self.block(l);
            b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
            b[4..8].copy_from_slice(&kind.to_be_bytes());
            b[8..12].copy_from_slice(&seq.to_be_bytes());
            l
        }
        /// Logs `blocks` (filesystem block, fill byte, escaped) in one descriptor.
        fn log(&mut self, blocks: &[(u64, u8, bool)]) {
            let desc = self.header(block_type::DESCRIPTOR);
            for (i, &(fs_block, fill, escaped)) in blocks.iter().enumerate() {
                let data = self.next;
                self.next += 1;
                self.block(data).fill(fill);
                let o = 12 + i * 12 + if i > 0 { 16 } else { 0 };
                let last = i + 1 == blocks.len();
                let flags = (if escaped { tag_flag::ESCAPE } else { 0 })
                    | (if i > 0 { tag_flag::SAME_UUID } else { 0 })
                    | (if last { tag_flag::LAST_TAG } else { 0 });
                let b = self.block(desc);
                b[o..o + 4].copy_from_slice(&(fs_block as u32).to_be_bytes());
                b[o + 6..o + 8].copy_from_slice(&(flags as u16).to_be_bytes());
                b[o + 8..o + 12].copy_from_slice(&((fs_block >> 32) as u32).to_be_bytes());
            }
        }
        fn revoke(&mut self, blocks: &[u64]) {
            let l = self.header(block_type::REVOKE);
            let b = self.block(l);
            b[12..16].copy_from_slice(&((16 + 8 * blocks.len()) as u32).to_be_bytes());
            for (i, &x) in blocks.iter().enumerate() {
                b[16 + 8 * i..24 + 8 * i].copy_from_slice(&x.to_be_bytes());
            }
        }
        fn commit(&mut self) {
            self.header(block_type::COMMIT);
            self.seq += 1;
        }
        fn replay(&self) -> Result<Replay> {
            let disk = MemDisk::new(self.d.clone());
            let slice = Slice::new(&disk, Path::new("j.img"), 0, disk.capacity());
            replay(&slice, BS, &runs(), JLEN)
        }
        /// Volume bytes `[off, off + len)` as the overlay of the replay shows them.
        fn view(&self, off: u64, len: usize) -> Vec<u8> {
            let disk = MemDisk::new(self.d.clone());
            let slice = Slice::new(&disk, Path::new("j.img"), 0, disk.capacity());
            let r = replay(&slice, BS, &runs(), JLEN).unwrap();
            let view = slice.with_overlay(std::sync::Arc::new(JournalOverlay::new(
                slice.clone(),
                BS,
                r,
            )));
            view.read_vec(off, len as u64).unwrap()
        }
    }

    #[test]
    fn committed_copies_replay_and_an_uncommitted_tail_does_not() {
        let mut j = Journal::new();
        j.log(&[(10, 0xA1, false), (11, 0xB1, false)]);
        j.commit();
        j.log(&[(10, 0xA2, false)]);
        j.commit();
        j.log(&[(12, 0xC1, false)]); // no commit
        let r = j.replay().unwrap();
        assert_eq!(r.transactions, 2);
        assert_eq!(r.copies.keys().copied().collect::<Vec<_>>(), [10, 11]);
        assert!(j.view(10 * BS, 1024).iter().all(|&b| b == 0xA2));
        assert!(j.view(11 * BS, 1024).iter().all(|&b| b == 0xB1));
        assert!(j.view(12 * BS, 1024).iter().all(|&b| b == 0));
        // A read across block boundaries, not aligned.
        let v = j.view(10 * BS + 1000, 48);
        assert_eq!(&v[..24], &[0xA2; 24]);
        assert_eq!(&v[24..], &[0xB1; 24]);
    }

    #[test]
    fn revocations_cancel_older_and_same_transaction_copies_only() {
        let mut j = Journal::new();
        j.log(&[(20, 1, false), (21, 1, false), (22, 1, false)]);
        j.commit();
        j.revoke(&[20, 21]);
        j.log(&[(21, 2, false)]); // logged by the transaction that revokes it: cancelled
        j.commit();
        j.log(&[(20, 3, false)]); // newer than the revocation: replayed
        j.commit();
        j.revoke(&[22]); // uncommitted: ignored
        let r = j.replay().unwrap();
        assert_eq!(r.transactions, 3);
        assert!(j.view(20 * BS, 1024).iter().all(|&b| b == 3));
        assert!(j.view(21 * BS, 1024).iter().all(|&b| b == 0)); // revoked in its own transaction
        assert!(j.view(22 * BS, 1024).iter().all(|&b| b == 1));
    }

    #[test]
    fn escaped_blocks_get_their_magic_back() {
        let mut j = Journal::new();
        j.log(&[(30, 0x55, true)]);
        j.commit();
        let v = j.view(30 * BS, 1024);
        assert_eq!(&v[..4], &MAGIC.to_be_bytes());
        assert!(v[4..].iter().all(|&b| b == 0x55));
        assert_eq!(j.view(30 * BS + 2, 4), [0x39, 0x98, 0x55, 0x55]);
    }

    #[test]
    fn hostile_journals_are_refused_or_bounded() {
        // Tags naming blocks past the volume (and past 2^64 bytes) are left out.
        let mut j = Journal::new();
        j.log(&[(u64::MAX, 1, false), (1 << 40, 1, false), (40, 9, false)]);
        j.commit();
        let r = j.replay().unwrap();
        assert_eq!(r.copies.keys().copied().collect::<Vec<_>>(), [40]);
        // A revoke block whose r_count claims more than the block holds.
        let mut j = Journal::new();
        let l = j.header(block_type::REVOKE);
        j.block(l)[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        j.commit();
        assert_eq!(j.replay().unwrap().transactions, 1);
        // A journal longer than its file, and a log that starts outside it.
        let mut j = Journal::new();
        j.block(0)[0x10..0x14].copy_from_slice(&(JLEN as u32 + 1).to_be_bytes());
        assert!(j.replay().unwrap_err().to_string().contains("too short"));
        let mut j = Journal::new();
        j.block(0)[0x1C..0x20].copy_from_slice(&(JLEN as u32).to_be_bytes());
        assert!(j.replay().unwrap_err().to_string().contains("outside"));
    }
}
