//! LZNT1, the compression of NTFS compressed attributes: 4 KiB chunks, each with a 2-byte
//! header (size − 3 in the low 12 bits, bit 15 = compressed); a compressed chunk is groups
//! of a flag byte and eight items, each a literal byte or a 16-bit back-reference whose
//! split between offset and length bits depends on the position in the chunk.
//!
//! Sources: [MS-XCA] §2.5 "LZNT1 Algorithm Details"; `docs/formats.md` §3.3.

/// Bytes a chunk decompresses to at most.
const CHUNK: usize = 4096;

/// Decompresses `input` into `out`, stopping once `out` holds `limit` bytes; `None` on a
/// malformed stream (a back-reference before the chunk start, a header past the input).
pub fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Option<()> {
    let mut i = 0;
    while i + 2 <= input.len() && out.len() < limit {
        let header = u16::from_le_bytes([input[i], input[i + 1]]);
        if header == 0 {
            break;
        }
        let size = (header & 0x0FFF) as usize + 1;
        let data = input.get(i + 2..i + 2 + size)?;
        i += 2 + size;
        let start = out.len();
        if header & 0x8000 == 0 {
            out.extend_from_slice(&data[..size.min(CHUNK)]);
            continue;
        }
        let mut p = 0;
        while p < data.len() && out.len() - start < CHUNK {
            let flags = data[p];
            p += 1;
            for bit in 0..8 {
                if p >= data.len() || out.len() - start >= CHUNK {
                    break;
                }
                if flags & (1 << bit) == 0 {
                    out.push(data[p]);
                    p += 1;
                    continue;
                }
                let token = u16::from_le_bytes([data[p], *data.get(p + 1)?]) as usize;
                p += 2;
                let pos = out.len() - start;
                let mut len_bits = 12;
                let mut span = pos.saturating_sub(1);
                while span >= 0x10 {
                    span >>= 1;
                    len_bits -= 1;
                }
                let offset = (token >> len_bits) + 1;
                let length = (token & ((1 << len_bits) - 1)) + 3;
                if offset > pos {
                    return None;
                }
                for _ in 0..length {
                    if out.len() - start >= CHUNK {
                        break;
                    }
                    let b = out[out.len() - offset];
                    out.push(b);
                }
            }
        }
    }
    out.truncate(limit);
    Some(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn literals_and_a_back_reference() {
        // "abcabcabc": three literals, then a reference of offset 3, length 6.
        // Position 3: len_bits = 12, token = ((3 - 1) << 12) | (6 - 3).
        let token: u16 = (2 << 12) | 3;
        let mut body = vec![0b0000_1000u8, b'a', b'b', b'c'];
        body.extend_from_slice(&token.to_le_bytes());
        let header: u16 = 0x8000 | 0x3000 | (body.len() as u16 - 1);
        let mut input = header.to_le_bytes().to_vec();
        input.extend_from_slice(&body);
        let mut out = Vec::new();
        super::decompress(&input, &mut out, 100).unwrap();
        assert_eq!(out, b"abcabcabc");
        let mut bad = input.clone();
        bad[7] = 0xF0; // offset 16, past the chunk start at position 3
        assert!(super::decompress(&bad, &mut Vec::new(), 100).is_none());
    }
}
