//! Varint decoding (FRAME-2, FRAME-3, FRAME-4): whatever the bytes, a decoded value re-encodes
//! minimally (no longer than what was read) and round-trips; errors are the ones Go reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::varint::{self, VarintError, MAX_LEN};

fuzz_target!(|data: &[u8]| {
    match varint::decode(data) {
        Ok((v, n)) => {
            assert!((1..=MAX_LEN).contains(&n) && n <= data.len(), "n = {n}");
            // The bytes read are continuation bytes then one final byte.
            assert!(data[..n - 1].iter().all(|b| b & 0x80 != 0));
            assert!(data[n - 1] & 0x80 == 0);
            // The prefix alone decodes the same (nothing after it is looked at).
            assert_eq!(varint::decode(&data[..n]), Ok((v, n)));
            // Minimal re-encoding.
            let mut buf = [0u8; MAX_LEN];
            let m = varint::encode(v, &mut buf);
            assert!(
                m <= n,
                "re-encoding {v} takes {m} bytes, more than the {n} read"
            );
            assert_eq!(m, varint::encoded_len(v));
            assert!(
                m == 1 || buf[m - 1] != 0,
                "non-minimal encoding of {v}: {:02x?}",
                &buf[..m]
            );
            assert_eq!(varint::decode(&buf[..m]), Ok((v, m)));
            // A minimal input is exactly the encoding.
            if data[n - 1] != 0 || n == 1 {
                assert_eq!(&buf[..m], &data[..n]);
            }
            // Signed and unsigned decoding agree through zigzag.
            let (u, un) = varint::decode_unsigned(data).unwrap();
            assert_eq!((varint::unzigzag(u), un), (v, n));
            assert_eq!(varint::zigzag(v), u);
            let mut vec = vec![0xAA];
            varint::encode_to_vec(v, &mut vec);
            assert_eq!(&vec[1..], &buf[..m]);
        }
        Err(VarintError::Incomplete { have }) => {
            assert_eq!(have, data.len());
            assert!(have < MAX_LEN);
            assert!(data.iter().all(|b| b & 0x80 != 0));
        }
        Err(VarintError::Overflow { len }) => {
            assert_eq!(len, MAX_LEN);
            assert!(data.len() >= MAX_LEN);
            assert!(data[..MAX_LEN - 1].iter().all(|b| b & 0x80 != 0));
            assert!(data[MAX_LEN - 1] > 1);
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
    // Any value round-trips.
    if data.len() >= 8 {
        let v = i64::from_le_bytes(data[..8].try_into().unwrap());
        let mut buf = [0u8; MAX_LEN];
        let m = varint::encode(v, &mut buf);
        assert_eq!(varint::decode(&buf[..m]), Ok((v, m)));
        assert_eq!(m, varint::encoded_len(v));
        let mut ubuf = [0u8; MAX_LEN];
        let um = varint::encode_unsigned(varint::zigzag(v), &mut ubuf);
        assert_eq!(&ubuf[..um], &buf[..m]);
    }
});
