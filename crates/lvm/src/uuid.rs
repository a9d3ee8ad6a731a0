//! LVM2 UUIDs: 32 characters on disk, printed with dashes in groups 6-4-4-4-4-4-6
//! (LVM2 `lib/uuid/uuid.c` `id_write_format`).

/// Group lengths of the printed form.
const GROUPS: [usize; 7] = [6, 4, 4, 4, 4, 4, 6];

/// The printed form of a 32-byte UUID; `None` unless every byte is an ASCII letter or
/// digit (LVM's alphabet, plus `!` and `#` of its oldest versions).
pub fn format_uuid(raw: &[u8]) -> Option<String> {
    if raw.len() != 32
        || !raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#".contains(b))
    {
        return None;
    }
    let mut out = String::with_capacity(38);
    let mut pos = 0;
    for (i, g) in GROUPS.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(std::str::from_utf8(&raw[pos..pos + g]).ok()?);
        pos += g;
    }
    Some(out)
}

/// The UUID without dashes, for comparing the text's `id` with the label's.
pub fn bare(uuid: &str) -> String {
    uuid.chars().filter(|&c| c != '-').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_refusals() {
        assert_eq!(
            format_uuid(b"Oo0ijCK4bCtviroWjMX4ecjMkuBoWjXV").unwrap(),
            "Oo0ijC-K4bC-tvir-oWjM-X4ec-jMku-BoWjXV"
        );
        assert!(format_uuid(b"short").is_none());
        assert!(format_uuid(&[0u8; 32]).is_none());
        assert_eq!(bare("Oo0ijC-K4bC-tvir"), "Oo0ijCK4bCtvir");
    }
}
