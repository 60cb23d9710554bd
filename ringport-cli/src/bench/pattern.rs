//! The bytes the bench sends: a pure function of (connection, message number, offset), so every
//! echoed byte is checked without keeping a copy of what was sent.
//!
//! Message `seq` of connection `conn` has a 64-bit key (splitmix64 of both); its 8-byte word
//! `i` is `key + i·φ` (φ = 2^64 / golden ratio), little-endian. Keys of different messages are
//! unrelated, and neighbouring words differ, so a byte flipped, dropped, duplicated, moved, or
//! taken from another message or connection is caught; checking costs one add and compare per
//! word.

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

/// The key of message `seq` on connection `conn`.
pub fn key(conn: u64, seq: u64) -> u64 {
    let mut z = conn.wrapping_mul(PHI) ^ seq.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn word(key: u64, index: usize) -> u64 {
    key.wrapping_add((index as u64).wrapping_mul(PHI))
}

/// Writes the message's bytes `offset..offset + out.len()` into `out`.
pub fn fill(key: u64, offset: usize, out: &mut [u8]) {
    let mut pos = offset;
    let mut rest = &mut out[..];
    let head = ((8 - pos % 8) % 8).min(rest.len());
    if head > 0 {
        let w = word(key, pos / 8).to_le_bytes();
        rest[..head].copy_from_slice(&w[pos % 8..pos % 8 + head]);
        pos += head;
        rest = &mut rest[head..];
    }
    let mut index = pos / 8;
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word(key, index).to_le_bytes());
        index += 1;
    }
    let tail = chunks.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&word(key, index).to_le_bytes()[..n]);
}

/// Whether `data` equals the message's bytes from `offset` on.
pub fn matches(key: u64, offset: usize, data: &[u8]) -> bool {
    let mut pos = offset;
    let mut rest = data;
    let head = ((8 - pos % 8) % 8).min(rest.len());
    if head > 0 {
        let w = word(key, pos / 8).to_le_bytes();
        if rest[..head] != w[pos % 8..pos % 8 + head] {
            return false;
        }
        pos += head;
        rest = &rest[head..];
    }
    let mut index = pos / 8;
    let mut chunks = rest.chunks_exact(8);
    for chunk in &mut chunks {
        let got = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        if got != word(key, index) {
            return false;
        }
        index += 1;
    }
    let tail = chunks.remainder();
    tail == &word(key, index).to_le_bytes()[..tail.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_at_any_offset_match_the_whole() {
        let k = key(7, 42);
        let mut whole = vec![0u8; 100];
        fill(k, 0, &mut whole);
        for start in 0..100 {
            for end in start..=100 {
                let mut piece = vec![0u8; end - start];
                fill(k, start, &mut piece);
                assert_eq!(piece, whole[start..end]);
                assert!(matches(k, start, &whole[start..end]));
            }
        }
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let k = key(1, 2);
        let mut m = vec![0u8; 64];
        fill(k, 0, &mut m);
        for i in 0..64 {
            let mut bad = m.clone();
            bad[i] ^= 1;
            assert!(!matches(k, 0, &bad), "flip at {i}");
        }
        assert!(!matches(k, 1, &m[..63]), "shifted by one");
        assert!(!matches(k, 8, &m[..56]), "shifted by a word");
        assert!(!matches(key(1, 3), 0, &m), "another message");
        assert!(!matches(key(2, 2), 0, &m), "another connection");
    }
}
