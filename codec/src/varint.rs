//! Go-exact signed varints (`spec/02-framing.md`, FRAME-2, FRAME-3, FRAME-4).
//!
//! The wire uses Go's `encoding/binary.PutVarint`: the signed value is zigzag-mapped to an
//! unsigned one (`0, -1, 1, -2, ...` become `0, 1, 2, 3, ...`), which is then written seven bits
//! at a time, least significant group first, with the high bit of every byte but the last set.
//! An encoding is at most [`MAX_LEN`] bytes long.
//!
//! Decoding follows Go's `binary.ReadVarint`, the function the seed's muxer reads frames with:
//! non-minimal encodings (such as `80 00` for 0) are accepted (FRAME-3); a tenth byte that has
//! its continuation bit set or a value above 1 is an overflow (FRAME-4). The decoder is
//! incremental: [`decode`] on a prefix of a valid encoding reports [`VarintError::Incomplete`],
//! so a caller can wait for more bytes, and reports [`VarintError::Overflow`] as soon as the
//! bytes seen can no longer start a valid varint.

use thiserror::Error;

/// The longest encoding of a 64-bit varint, in bytes.
pub const MAX_LEN: usize = 10;

/// Why a byte slice does not start with a complete varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VarintError {
    /// Every byte given has its continuation bit set and fewer than [`MAX_LEN`] bytes were given:
    /// more input may complete the varint.
    #[error("incomplete varint: {have} byte(s), all with the continuation bit set")]
    Incomplete {
        /// How many bytes were examined.
        have: usize,
    },
    /// The encoding does not fit in 64 bits: its tenth byte has the continuation bit set or is
    /// greater than 1 (FRAME-4).
    #[error("FRAME-4: varint overflows 64 bits after {len} bytes")]
    Overflow {
        /// How many bytes were examined when the overflow was detected (always 10).
        len: usize,
    },
}

/// Maps a signed value to the unsigned value Go writes for it (zigzag).
#[inline]
pub const fn zigzag(v: i64) -> u64 {
    ((v as u64) << 1) ^ ((v >> 63) as u64)
}

/// Inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Writes the minimal unsigned varint of `u` into `out`, returning the number of bytes written.
#[inline]
pub fn encode_unsigned(mut u: u64, out: &mut [u8; MAX_LEN]) -> usize {
    let mut i = 0;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

/// Writes the minimal signed varint of `v` into `out` (exactly Go's `binary.PutVarint`) and
/// returns the number of bytes written (1 to 10).
#[inline]
pub fn encode(v: i64, out: &mut [u8; MAX_LEN]) -> usize {
    encode_unsigned(zigzag(v), out)
}

/// Appends the minimal signed varint of `v` to `out`.
#[inline]
pub fn encode_to_vec(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; MAX_LEN];
    let n = encode(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// The number of bytes [`encode`] writes for `v`.
#[inline]
pub const fn encoded_len(v: i64) -> usize {
    let u = zigzag(v);
    let bits = 64 - (u | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes an unsigned varint from the start of `buf`, returning the value and the number of
/// bytes it occupies. Non-minimal encodings are accepted, as Go accepts them.
#[inline]
pub fn decode_unsigned(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    // Fast path: one byte.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            return Ok((u64::from(b), 1));
        }
    }
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate().take(MAX_LEN) {
        if i == MAX_LEN - 1 && b > 1 {
            // A tenth byte may only contribute the 64th bit, and may not continue.
            return Err(VarintError::Overflow { len: MAX_LEN });
        }
        if b < 0x80 {
            return Ok((x | (u64::from(b) << shift), i + 1));
        }
        x |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    Err(VarintError::Incomplete { have: buf.len() })
}

/// Decodes a signed (zigzag) varint from the start of `buf`, exactly as Go's
/// `binary.ReadVarint`, returning the value and the number of bytes it occupies.
#[inline]
pub fn decode(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    decode_unsigned(buf).map(|(u, n)| (unzigzag(u), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    // covers: FRAME-2
    #[test]
    fn zigzag_maps_small_values_alternately() {
        let pairs = [(0i64, 0u64), (-1, 1), (1, 2), (-2, 3), (2, 4)];
        for (v, u) in pairs {
            assert_eq!(zigzag(v), u);
            assert_eq!(unzigzag(u), v);
        }
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn encoded_len_matches_encode() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            i64::MAX,
            i64::MIN,
            1 << 62,
        ] {
            let mut buf = [0; MAX_LEN];
            assert_eq!(encoded_len(v), encode(v, &mut buf), "{v}");
        }
    }

    // covers: FRAME-3, FRAME-4
    #[test]
    fn go_edge_cases() {
        assert_eq!(decode(&[]), Err(VarintError::Incomplete { have: 0 }));
        assert_eq!(decode(&[0x80, 0x00]), Ok((0, 2)));
        assert_eq!(decode(&[0xff; 9]), Err(VarintError::Incomplete { have: 9 }));
        // Ten continuation bytes can never complete: overflow, as Go's ReadVarint says.
        assert_eq!(decode(&[0xff; 10]), Err(VarintError::Overflow { len: 10 }));
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(decode(&max), Ok((i64::MIN, 10)));
        max[9] = 0x02;
        assert_eq!(decode(&max), Err(VarintError::Overflow { len: 10 }));
    }
}
