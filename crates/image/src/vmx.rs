//! A VMware `.vmx` file names a whole machine: wherever diskray takes disks, a `.vmx`
//! stands for its virtual disks, in controller order (`docs/formats.md` §1.12).
//!
//! Only what names the disks is read: `key = "value"` lines (keys are case-insensitive,
//! values may escape a byte as `|XX`), the controllers' `present` flags and each device's
//! `present`, `deviceType` and `fileName`. The order is libvirt's (its `vmx.c` builds a
//! domain's disks this way): SCSI controllers 0–3, units 0–64 but 7 (the controller's
//! own); SATA controllers 0–3, units 0–29; then NVMe controllers 0–3, units 0–14 (which
//! libvirt does not read); then IDE buses 0–1, units 0–1. A controller counts only when
//! `present` is true; a device only when its `present` is true, it has a file, and it is
//! not a CD-ROM or floppy (`deviceType` naming `cdrom`, a `.iso` file). A disk file outside
//! the `.vmx`'s folder (an absolute path, or one through `..`) is refused unless the user
//! allows it (`--allow-outside-paths`), as for the files a VMDK descriptor names: a `.vmx`
//! must not make diskray read files the user did not name.

use diskray_core::{Error, Result};
use diskray_vmdk::paths::is_contained;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest `.vmx` read: real ones are a few KiB; one with every device defined stays far
/// below this.
pub const MAX_VMX_BYTES: u64 = 1 << 20;

/// The buses, in the order their disks are listed, with their controllers and units.
const BUSES: [(&str, u32, u32, Option<u32>); 4] = [
    // (name, controllers, units, reserved unit)
    ("scsi", 4, 65, Some(7)),
    ("sata", 4, 30, None),
    ("nvme", 4, 15, None),
    ("ide", 2, 2, None),
];

/// One virtual disk of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmxDisk {
    /// Where it is attached, as the file spells it: `scsi0:1`, `sata0:0`, `ide0:0`.
    pub slot: String,
    /// Its file: a descriptor or any VMDK, relative paths taken from the `.vmx`'s folder.
    pub path: PathBuf,
}

/// Whether `path` names a `.vmx` file (by its extension).
pub fn is_vmx(path: &Path) -> bool {
    !crate::is_nbd(path)
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("vmx"))
}

/// The disks of the machine the `.vmx` at `path` describes, in controller order; files
/// outside its folder only with `allow_outside`.
pub fn disks(path: &Path, allow_outside: bool) -> Result<Vec<VmxDisk>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    if len > MAX_VMX_BYTES {
        let why =
            format!("{len} bytes: not a .vmx (they are a few KiB; at most {MAX_VMX_BYTES} read)");
        return Err(Error::refused(path, why));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&bytes, path, dir, allow_outside)
}

/// The disks named by the `.vmx` text `bytes` (read from `path`; relative file names are
/// taken from `dir`; names outside it only with `allow_outside`).
pub fn parse(bytes: &[u8], path: &Path, dir: &Path, allow_outside: bool) -> Result<Vec<VmxDisk>> {
    let entries = entries(bytes, path)?;
    let yes = |key: &str| {
        entries
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let mut out = Vec::new();
    for (bus, controllers, units, reserved) in BUSES {
        for c in 0..controllers {
            // IDE has no controller entry: its two buses are always there.
            if bus != "ide" && !yes(&format!("{bus}{c}.present")) {
                continue;
            }
            for u in (0..units).filter(|&u| Some(u) != reserved) {
                let slot = format!("{bus}{c}:{u}");
                let Some(file) = entries.get(&format!("{slot}.filename")) else {
                    continue;
                };
                let kind = entries
                    .get(&format!("{slot}.devicetype"))
                    .map(|t| t.to_ascii_lowercase());
                let removable = kind
                    .as_deref()
                    .is_some_and(|t| t.contains("cdrom") || t.contains("floppy"))
                    || file.to_ascii_lowercase().ends_with(".iso");
                if !yes(&format!("{slot}.present")) || file.is_empty() || removable {
                    continue;
                }
                if !allow_outside && !is_contained(file) {
                    let why = format!(
                        "{slot}: disk file {file:?} lies outside the .vmx's folder; refusing it \
                         (pass --allow-outside-paths to permit)"
                    );
                    return Err(Error::refused(path, why));
                }
                out.push(VmxDisk {
                    slot,
                    path: dir.join(file),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::refused(
            path,
            "names no virtual disk that is present",
        ));
    }
    Ok(out)
}

/// The `key = "value"` entries (keys lower-cased, values unescaped); comments and blank
/// lines skipped. A line that is neither is an error at its byte offset.
fn entries(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::corrupt(
            path,
            e.valid_up_to() as u64,
            "not UTF-8 text (a .vmx is text)",
        )
    })?;
    let mut map = HashMap::new();
    let mut offset = 0u64;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len() as u64;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::corrupt(
                path,
                at,
                format!("expected key = \"value\", found {line:?}"),
            ));
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        map.insert(key.trim().to_ascii_lowercase(), unescape(value));
    }
    Ok(map)
}

