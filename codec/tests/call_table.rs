//! [`CallTable`] against a map model: any sequence of inserts (in order, out of order, or
//! repeated), completions (of pending, answered or unknown `Seq`s) and drains gives what a
//! `BTreeMap` gives (RPC-6: a response matches its call by `Seq`; one for no pending call
//! matches nothing).

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use rpcplugin_codec::rpc::CallTable;

#[derive(Debug, Clone)]
enum Op {
    /// A new call after every `Seq` so far (what a client does), plus this offset.
    Next(u64),
    /// A call with any `Seq`.
    Insert(u64),
    Complete(u64),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3).prop_map(Op::Next),
        1 => (0u64..20).prop_map(Op::Insert),
        4 => (0u64..20).prop_map(Op::Complete),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    // covers: RPC-6
    #[test]
    fn the_call_table_behaves_as_a_map(ops in vec(op(), 0..60)) {
        let mut table = CallTable::new();
        let mut model = BTreeMap::new();
        let mut next = 0u64;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Next(skip) => {
                    next += skip;
                    let fresh = !model.contains_key(&next);
                    prop_assert_eq!(table.insert(next, i), fresh);
                    model.entry(next).or_insert(i);
                    next += 1;
                }
                Op::Insert(seq) => {
                    let fresh = !model.contains_key(&seq);
                    prop_assert_eq!(table.insert(seq, i), fresh);
                    model.entry(seq).or_insert(i);
                    next = next.max(seq + 1);
                }
                Op::Complete(seq) => prop_assert_eq!(table.complete(seq), model.remove(&seq)),
                Op::Drain => {
                    let want: Vec<(u64, usize)> = std::mem::take(&mut model).into_iter().collect();
                    prop_assert_eq!(table.drain(), want);
                }
            }
            prop_assert_eq!(table.len(), model.len());
            prop_assert_eq!(table.is_empty(), model.is_empty());
        }
    }
}
