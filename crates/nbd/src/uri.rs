//! NBD URIs, as the NBD URI standard (`doc/uri.md` of the NBD project) writes them:
//! `nbd://HOST[:PORT]/EXPORT`, `nbd+unix:///EXPORT?socket=PATH`, and the same over TLS
//! as `nbds://` and `nbds+unix://` with `?tls-certificates=DIR`. See `docs/nbd.md` §1.

use crate::error::{NbdError, Result};
use crate::limits::MAX_STRING;
use crate::proto::DEFAULT_PORT;
use std::path::PathBuf;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP host (name, IPv4, or IPv6 without brackets) and port.
    Tcp {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// A parsed NBD URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The URI as given (for messages).
    pub text: String,
    /// Where the server listens.
    pub address: Address,
    /// The export name (percent-decoded; empty is the default export).
    pub export: String,
    /// For `nbds://` URIs: the directory of the TLS certificates (`tls-certificates=`).
    pub tls_certificates: Option<PathBuf>,
}

impl Uri {
    /// The name the server's TLS certificate must carry: the host, or `localhost` for a
    /// Unix socket.
    pub fn tls_hostname(&self) -> &str {
        match &self.address {
            Address::Tcp { host, .. } => host,
            Address::Unix(_) => "localhost",
        }
    }
}

/// The schemes of the standard, each with whether it means TLS and a Unix socket.
const SCHEMES: [(&str, bool, bool); 6] = [
    ("nbd", false, false),
    ("nbds", true, false),
    ("nbd+unix", false, true),
    ("nbds+unix", true, true),
    ("nbd+vsock", false, false),
    ("nbds+vsock", true, false),
];

/// True when `s` starts with the scheme of an NBD URI (`nbd://`, `nbd+unix://`, …): such a
/// disk argument is a network export, not a file.
pub fn is_nbd_uri(s: &str) -> bool {
    SCHEMES
        .iter()
        .any(|(scheme, _, _)| s.strip_prefix(scheme).is_some_and(|r| r.starts_with("://")))
}

impl Uri {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Uri> {
        let bad = |reason: &str| NbdError::Uri {
            uri: text.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("not a URI (expected nbd://HOST/EXPORT)"))?;
        let &(_, tls, unix) = SCHEMES
            .iter()
            .find(|(s, _, _)| *s == scheme)
            .ok_or_else(|| bad("unknown scheme (expected nbd, nbd+unix)"))?;
        if scheme.ends_with("+vsock") {
            return Err(bad(
                "vsock transport not supported (use nbd:// or nbd+unix://)",
            ));
        }
        if rest.contains('#') {
            return Err(bad("a fragment (#…) has no meaning in an NBD URI"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let export =
            percent_decode(path).ok_or_else(|| bad("bad percent-encoding in the export name"))?;
        if export.len() > MAX_STRING as usize {
            return Err(bad("export name longer than 4096 bytes"));
        }
        let mut socket = None;
        let mut certificates = None;
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "socket" if unix => {
                    let v = percent_decode(value)
                        .ok_or_else(|| bad("bad percent-encoding in socket="))?;
                    socket = Some(PathBuf::from(v));
                }
                "socket" => return Err(bad("socket= is for nbd+unix:// URIs")),
                "tls-certificates" if tls => {
                    let v = percent_decode(value).ok_or_else(|| bad("bad percent-encoding in tls-certificates="))?;
                    certificates = Some(PathBuf::from(v));
                }
                "tls-verify-peer" if tls && value == "true" => {}
                "tls-verify-peer" if tls => {
                    return Err(bad("tls-verify-peer=false not supported: the server's certificate is always checked"))
                }
                _ => return Err(bad(&format!("query parameter {key:?} not supported"))),
            }
        }
        let address = if unix {
            if !authority.is_empty() {
                return Err(bad(
                    "an nbd+unix:// URI has no host (nbd+unix:///EXPORT?socket=PATH)",
                ));
            }
            Address::Unix(socket.ok_or_else(|| bad("nbd+unix:// needs ?socket=PATH"))?)
        } else {
            let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
            if host.is_empty() {
                return Err(bad("no host (nbd://HOST[:PORT]/EXPORT)"));
            }
            Address::Tcp { host, port }
        };
        if tls && certificates.is_none() {
            return Err(bad(
                "TLS needs ?tls-certificates=DIR (a directory holding ca-cert.pem, and client-cert.pem and client-key.pem when the server checks its clients)",
            ));
        }
        Ok(Uri {
            text: text.to_string(),
            address,
            export,
            tls_certificates: certificates,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` (a user-info part is refused).
fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => p.parse().ok()?,
    };
    Some((percent_decode(host)?, port))
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.into(),
            port,
        }
    }

    /// The examples of the NBD URI standard, and the ways to get one wrong.
    #[test]
    fn parses_the_standard_forms() {
        let cases = [
            ("nbd://example.com", tcp("example.com", 10809), ""),
            ("nbd://example.com/", tcp("example.com", 10809), ""),
            ("nbd://example.com/disk", tcp("example.com", 10809), "disk"),
            (
                "nbd://localhost:10810/a%20b",
                tcp("localhost", 10810),
                "a b",
            ),
            ("nbd://[::1]:10811/x/y", tcp("::1", 10811), "x/y"),
            ("nbd://[::1]/", tcp("::1", 10809), ""),
            ("nbd://127.0.0.1:1//abs", tcp("127.0.0.1", 1), "/abs"),
            (
                "nbd+unix:///disk?socket=/tmp/nbd.sock",
                Address::Unix("/tmp/nbd.sock".into()),
                "disk",
            ),
            (
                "nbd+unix://?socket=/tmp/a%20b",
                Address::Unix("/tmp/a b".into()),
                "",
            ),
        ];
        for (text, address, export) in cases {
            let uri = Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (uri.address, uri.export.as_str()),
                (address, export),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            "nbd:///disk",
            "nbd://host:99999/",
            "nbd://host:x/",
            "nbd://user@host/",
            "nbd://host/%zz",
            "nbd://host/#frag",
            "nbd://host/?socket=/x",
            "nbd://host/?tls-certificates=/x",
            "nbd+unix:///disk",
            "nbd+unix://host/disk?socket=/x",
            "nbd+vsock://1:2/",
            "http://host/",
        ] {
            assert!(
                matches!(Uri::parse(bad), Err(NbdError::Uri { .. })),
                "{bad} should be refused"
            );
        }
        for tls in ["nbds://host/disk", "nbds+unix:///disk?socket=/x"] {
            let e = Uri::parse(tls).unwrap_err();
            assert!(e.to_string().contains("tls-certificates=DIR"), "{e}");
        }
        let e = Uri::parse("nbds://h/?tls-certificates=/c&tls-verify-peer=false").unwrap_err();
        assert!(e.to_string().contains("always checked"), "{e}");
    }

    #[test]
    fn recognises_the_schemes() {
        assert!(is_nbd_uri("nbd://h/e"));
        assert!(is_nbd_uri("nbds+unix:///e?socket=/s"));
        assert!(!is_nbd_uri("nbd.img"));
        assert!(!is_nbd_uri("disk.vmdk"));
        assert!(!is_nbd_uri("nbdx://h/e"));
    }
}
