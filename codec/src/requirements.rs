//! The requirement ids of the specification, as `spec/requirements.json` lists them, and
//! [`req!`](crate::req), which cites one: an id that is not in the list does not compile.
//!
//! The list between the markers below is generated: `UPDATE_REQUIREMENTS=1 cargo test -p
//! rpcplugin-codec --test spec_coverage` rewrites it with `spec/requirements.json`, and that
//! test fails while the two differ.

/// Every requirement id of the specification, in the order of `spec/requirements.json`.
pub const IDS: &[&str] = &[
    // BEGIN GENERATED IDS
    "TRANS-1",
    "TRANS-2",
    "TRANS-3",
    "TRANS-4",
    "TRANS-12",
    "TRANS-5",
    "TRANS-6",
    "TRANS-7",
    "TRANS-8",
    "TRANS-9",
    "TRANS-10",
    "TRANS-11",
    "TRANS-13",
    "TRANS-14",
    "TRANS-15",
    "TRANS-16",
    "FRAME-1",
    "FRAME-2",
    "FRAME-3",
    "FRAME-4",
    "FRAME-5",
    "FRAME-6",
    "FRAME-7",
    "FRAME-8",
    "FRAME-9",
    "FRAME-10",
    "FRAME-11",
    "FRAME-12",
    "FRAME-13",
    "FRAME-14",
    "STREAM-1",
    "STREAM-2",
    "STREAM-3",
    "STREAM-4",
    "STREAM-5",
    "STREAM-6",
    "STREAM-7",
    "STREAM-8",
    "STREAM-9",
    "STREAM-10",
    "STREAM-11",
    "STREAM-12",
    "STREAM-13",
    "STREAM-15",
    "STREAM-14",
    "HS-1",
    "HS-2",
    "HS-3",
    "HS-4",
    "HS-5",
    "HS-9",
    "HS-6",
    "HS-7",
    "HS-8",
    "GOB-1",
    "GOB-2",
    "GOB-3",
    "GOB-4",
    "GOB-5",
    "GOB-6",
    "GOB-7",
    "GOB-8",
    "GOB-9",
    "GOB-10",
    "GOB-11",
    "GOB-12",
    "GOB-13",
    "GOB-14",
    "GOB-20",
    "GOB-21",
    "GOB-15",
    "GOB-16",
    "GOB-19",
    "GOB-17",
    "GOB-18",
    "RPC-1",
    "RPC-2",
    "RPC-3",
    "RPC-4",
    "RPC-5",
    "RPC-6",
    "RPC-7",
    "RPC-8",
    "RPC-9",
    "RPC-21",
    "RPC-10",
    "RPC-11",
    "RPC-19",
    "RPC-12",
    "RPC-13",
    "RPC-14",
    "RPC-20",
    "RPC-15",
    "RPC-16",
    "RPC-17",
    "RPC-18",
    "LIFE-1",
    "LIFE-2",
    "LIFE-3",
    "LIFE-4",
    "LIFE-5",
    "LIFE-6",
    "LIFE-7",
    "LIFE-8",
    "LIFE-9",
    "LIFE-10",
    "LIFE-11",
    "LIFE-12",
    "LIFE-13",
    "LIFE-14",
    "LIFE-15",
    "LIFE-16",
    "LIFE-17",
    "LIFE-18",
    "LIFE-19",
    "LIFE-20",
    "LIFE-22",
    "LIFE-23",
    "LIFE-21",
    "DRV-1",
    "DRV-2",
    "DRV-3",
    "DRV-4",
    "DRV-5",
    "DRV-6",
    "DRV-7",
    "DRV-8",
    "DRV-9",
    "DRV-10",
    "DRV-11",
    "DRV-12",
    // END GENERATED IDS
];

/// `id`, if it is one of [`IDS`], or alternatives of them separated by `|` (`"GOB-2|GOB-4"`:
/// any one of them); evaluated in a constant (as [`req!`](crate::req) does), an unknown id is a
/// compile error.
pub const fn checked(id: &'static str) -> &'static str {
    let bytes = id.as_bytes();
    let mut start = 0;
    let mut end = 0;
    while end <= bytes.len() {
        if end == bytes.len() || bytes[end] == b'|' {
            if !listed(bytes, start, end) {
                panic!("not a requirement id of spec/requirements.json");
            }
            start = end + 1;
        }
        end += 1;
    }
    id
}

/// Whether `id` is one of [`IDS`].
pub fn is_requirement(id: &str) -> bool {
    IDS.contains(&id)
}

/// Whether `bytes[start..end]` is one of [`IDS`].
const fn listed(bytes: &[u8], start: usize, end: usize) -> bool {
    let mut i = 0;
    while i < IDS.len() {
        let candidate = IDS[i].as_bytes();
        if candidate.len() == end - start {
            let mut k = 0;
            while k < candidate.len() && candidate[k] == bytes[start + k] {
                k += 1;
            }
            if k == candidate.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Cites a requirement of the specification by its id (`req!("FRAME-4")`): the id as a
/// `&'static str`, checked at compile time against [`IDS`](crate::requirements::IDS).
///
/// ```
/// assert_eq!(rpcplugin_codec::req!("FRAME-4"), "FRAME-4");
/// ```
///
/// An id that the specification does not have is a compile error:
///
/// ```compile_fail
/// let id = rpcplugin_codec::req!("FRAME-999");
/// ```
#[macro_export]
macro_rules! req {
    ($id:literal) => {{
        const ID: &str = $crate::requirements::checked($id);
        ID
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(checked("FRAME-4"), "FRAME-4");
        assert_eq!(crate::req!("LIFE-23"), "LIFE-23");
        assert!(is_requirement("HS-9"));
        assert!(!is_requirement("HS-99"));
        assert!(!is_requirement("FRAME-"));
        assert_eq!(checked("GOB-2|GOB-4"), "GOB-2|GOB-4");
    }

    #[test]
    #[should_panic(expected = "not a requirement id")]
    fn an_unknown_alternative_is_refused() {
        let id = String::from("GOB-2|GOB-99");
        checked(Box::leak(id.into_boxed_str()));
    }

    #[test]
    #[should_panic(expected = "not a requirement id")]
    fn an_unknown_id_is_refused() {
        // At run time here; in a constant (req!) the same is a compile error.
        let id = String::from("FRAME-999");
        checked(Box::leak(id.into_boxed_str()));
    }
}
