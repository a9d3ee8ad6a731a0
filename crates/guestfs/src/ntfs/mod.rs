//! NTFS: the used map from `$Bitmap` (MFT record 6), through the `ntfs` crate; the backup
//! boot sector (the partition's last sector, outside `$Bitmap`) counted as used; `$Boot`
//! and `$MFT` as metadata; `pagefile.sys`, `swapfile.sys` and `hiberfil.sys` in the root
//! directory excluded (unless `hiberfil.sys` holds a resume image).
//!
//! Every read the crate makes goes through `Reader`, which knows `$MFT`'s runs: a record
//! that straddles two of them is read across them (`mft.rs` says why).
//!
//! Sources: the `ntfs` crate 0.4 (Colin Finck: boot sector, file records, attributes, data
//! runs, indexes); `docs/formats.md` §3.3 (backup boot sector; exclusions; dirty volumes).

mod files;
mod lznt1;
mod mft;

pub use files::NtfsHandle;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, RangeSet, Result, Warning};
use mft::{Mft, Scan};
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::structured_values::NtfsVolumeFlags;
use ntfs::{KnownNtfsFileRecordNumber, Ntfs as NtfsVolume, NtfsFile};
use std::io::{Read, Seek, SeekFrom};
use std::sync::OnceLock;

/// Root-directory files whose clusters hold nothing worth keeping once the guest is off.
const EXCLUDED_FILES: [&str; 3] = ["pagefile.sys", "swapfile.sys", "hiberfil.sys"];
/// `$Boot` spans the first 8 KiB of the volume.
const BOOT_BYTES: u64 = 8192;

/// `Read + Seek` over a volume slice, for the `ntfs` crate. With `$MFT`'s layout, a read
/// of a whole file record that straddles two `$MFT` runs is served through the runs (the
/// crate would read it contiguously: see [`mft`]).
pub(crate) struct Reader<'s, 'a> {
    slice: &'s Slice<'a>,
    pos: u64,
    mft: Option<&'s Mft>,
}

impl<'s, 'a> Reader<'s, 'a> {
    /// A reader at the start of `slice`, without `$MFT`'s layout.
    fn plain(slice: &'s Slice<'a>) -> Self {
        Reader {
            slice,
            pos: 0,
            mft: None,
        }
    }
}

impl Read for Reader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let io = |e: diskray_core::Error| std::io::Error::other(e.to_string());
        if let Some(m) = self.mft {
            if let Some(off) = m.straddling_record_at(self.pos, buf.len()) {
                m.read(self.slice, off, buf).map_err(io)?;
                self.pos += buf.len() as u64;
                return Ok(buf.len());
            }
        }
        let n = (self.slice.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.slice.read_at(&mut buf[..n], self.pos).map_err(io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Reader<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.slice.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the volume start",
            )
        })?;
        Ok(self.pos)
    }
}

/// An opened NTFS volume.
pub struct Ntfs<'a> {
    slice: Slice<'a>,
    volume: NtfsVolume,
    label: Option<String>,
    /// `$MFT`'s layout, or why it could not be read (offset, reason).
    mft: std::result::Result<Mft, (u64, mft::MftError)>,
    /// Every record's state and names' parents, read once when first needed.
    scan: OnceLock<Scan>,
}

impl<'a> Ntfs<'a> {
    /// Opens the NTFS volume at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Ntfs<'a>> {
        let mut r = Reader::plain(&slice);
        let volume = NtfsVolume::new(&mut r)
            .map_err(|e| slice.corrupt(0, format!("NTFS boot sector: {e}")))?;
        if volume.size() > slice.len() {
            return Err(slice.corrupt(
                0x28,
                format!(
                    "NTFS says {} bytes, the volume has {}",
                    volume.size(),
                    slice.len()
                ),
            ));
        }
        let mft = Mft::load(&volume, slice.len(), &mut r)
            .map_err(|why| (volume.mft_position().value().map_or(0, |p| p.get()), why));
        let label = {
            let mut r = Reader {
                slice: &slice,
                pos: 0,
                mft: mft.as_ref().ok(),
            };
            volume
                .volume_name(&mut r)
                .and_then(|n| n.ok())
                .map(|n| n.name().to_string_lossy())
                .filter(|n| !n.is_empty())
        };
        Ok(Ntfs {
            slice,
            volume,
            label,
            mft,
            scan: OnceLock::new(),
        })
    }

    /// A reader over the volume that knows `$MFT`'s layout.
    pub(crate) fn reader<'s>(&'s self, slice: &'s Slice<'a>) -> Reader<'s, 'a> {
        Reader {
            slice,
            pos: 0,
            mft: self.mft.as_ref().ok(),
        }
    }

    /// `$MFT`'s layout.
    pub(crate) fn mft(&self) -> Result<&Mft> {
        self.mft
            .as_ref()
            .map_err(|(at, why)| self.slice.corrupt(*at, why.to_string()))
    }

    /// The state of every record and the parents their names give (scanned once).
    pub(crate) fn scan(&self) -> Result<&Scan> {
        let mft = self.mft()?;
        Ok(self.scan.get_or_init(|| mft.scan(&self.slice)))
    }

    pub(crate) fn slice(&self) -> Slice<'a> {
        self.slice.clone()
    }

    pub(crate) fn volume(&self) -> &NtfsVolume {
        &self.volume
    }

    pub(crate) fn label_text(&self) -> String {
        format!("{} (ntfs)", self.slice.label().display())
    }

    fn err(&self, what: &str, e: ntfs::NtfsError) -> diskray_core::Error {
        self.slice.corrupt(0, format!("NTFS {what}: {e}"))
    }

    /// Byte ranges of the non-sparse data runs of `file`'s unnamed `$DATA`.
    fn data_runs(&self, r: &mut Reader, file: &NtfsFile) -> Result<Vec<ByteRange>> {
        let Some(item) = file.data(r, "") else {
            return Ok(Vec::new());
        };
        let item = item.map_err(|e| self.err("$DATA", e))?;
        let attr = item.to_attribute().map_err(|e| self.err("$DATA", e))?;
        let value = attr.value(r).map_err(|e| self.err("$DATA value", e))?;
        let mut out = Vec::new();
        if let NtfsAttributeValue::NonResident(v) = value {
            for run in v.data_runs() {
                let run = run.map_err(|e| self.err("data run", e))?;
                if let Some(pos) = run.data_position().value() {
                    out.push(ByteRange::new(pos.get(), run.allocated_size()));
                }
            }
        }
        Ok(out)
    }
}

