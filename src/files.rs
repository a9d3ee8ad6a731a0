//! `diskray ls` and `diskray cat`: files without mounting.

use crate::open::DiskArgs;
use diskray_core::time::iso8601;
use diskray_core::{ByteRange, Error, Result, VirtualDisk};
use diskray_guestfs::files::{lookup, walk, Entry, FileType, Files};
use diskray_guestfs::layout::analyze;
use diskray_guestfs::{open, Filesystem, Slice};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `diskray ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    disk: DiskArgs,
    /// The partition: its index (as `diskray partitions` numbers it), or its GPT name or
    /// filesystem label. Optional when the disk holds one filesystem.
    #[arg(long, short = 'p')]
    partition: Option<String>,
    /// The guest path to list (a directory or a file).
    #[arg(default_value = "/")]
    path: String,
    /// List everything below PATH.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// List deleted entries that can still be found (below PATH), with their extents and
    /// whether their blocks were reused.
    #[arg(long)]
    deleted: bool,
    /// Print one JSON document on stdout (with each entry's extents).
    #[arg(long)]
    json: bool,
}

/// Arguments of `diskray cat`.
#[derive(clap::Args, Debug)]
pub struct CatArgs {
    #[command(flatten)]
    disk: DiskArgs,
    /// The partition: index, GPT name or filesystem label.
    #[arg(long, short = 'p')]
    partition: Option<String>,
    /// The guest path of the file (with --deleted: the path `ls --deleted` shows).
    path: String,
    /// Extract a deleted file (as listed by `ls --deleted`) from the blocks it had.
    #[arg(long)]
    deleted: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    path: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
    #[serde(rename = "mtime")]
    mtime_iso: Option<String>,
    extents: Vec<ByteRange>,
}

/// Runs `fs_fn` on the filesystem of the chosen partition.
fn with_fs<T>(
    disk: &DiskArgs,
    partition: Option<&str>,
    fs_fn: impl FnOnce(&dyn Files, u64) -> Result<T>,
) -> Result<T> {
    let image = disk.open(true)?;
    with_fs_on(image.disk(), &disk.disk, partition, fs_fn)
}

/// Opens the filesystem of one partition of `d` (named `label` in messages) and runs
/// `fs_fn` on its files; without `partition`, the only filesystem there is.
pub fn with_fs_on<T>(
    d: &dyn VirtualDisk,
    label: &Path,
    partition: Option<&str>,
    fs_fn: impl FnOnce(&dyn Files, u64) -> Result<T>,
) -> Result<T> {
    let layout = analyze(d, label)?;
    let candidates: Vec<_> = layout
        .volumes
        .iter()
        .filter(|v| v.block_size.is_some())
        .collect();
    let chosen = match partition {
        Some(p) => layout.volumes.iter().find(|v| {
            p.parse::<u32>().ok() == Some(v.index) || v.name == p || v.label.as_deref() == Some(p)
        }),
        None if candidates.len() == 1 => Some(candidates[0]),
        None => None,
    };
    let Some(v) = chosen else {
        let list: Vec<String> = layout
            .volumes
            .iter()
            .map(|v| {
                format!(
                    "{} ({}{})",
                    v.index,
                    v.content.name(),
                    v.label
                        .as_ref()
                        .map(|l| format!(", {l}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        return Err(Error::Request(format!(
            "{}: {}; volumes: {}",
            label.display(),
            match partition {
                Some(p) => format!("no partition {p:?}"),
                None => "several filesystems: choose one with --partition".into(),
            },
            if list.is_empty() {
                "none".into()
            } else {
                list.join(", ")
            }
        )));
    };
    let slice = Slice::new(d, label, v.start, v.length);
    let fs: Box<dyn Filesystem> = open(slice)?.ok_or_else(|| {
        Error::Request(format!(
            "{}: partition {} holds {}, which diskray cannot list",
            label.display(),
            v.index,
            v.content.name()
        ))
    })?;
    let files = fs.files().ok_or_else(|| {
        Error::Request(format!(
            "{}: listing files of {} is not supported yet",
            label.display(),
            v.content.name()
        ))
    })?;
    let result = fs_fn(files, v.start);
    for w in files.warnings() {
        eprintln!("diskray: warning: {}: {w}", files.label());
    }
    result
}

/// Runs `diskray ls`.
pub fn ls(args: LsArgs) -> Result<ExitCode> {
    let path = normalise(&args.path);
    let rows = with_fs(&args.disk, args.partition.as_deref(), |fs, start| {
        let mut rows: Vec<(String, Entry)> = Vec::new();
        if args.deleted {
            let prefix = if path == "/" {
                String::from("/")
            } else {
                format!("{path}/")
            };
            rows = fs
                .deleted()?
                .into_iter()
                .filter(|(p, _)| path == "/" || p.starts_with(&prefix))
                .collect();
            if !args.recursive {
                rows.retain(|(p, _)| {
                    p.rsplit_once('/')
                        .map(|(dir, _)| if dir.is_empty() { "/" } else { dir })
                        == Some(path.as_str())
                        || path != "/" && p.starts_with(&prefix) && !p[prefix.len()..].contains('/')
                });
            }
        } else {
            let target = lookup(fs, &path)?;
            if target.kind == FileType::Dir {
                walk(fs, &path, &target, args.recursive, &mut rows)?;
            } else {
                rows.push((path.clone(), target));
            }
        }
        let mut out = Vec::new();
        for (p, e) in rows {
            let ext = if args.json {
                fs.extents(&e).unwrap_or_default()
            } else {
                Vec::new()
            };
            let ext: Vec<ByteRange> = ext
                .into_iter()
                .map(|r| ByteRange::new(r.start + start, r.length))
                .collect();
            out.push((p, e, ext));
        }
        Ok(out)
    })?;
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let werr = |e: std::io::Error| Error::Request(format!("writing to standard output: {e}"));
    if args.json {
        let entries: Vec<Row> = rows
            .iter()
            .map(|(p, e, x)| Row {
                path: p,
                entry: e,
                mtime_iso: e.mtime.map(iso8601),
                extents: x.clone(),
            })
            .collect();
        serde_json::to_writer_pretty(&mut w, &serde_json::json!({ "entries": entries }))
            .map_err(|e| Error::Request(e.to_string()))?;
        writeln!(w).map_err(werr)?;
    } else {
        for (p, e, _) in &rows {
            let kind = match e.kind {
                FileType::Dir => 'd',
                FileType::File => '-',
                FileType::Symlink => 'l',
                FileType::Other => '?',
            };
            let flag = match (e.deleted, e.recoverable) {
                (true, Some(true)) => " [deleted, recoverable]",
                (true, Some(false)) => " [deleted, overwritten]",
                (true, None) => " [deleted, inode unknown]",
                _ => "",
            };
            let target = e
                .target
                .as_ref()
                .map(|t| format!(" -> {t}"))
                .unwrap_or_default();
            writeln!(
                w,
                "{kind} {:>12} {:>10} {:20} {p}{target}{flag}",
                e.size,
                e.inode,
                e.mtime.map(iso8601).unwrap_or_default()
            )
            .map_err(werr)?;
        }
    }
    w.flush().map_err(werr)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `diskray cat`.
pub fn cat(args: CatArgs) -> Result<ExitCode> {
    let path = normalise(&args.path);
    with_fs(&args.disk, args.partition.as_deref(), |fs, _| {
        let e = if args.deleted {
            let found = fs.deleted()?.into_iter().find(|(p, _)| {
                if fs.case_insensitive() {
                    p.to_lowercase() == path.to_lowercase()
                } else {
                    *p == path
                }
            });
            let (_, e) = found.ok_or_else(|| {
                Error::Request(format!(
                    "{}: no deleted entry {path} (see ls --deleted -r)",
                    fs.label()
                ))
            })?;
            if e.recoverable == Some(false) {
                eprintln!("diskray: warning: {path}: its blocks were reused since the deletion; the content is not the original");
            }
            e
        } else {
            lookup(fs, &path)?
        };
        write_file(fs, &e, &path, None)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the content of `e` (found at `path`) to `output`, or to standard output. A file
/// is written under a temporary name and renamed when complete.
pub fn write_file(fs: &dyn Files, e: &Entry, path: &str, output: Option<&Path>) -> Result<()> {
    if e.kind == FileType::Dir {
        return Err(Error::Request(format!(
            "{}: {path} is a directory",
            fs.label()
        )));
    }
    let Some(out) = output else {
        let stdout = std::io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        fs.read_file(e, &mut w)?;
        return w
            .flush()
            .map_err(|e| Error::Request(format!("writing to standard output: {e}")));
    };
    let tmp = out.with_extension("diskray-tmp");
    let f = std::fs::File::create(&tmp).map_err(|e| Error::Open {
        path: tmp.clone(),
        source: e,
    })?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let written = fs
        .read_file(e, &mut w)
        .and_then(|_| w.flush().map_err(|e| Error::io(&tmp, 0, e)));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::Open {
        path: out.to_path_buf(),
        source: e,
    })
}

pub fn normalise(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", parts.join("/"))
}