/// A value with VMware's `|XX` escapes (a byte in hex) decoded; a `|` not followed by two
/// hex digits stays as it is.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'|', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one disk of the machine the `.vmx` at `path` describes, for commands that read one
/// disk; a machine of several disks is refused with their list.
pub fn single(path: &Path, allow_outside: bool) -> Result<PathBuf> {
    match &disks(path, allow_outside)?[..] {
        [one] => Ok(one.path.clone()),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|d| format!("{} {}", d.slot, d.path.display()))
                .collect();
            let why = format!(
                "names {} disks ({}); give one of them",
                many.len(),
                list.join(", ")
            );
            Err(Error::refused(path, why))
        }
    }
}

/// `paths` with every `.vmx` replaced by its disks, in order.
pub fn expand(paths: &[PathBuf], allow_outside: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if is_vmx(p) {
            out.extend(disks(p, allow_outside)?.into_iter().map(|d| d.path));
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VMware Workstation 17 machine (the lines that matter, as it writes them): two
    /// SCSI disks, one NVMe disk, a SATA CD-ROM, an IDE disk switched off.
    const WORKSTATION: &str = r#".encoding = "UTF-8"
config.version = "8"
virtualHW.version = "21"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsisas1068"
scsi0:0.fileName = "rocky9.vmdk"
scsi0:0.present = "TRUE"
scsi0:1.fileName = "rocky9-data|20disk.vmdk"
scsi0:1.present = "TRUE"
sata0.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/isos/Rocky-9.iso"
sata0:1.present = "TRUE"
nvme0.present = "TRUE"
nvme0:0.fileName = "/vmfs/volumes/ds1/rocky9/rocky9_1.vmdk"
nvme0:0.present = "TRUE"
ide0:0.fileName = "old.vmdk"
ide0:0.present = "FALSE"
displayName = "rocky9"
"#;

    #[test]
    fn disks_come_in_controller_order_without_cdroms_or_absent_ones() {
        let d = parse(
            WORKSTATION.as_bytes(),
            Path::new("rocky9.vmx"),
            Path::new("/vms/r"),
            true,
        )
        .unwrap();
        let got: Vec<(&str, &Path)> = d
            .iter()
            .map(|d| (d.slot.as_str(), d.path.as_path()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("scsi0:0", Path::new("/vms/r/rocky9.vmdk")),
                ("scsi0:1", Path::new("/vms/r/rocky9-data disk.vmdk")),
                (
                    "nvme0:0",
                    Path::new("/vmfs/volumes/ds1/rocky9/rocky9_1.vmdk")
                ),
            ]
        );
    }

    #[test]
    fn keys_are_case_insensitive_and_an_absent_controller_hides_its_disks() {
        let text =
            "SCSI1.Present = \"true\"\nscsi1:3.FILENAME = \"b.vmdk\"\nscsi1:3.present = \"TRUE\"\n\
                    scsi2:0.fileName = \"c.vmdk\"\nscsi2:0.present = \"TRUE\"\n";
        let d = parse(text.as_bytes(), Path::new("m.vmx"), Path::new(""), false).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].slot, "scsi1:3");
    }

    #[test]
    fn hostile_files_are_refused_with_where() {
        let e = parse(
            b"scsi0.present = \"TRUE\"\njunk line\n",
            Path::new("x.vmx"),
            Path::new(""),
            false,
        );
        assert!(matches!(e, Err(Error::Corrupt { offset: 23, .. })), "{e:?}");
        let e = parse(b"\xff\xfe", Path::new("x.vmx"), Path::new(""), false);
        assert!(matches!(e, Err(Error::Corrupt { offset: 0, .. })), "{e:?}");
        let e = parse(
            b"displayName = \"empty\"\n",
            Path::new("x.vmx"),
            Path::new(""),
            false,
        );
        assert!(matches!(e, Err(Error::Refused { .. })), "{e:?}");
        // The Workstation machine's NVMe disk lies outside its folder (an absolute path),
        // and so would a name through `..`: both refused unless allowed.
        let e = parse(
            WORKSTATION.as_bytes(),
            Path::new("r.vmx"),
            Path::new("/vms/r"),
            false,
        );
        assert!(
            matches!(&e, Err(Error::Refused { reason, .. }) if reason.starts_with("nvme0:0")),
            "{e:?}"
        );
        let up = b"scsi0.present = \"TRUE\"\nscsi0:0.fileName = \"../other/d.vmdk\"\nscsi0:0.present = \"TRUE\"\n";
        let e = parse(up, Path::new("x.vmx"), Path::new("/vms/x"), false);
        assert!(matches!(e, Err(Error::Refused { .. })), "{e:?}");
        // A trailing | or a bad escape stays as written.
        assert_eq!(unescape("a|2"), "a|2");
        assert_eq!(unescape("a|zzb|7C"), "a|zzb|");
    }
}
