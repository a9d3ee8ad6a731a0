//! `diskray info`: what a disk is made of.

use crate::human;
use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::Result;
use diskray_image::info::Info;
use diskray_vmdk::info::{HeaderInfo, LayerInfo};
use diskray_vmdk::sparse::DirectoryUsed;
use std::process::ExitCode;

/// Arguments of `diskray info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray info`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    let info = Info::of(&image);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&info).expect("JSON of plain values")
        )?;
    } else {
        print_warnings(&image);
        print_human(&info)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(info: &Info) -> Result<()> {
    let cap = info.capacity;
    outln!("file:       {}", info.file.display())?;
    outln!("format:     {}", info.format)?;
    outln!("capacity:   {} ({cap} bytes)", human::size(cap))?;
    let Some(vmdk) = &info.vmdk else {
        return Ok(());
    };
    outln!("createType: {}", vmdk.create_type)?;
    if let Some(g) = vmdk.grain_size {
        outln!("grain size: {}", human::size(g))?;
    }
    for (depth, layer) in vmdk.layers.iter().enumerate() {
        print_layer(depth, layer)?;
    }
    Ok(())
}

fn print_layer(depth: usize, layer: &LayerInfo) -> Result<()> {
    outln!()?;
    outln!(
        "layer {depth}: {}  (createType {}, CID {}, parentCID {}, descriptor {})",
        layer.file.display(),
        layer.create_type,
        layer.cid.as_deref().unwrap_or("-"),
        layer.parent_cid.as_deref().unwrap_or("-"),
        layer.descriptor.name(),
    )?;
    outln!(
        "  {:<8} {:>12} {:<11} {:<17} {:>10}  file",
        "access",
        "sectors",
        "type",
        "format",
        "offset"
    )?;
    for e in &layer.extents {
        outln!(
            "  {:<8} {:>12} {:<11} {:<17} {:>10}  {}",
            e.access.name(),
            e.sectors,
            e.kind,
            e.format,
            e.offset,
            e.file.as_deref().unwrap_or("-"),
        )?;
        if let Some(HeaderInfo::Hosted(h)) = &e.header {
            outln!(
                "           header v{} flags {:#x} [{}], gd sector {}, rgd sector {}{}",
                h.version,
                h.flags,
                h.flag_names.join(", "),
                h.gd_offset,
                h.rgd_offset,
                if e.directory_used == Some(DirectoryUsed::Redundant) {
                    " (using the redundant directory)"
                } else {
                    ""
                },
            )?;
        }
    }
    Ok(())
}