impl Filesystem for Ntfs<'_> {
    fn content(&self) -> Content {
        Content::Ntfs
    }

    fn block_size(&self) -> u64 {
        self.volume.cluster_size() as u64
    }

    fn size(&self) -> u64 {
        // The backup boot sector follows the last sector NTFS counts.
        (self.volume.size() + self.volume.sector_size() as u64).min(self.slice.len())
    }

    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    fn allocation(&self) -> Result<Allocation> {
        let mut r = self.reader(&self.slice);
        let mut a = Allocation::default();
        let cs = self.volume.cluster_size() as u64;
        let clusters = self.volume.size() / cs;
        let bitmap_file = self
            .volume
            .file(&mut r, KnownNtfsFileRecordNumber::Bitmap as u64)
            .map_err(|e| self.err("$Bitmap record", e))?;
        let item = bitmap_file
            .data(&mut r, "")
            .ok_or_else(|| self.slice.corrupt(0, "NTFS $Bitmap has no $DATA"))?
            .map_err(|e| self.err("$Bitmap", e))?;
        let attr = item.to_attribute().map_err(|e| self.err("$Bitmap", e))?;
        let len = attr.value_length();
        let needed = clusters.div_ceil(8);
        if len < needed || len > needed + 65536 {
            return Err(self.slice.corrupt(
                0,
                format!("NTFS $Bitmap is {len} bytes for {clusters} clusters ({needed} expected)"),
            ));
        }
        let mut bitmap = vec![0u8; needed as usize];
        let value = attr
            .value(&mut r)
            .map_err(|e| self.err("$Bitmap value", e))?;
        value
            .attach(&mut r)
            .read_exact(&mut bitmap)
            .map_err(|e| self.slice.corrupt(0, format!("NTFS $Bitmap read: {e}")))?;
        for (first, len) in crate::bitmap::set_runs(&bitmap, clusters) {
            a.used.insert(ByteRange::new(first * cs, len * cs));
        }
        // Everything after the last whole cluster: sectors no cluster covers, and the backup
        // boot sector (outside $Bitmap; ntfsclone copies it, partclone once did not).
        let tail = ByteRange::from_bounds(clusters * cs, self.size());
        a.metadata
            .insert(ByteRange::new(0, BOOT_BYTES.min(self.size())));
        a.metadata.insert(tail);
        let mft = self
            .volume
            .file(&mut r, KnownNtfsFileRecordNumber::MFT as u64)
            .map_err(|e| self.err("$MFT record", e))?;
        for range in self.data_runs(&mut r, &mft)? {
            a.metadata.insert(range);
        }
        a.used = a.used.union(&a.metadata);
        if let Ok(info) = self.volume.volume_info(&mut r) {
            if info.flags().contains(NtfsVolumeFlags::IS_DIRTY) {
                a.warnings.push(Warning::new("the volume is marked dirty ($LogFile may hold unapplied changes); the map is from $Bitmap as it is on disk"));
            }
        }
        self.exclusions(&mut r, &mut a)?;
        a.used = a
            .used
            .intersection(&RangeSet::from_iter([ByteRange::new(0, self.size())]));
        Ok(a)
    }
}

impl Ntfs<'_> {
    /// Excludes the clusters of the page, swap and hibernation files of the root directory.
    fn exclusions(&self, r: &mut Reader, a: &mut Allocation) -> Result<()> {
        let root = self
            .volume
            .root_directory(r)
            .map_err(|e| self.err("root directory", e))?;
        let index = root
            .directory_index(r)
            .map_err(|e| self.err("root index", e))?;
        let mut entries = index.entries();
        let mut found = Vec::new();
        while let Some(entry) = entries.next(r) {
            let entry = entry.map_err(|e| self.err("root index entry", e))?;
            let Some(Ok(key)) = entry.key() else { continue };
            let name = key.name().to_string_lossy().to_ascii_lowercase();
            if EXCLUDED_FILES.contains(&name.as_str()) && !found.iter().any(|(n, _)| *n == name) {
                found.push((name, entry.file_reference()));
            }
        }
        for (name, reference) in found {
            let file = reference
                .to_file(&self.volume, r)
                .map_err(|e| self.err(&name, e))?;
            let runs = self.data_runs(r, &file)?;
            if name == "hiberfil.sys" {
                if let Some(first) = runs.first() {
                    let mut magic = [0u8; 4];
                    self.slice.read_at(&mut magic, first.start)?;
                    if magic.eq_ignore_ascii_case(b"hibr") {
                        a.warnings.push(Warning::new("hiberfil.sys holds a resume image (the guest is hibernated or used Fast Startup): kept"));
                        continue;
                    }
                }
            }
            for range in runs {
                a.excluded.insert(range);
            }
        }
        a.used = a.used.difference(&a.excluded);
        Ok(())
    }
}
