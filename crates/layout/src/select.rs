//! Choosing one volume of a disk by the name a user gives it, and opening its files: the
//! one library call behind `ls`, `cat`, `restore-file` and `blocks --partition`.

use crate::machine::Machine;
use crate::tree::{analyze_machine, Layout, Volume};
use diskray_core::{Error, Lookup, Result, VirtualDisk};
use diskray_guestfs::files::Files;
use diskray_guestfs::{open, Content, Filesystem};
use std::path::Path;

/// The volume of `layout` that `selector` names: a partition index (as `diskray
/// partitions` numbers it), a GPT partition name or a filesystem label. Without a
/// selector, the only volume holding a filesystem diskray maps. The error lists the
/// volumes there are.
pub fn choose_volume<'l>(
    layout: &'l Layout,
    label: &Path,
    selector: Option<&str>,
) -> Result<&'l Volume> {
    let mapped: Vec<&Volume> = layout
        .volumes
        .iter()
        .filter(|v| v.block_size.is_some() && v.content != Content::Lvm2)
        .collect();
    let chosen = match selector {
        Some(p) => layout.volumes.iter().find(|v| {
            let by_index = v.lv.is_none() && p.parse::<u32>().ok() == Some(v.index);
            by_index || v.name == p || v.label.as_deref() == Some(p)
        }),
        None if mapped.len() == 1 => Some(mapped[0]),
        None => None,
    };
    if let Some(v) = chosen {
        return Ok(v);
    }
    // One volume, holding nothing diskray can list: say what it holds.
    if let (None, true, [only]) = (selector, mapped.is_empty(), &layout.volumes[..]) {
        let what = match only.content {
            Content::Unknown => "no filesystem diskray recognises".into(),
            c => format!("{}, which diskray cannot list yet", c.name()),
        };
        return Err(Error::UnsupportedContent {
            path: label.to_path_buf(),
            partition: (only.index != 0).then_some(only.index),
            content: what,
        });
    }
    let list: Vec<String> = layout
        .volumes
        .iter()
        .map(|v| {
            let lab = v
                .label
                .as_ref()
                .map(|l| format!(", {l}"))
                .unwrap_or_default();
            format!("{} ({}{lab})", v.index, v.content.name())
        })
        .collect();
    let volumes = format!(
        "volumes: {}",
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    );
    Err(match selector {
        Some(p) => Error::not_found(
            Lookup::Partition,
            format!("{p:?}"),
            label.display().to_string(),
            volumes,
        ),
        None if mapped.is_empty() => {
            Error::refused(label, format!("no filesystem diskray can list; {volumes}"))
        }
        None => Error::refused(
            label,
            format!("several filesystems: choose one with --partition; {volumes}"),
        ),
    })
}

/// Opens the filesystem of the volume `selector` names on `disk` (named `label` in
/// messages) and runs `f` on its files and the volume.
pub fn with_files<T>(
    disk: &dyn VirtualDisk,
    label: &Path,
    selector: Option<&str>,
    f: impl FnOnce(&dyn Files, &Volume) -> T,
) -> Result<T> {
    with_machine_files(&Machine::single(disk, label), selector, |files, v, _| {
        f(files, v)
    })
}

/// [`with_files`] on a machine of several disks (a logical volume may span them); `f` is
/// given the machine too, to name the disks of the volume's bytes.
pub fn with_machine_files<T>(
    m: &Machine,
    selector: Option<&str>,
    f: impl FnOnce(&dyn Files, &Volume, &Machine) -> T,
) -> Result<T> {
    let layout = analyze_machine(m)?;
    let first = &m.disks()[0].label;
    let v = choose_volume(&layout, first, selector)?;
    let label = &m.disks()[v.disk].label;
    let disk: &dyn VirtualDisk = m;
    v.with_slice(disk, label, |slice| {
        let fs: Box<dyn Filesystem> = open(slice)?.ok_or_else(|| Error::UnsupportedContent {
            path: label.to_path_buf(),
            partition: Some(v.index),
            content: format!("{}, which diskray cannot list", v.content.name()),
        })?;
        let files = fs.files().ok_or_else(|| {
            Error::refused(
                label,
                format!("listing files of {} is not supported yet", v.content.name()),
            )
        })?;
        Ok(f(files, v, m))
    })
}
