//! What the repository records of the machine and moment it runs on: the time, the host
//! name (lock objects, key objects) and random bytes (image ids, lock names, keys).

/// Longest host name recorded.
const MAX_HOSTNAME_LEN: usize = 255;

/// Seconds since the Unix epoch (0 for a clock before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// This machine's host name (empty when the system gives none).
pub fn hostname() -> String {
    let mut buf = [0u8; MAX_HOSTNAME_LEN + 1];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Fills `buf` with random bytes from the operating system.
pub fn random_bytes(buf: &mut [u8]) -> diskray_core::Result<()> {
    getrandom::getrandom(buf).map_err(|e| {
        diskray_core::Error::refused(
            std::path::Path::new("getrandom"),
            format!("the operating system gives no random bytes: {e}"),
        )
    })
}
