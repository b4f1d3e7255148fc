//! Bytes as the tests and the vectors write them: hex strings (two digits a byte, no
//! separators), and one byte string cut into pieces (for checks that any split of the input
//! decodes the same, FRAME-12).

/// The bytes of the hex string `s`, or a message naming `s` when it is not one (odd length or a
/// pair that is not a hex number).
pub fn try_unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| match e {
        hex::FromHexError::OddLength => format!("odd-length hex string {s:?}"),
        _ => format!("not a hex string: {s:?}"),
    })
}

/// The bytes of the hex string `s`; panics when it is not one.
pub fn unhex(s: &str) -> Vec<u8> {
    try_unhex(s).unwrap_or_else(|e| panic!("{e}"))
}

/// `bytes` as lowercase hex, two digits a byte.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Cuts `bytes` at the points `cuts` (each taken modulo `bytes.len() + 1`, in any order,
/// repeats giving empty pieces); the pieces joined are `bytes`.
pub fn split_at_cuts<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex("00ff7fA0"), [0x00, 0xff, 0x7f, 0xa0]);
        assert_eq!(to_hex(&[0x00, 0xff, 0x7f, 0xa0]), "00ff7fa0");
        assert!(try_unhex("abc").is_err());
        assert!(try_unhex("zz").is_err());
        assert_eq!(unhex(""), Vec::<u8>::new());
    }

    #[test]
    fn pieces_join_to_the_input() {
        let bytes = b"abcdef";
        let pieces = split_at_cuts(bytes, &[4, 2, 9, 2]);
        assert_eq!(pieces.concat(), bytes);
        assert_eq!(pieces.len(), 5);
        assert_eq!(pieces[0], b"ab");
    }
}
