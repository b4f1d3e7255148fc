//! Gob unsigned and signed integers (`spec/05-rpc.md`, sections 5.2.2 and 5.2.3), the encoding
//! every other part of the gob layer is built on.
//!
//! - GOB-1: [`put_uint`] writes the minimal form (one byte below 128, else the negated byte
//!   count and the big-endian bytes without leading zeros); `minimal_uint_len` gives that form's
//!   length, so that readers can count the longer forms they accepted.
//! - GOB-2: [`read_uint`] accepts non-minimal forms and reports a count byte that announces more
//!   than eight bytes ([`UintError::BadCount`]).
//! - GOB-3: [`put_int`] and [`read_int`] map signed integers onto uints (`uint_to_int` is the
//!   reading half).

/// The longest gob uint: a count byte and eight value bytes.
pub const MAX_UINT_LEN: usize = 9;

/// Appends the gob encoding of an unsigned integer.
pub fn put_uint(u: u64, out: &mut Vec<u8>) {
    if u < 0x80 {
        out.push(u as u8);
        return;
    }
    let bytes = u.to_be_bytes();
    let skip = (u.leading_zeros() / 8) as usize;
    out.push((-((8 - skip) as i8)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends the gob encoding of a signed integer.
pub fn put_int(i: i64, out: &mut Vec<u8>) {
    let u = if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    };
    put_uint(u, out);
}

/// Why bytes do not start with a gob uint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UintError {
    /// More bytes are needed.
    Incomplete,
    /// The count byte announces more than eight bytes.
    BadCount(u8),
}

/// Reads a gob uint from the start of `buf`, returning it and its length. Non-minimal forms
/// (such as `ff 05`) are accepted, as Go accepts them.
pub fn read_uint(buf: &[u8]) -> Result<(u64, usize), UintError> {
    let Some(&first) = buf.first() else {
        return Err(UintError::Incomplete);
    };
    if first < 0x80 {
        return Ok((u64::from(first), 1));
    }
    let n = (first as i8).unsigned_abs() as usize;
    if n > 8 {
        return Err(UintError::BadCount(first));
    }
    let Some(bytes) = buf.get(1..1 + n) else {
        return Err(UintError::Incomplete);
    };
    Ok((
        bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        1 + n,
    ))
}

/// Reads a gob int from the start of `buf`.
pub fn read_int(buf: &[u8]) -> Result<(i64, usize), UintError> {
    read_uint(buf).map(|(u, n)| (uint_to_int(u), n))
}

pub(super) fn uint_to_int(u: u64) -> i64 {
    if u & 1 == 1 {
        !((u >> 1) as i64)
    } else {
        (u >> 1) as i64
    }
}

/// The length of the minimal gob encoding of `u` (GOB-1).
pub(super) fn minimal_uint_len(u: u64) -> usize {
    if u < 0x80 {
        1
    } else {
        1 + (8 - u.leading_zeros() as usize / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn uints_and_ints_match_go() {
        let mut out = Vec::new();
        put_uint(130, &mut out);
        put_int(65, &mut out);
        put_int(-65, &mut out);
        put_uint(256, &mut out);
        put_int(3, &mut out);
        assert_eq!(out, hex("ff82ff82ff81fe010006"));
        assert_eq!(
            read_uint(&hex("ff05")),
            Ok((5, 2)),
            "non-minimal forms are accepted"
        );
        assert_eq!(read_uint(&hex("f7")), Err(UintError::BadCount(0xf7)));
        assert_eq!(read_uint(&hex("fe01")), Err(UintError::Incomplete));
        assert_eq!(read_int(&hex("ff81")), Ok((-65, 2)));
    }
}
