//! Reading inside the body of one message (`spec/05-rpc.md`, sections 5.2.2, 5.2.8 and 5.2.11),
//! shared by the value decoder (`decoder.rs`) and the definition reader (`definition.rs`).
//!
//! - GOB-20: `Cursor` turns a length, count or value that runs past the end of the body into
//!   [`GobError::Truncated`] (past_end).
//! - GOB-2: it reads uints through [`read_uint`], so a count byte above eight bytes is
//!   [`GobError::BadUint`], and it counts the non-minimal forms it accepted (the GOB-1 check of a
//!   trace).
//! - GOB-11: `read_fields` walks a struct's field deltas up to the terminating 0, and reports a
//!   field number past the last field as [`GobError::BadField`].

use super::error::GobError;
use super::uint::{minimal_uint_len, read_uint, uint_to_int, UintError};

/// A cursor over one message's bytes.
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) at: usize,
    /// Uints read in a longer form than the minimal one (accepted, GOB-2; counted, GOB-1).
    pub(super) non_minimal: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    pub(super) fn uint(&mut self, what: &'static str) -> Result<u64, GobError> {
        match read_uint(&self.buf[self.at..]) {
            Ok((u, n)) => {
                self.at += n;
                if n != minimal_uint_len(u) {
                    self.non_minimal += 1;
                }
                Ok(u)
            }
            Err(UintError::Incomplete) => Err(GobError::Truncated { what }),
            Err(UintError::BadCount(count)) => Err(GobError::BadUint { count }),
        }
    }

    pub(super) fn int(&mut self, what: &'static str) -> Result<i64, GobError> {
        self.uint(what).map(uint_to_int)
    }

    pub(super) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], GobError> {
        let n = self.uint(what)?;
        if n > self.remaining() as u64 {
            return Err(GobError::Truncated { what });
        }
        let s = &self.buf[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    pub(super) fn float(&mut self, what: &'static str) -> Result<f64, GobError> {
        Ok(f64::from_bits(self.uint(what)?.swap_bytes()))
    }

    /// A count of elements that each take at least one byte.
    pub(super) fn count(&mut self, what: &'static str) -> Result<u64, GobError> {
        let n = self.uint(what)?;
        if n > self.remaining() as u64 {
            return Err(GobError::Truncated { what });
        }
        Ok(n)
    }
}

/// Reads struct field deltas, calling `field` with each field number; stops at delta 0.
pub(super) fn read_fields<'a>(
    c: &mut Cursor<'a>,
    count: usize,
    name: &str,
    mut field: impl FnMut(&mut Cursor<'a>, usize) -> Result<(), GobError>,
) -> Result<(), GobError> {
    let mut number: i64 = -1;
    loop {
        let delta = c.uint("a field delta")?;
        if delta == 0 {
            return Ok(());
        }
        let next = (number as i128) + i128::from(delta);
        if next >= count as i128 {
            return Err(GobError::BadField {
                name: name.to_string(),
                field: next.min(u64::MAX as i128) as u64,
                count,
            });
        }
        number = next as i64;
        field(c, number as usize)?;
    }
}
