//! `diskray info`: what a disk is made of.

use crate::human;
use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::Result;
use diskray_image::Image;
use diskray_vmdk::extent::{Extent, ExtentData};
use diskray_vmdk::Layer;
use serde_json::{json, Value};
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
    let doc = describe(&image);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        )?;
    } else {
        print_warnings(&image);
        print_human(&doc)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(image: &Image) -> Value {
    let disk = image.disk();
    match image {
        Image::Raw(raw) => json!({
            "file": raw.file().path(),
            "format": "raw",
            "capacity": disk.capacity(),
            "warnings": image.warnings(),
        }),
        Image::Vmdk(vmdk) => {
            let layers: Vec<Value> = vmdk.layers().iter().map(layer_json).collect();
            let top = &vmdk.layers()[0];
            json!({
                "file": top.path,
                "format": "vmdk",
                "create_type": top.descriptor.create_type,
                "capacity": disk.capacity(),
                "cid": top.descriptor.cid,
                "parent_cid": top.descriptor.parent_cid,
                "grain_size": top.extents.iter().find_map(grain_bytes),
                "extents": layers[0]["extents"].clone(),
                "layers": layers,
                "warnings": image.warnings(),
            })
        }
    }
}

fn grain_bytes(e: &Extent) -> Option<u64> {
    match &e.data {
        ExtentData::Sparse(s) => Some(s.header().grain_size * 512),
        ExtentData::Cowd(c) => Some(c.header.grain_size * 512),
        ExtentData::SeSparse(_) => Some(diskray_vmdk::sesparse::GRAIN_SECTORS * 512),
        _ => None,
    }
}

fn layer_json(layer: &Layer) -> Value {
    let d = &layer.descriptor;
    let ddb: serde_json::Map<String, Value> = d
        .ddb
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "file": layer.path,
        "descriptor": layer.descriptor_source,
        "version": d.version,
        "create_type": d.create_type,
        "cid": d.cid,
        "parent_cid": d.parent_cid,
        "parent_hint": d.parent_hint,
        "change_track_path": d.change_track_path,
        "capacity": layer.capacity,
        "extents": layer.extents.iter().map(extent_json).collect::<Vec<_>>(),
        "ddb": ddb,
    })
}

fn extent_json(e: &Extent) -> Value {
    let mut v = json!({
        "access": e.line.access,
        "type": e.line.kind.name(),
        "sectors": e.line.sectors,
        "file": e.line.file,
        "offset": e.line.offset,
        "path": e.file().map(|f| f.path()),
        "grain_size": grain_bytes(e),
    });
    let detail = match &e.data {
        ExtentData::Sparse(s) => {
            let h = s.header();
            json!({
                "format": if h.compressed() { "stream_optimized" } else { "hosted_sparse" },
                "header": {
                    "version": h.version,
                    "flags": h.flags,
                    "flag_names": h.flag_names(),
                    "capacity_sectors": h.capacity,
                    "grain_sectors": h.grain_size,
                    "gtes_per_gt": h.num_gtes_per_gt,
                    "descriptor_offset": h.descriptor_offset,
                    "descriptor_size": h.descriptor_size,
                    "gd_offset": h.gd_offset,
                    "rgd_offset": h.rgd_offset,
                    "overhead": h.overhead,
                    "unclean_shutdown": h.unclean_shutdown,
                    "compress_algorithm": h.compress_algorithm,
                },
                "directory_used": s.directory_used,
            })
        }
        ExtentData::Cowd(c) => json!({"format": "cowd", "header": c.header}),
        ExtentData::SeSparse(s) => json!({"format": "sesparse", "header": s.header}),
        ExtentData::Flat { .. } => json!({"format": "flat"}),
        ExtentData::Zero => json!({"format": "zero"}),
        ExtentData::NoAccess => json!({"format": "noaccess"}),
        ExtentData::Device => json!({"format": "device"}),
    };
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), detail) {
        obj.extend(extra);
    }
    v
}

fn print_human(doc: &Value) -> Result<()> {
    let cap = doc["capacity"].as_u64().unwrap_or(0);
    outln!("file:       {}", doc["file"].as_str().unwrap_or(""))?;
    outln!("format:     {}", doc["format"].as_str().unwrap_or(""))?;
    outln!("capacity:   {} ({cap} bytes)", human::size(cap))?;
    let Some(layers) = doc["layers"].as_array() else {
        return Ok(());
    };
    outln!("createType: {}", doc["create_type"].as_str().unwrap_or("?"))?;
    if let Some(g) = doc["grain_size"].as_u64() {
        outln!("grain size: {}", human::size(g))?;
    }
    for (depth, layer) in layers.iter().enumerate() {
        outln!()?;
        outln!(
            "layer {depth}: {}  (createType {}, CID {}, parentCID {}, descriptor {})",
            layer["file"].as_str().unwrap_or(""),
            layer["create_type"].as_str().unwrap_or("?"),
            layer["cid"].as_str().unwrap_or("-"),
            layer["parent_cid"].as_str().unwrap_or("-"),
            layer["descriptor"].as_str().unwrap_or("?"),
        )?;
        outln!(
            "  {:<8} {:>12} {:<11} {:<17} {:>10}  file",
            "access",
            "sectors",
            "type",
            "format",
            "offset"
        )?;
        for e in layer["extents"].as_array().into_iter().flatten() {
            outln!(
                "  {:<8} {:>12} {:<11} {:<17} {:>10}  {}",
                e["access"].as_str().unwrap_or(""),
                e["sectors"].as_u64().unwrap_or(0),
                e["type"].as_str().unwrap_or(""),
                e["format"].as_str().unwrap_or(""),
                e["offset"].as_u64().unwrap_or(0),
                e["file"].as_str().unwrap_or("-"),
            )?;
            if let Some(h) = e
                .get("header")
                .filter(|_| e["format"] != "cowd" && e["format"] != "sesparse")
            {
                outln!(
                    "           header v{} flags {:#x} [{}], gd sector {}, rgd sector {}{}",
                    h["version"],
                    h["flags"].as_u64().unwrap_or(0),
                    h["flag_names"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default(),
                    h["gd_offset"],
                    h["rgd_offset"],
                    if e["directory_used"] == "redundant" {
                        " (using the redundant directory)"
                    } else {
                        ""
                    },
                )?;
            }
        }
    }
    Ok(())
}
