//! A window's changes merged per key (README "Mirror: writeMode upsert"): a task
//! sends each key once, so the result does not depend on how the service orders
//! records of one session, and the last change of the window wins.
//!
//! Input records follow reader-otsstream's `row_change` layout: `[op, states, d_1,
//! …, d_m]`, the `d_i` in the order of the writer's `column`; `states` has one
//! character per data column that is not a key column: `U` set, `D` deleted, `-`
//! untouched.

use std::collections::HashMap;

use protocol::value::Value;

/// What one change does to a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The row is replaced: the value columns are `values` (null where deleted).
    Put,
    /// Only the columns marked set or deleted change.
    Update,
    Delete,
}

/// The net effect of a key's changes so far.
#[derive(Clone, Debug, PartialEq)]
pub enum Net {
    /// The row is gone.
    Delete,
    /// The whole row: every value column (null where absent).
    Row(Vec<Value>),
    /// Some columns changed on a row whose other columns are unknown here: `None`
    /// for untouched, `Some(Null)` for deleted.
    Partial(Vec<Option<Value>>),
}

/// One parsed input change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub op: Op,
    /// Key values, in the order of the writer's key columns.
    pub key: Vec<Value>,
    /// Per value column: `None` untouched, `Some(v)` set (null = deleted).
    pub values: Vec<Option<Value>>,
}

/// Where the parts of an input record are.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Data-column index of each key column, in key order.
    pub key_at: Vec<usize>,
    /// Data-column index of each value column, in order.
    pub value_at: Vec<usize>,
}

impl Layout {
    /// Data columns of a record: `[op, states, data…]`, optionally followed by one
    /// sequence-info column (ignored).
    pub fn parse(&self, record: &[Value]) -> Result<Change, String> {
        let m = self.key_at.len() + self.value_at.len();
        if record.len() != m + 2 && record.len() != m + 3 {
            return Err(format!(
                "a row-change record has {} columns; with {m} columns configured it must have {} ([op, states, columns…] as reader-otsstream mode row_change writes)",
                record.len(),
                m + 2
            ));
        }
        let op = match &record[0] {
            Value::String(s) if s == "put" => Op::Put,
            Value::String(s) if s == "update" => Op::Update,
            Value::String(s) if s == "delete" => Op::Delete,
            other => {
                return Err(format!(
                    "the first column of a row-change record must be put, update or delete, not {other:?}"
                ))
            }
        };
        let states = match &record[1] {
            Value::String(s) if s.len() == self.value_at.len() => s.as_bytes(),
            other => {
                return Err(format!(
                    "the second column of a row-change record must be a state string of {} characters (U, D or -), not {other:?}",
                    self.value_at.len()
                ))
            }
        };
        let data = &record[2..2 + m];
        let mut key = Vec::with_capacity(self.key_at.len());
        for &i in &self.key_at {
            if data[i] == Value::Null {
                return Err(format!(
                    "key column {} of a row-change record is null",
                    i + 1
                ));
            }
            key.push(data[i].clone());
        }
        let mut values = Vec::with_capacity(self.value_at.len());
        for (&i, &s) in self.value_at.iter().zip(states) {
            values.push(match (&op, s) {
                (Op::Delete, _) | (_, b'-') => None,
                (_, b'U') => Some(data[i].clone()),
                (_, b'D') => Some(Value::Null),
                (_, other) => {
                    return Err(format!(
                        "state {:?} of a row-change record is not U, D or -",
                        other as char
                    ))
                }
            });
        }
        Ok(Change { op, key, values })
    }
}

/// Applies `change` after `before` (`None`: no change of the key yet).
pub fn merge(before: Option<Net>, change: Change) -> Net {
    match change.op {
        Op::Delete => Net::Delete,
        // A put replaces the row: untouched columns of a put do not exist.
        Op::Put => Net::Row(
            change
                .values
                .into_iter()
                .map(|v| v.unwrap_or(Value::Null))
                .collect(),
        ),
        Op::Update => match before {
            None => Net::Partial(change.values),
            // An update of a deleted row makes a new row of just its columns.
            Some(Net::Delete) => Net::Row(
                change
                    .values
                    .into_iter()
                    .map(|v| v.unwrap_or(Value::Null))
                    .collect(),
            ),
            Some(Net::Row(mut row)) => {
                for (slot, v) in row.iter_mut().zip(change.values) {
                    if let Some(v) = v {
                        *slot = v;
                    }
                }
                Net::Row(row)
            }
            Some(Net::Partial(mut cols)) => {
                for (slot, v) in cols.iter_mut().zip(change.values) {
                    if v.is_some() {
                        *slot = v;
                    }
                }
                Net::Partial(cols)
            }
        },
    }
}

/// A stable map key for key values (values of one column have one type).
pub fn key_bytes(key: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * key.len());
    for v in key {
        match v {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend([1, u8::from(*b)]),
            Value::Long(l) => {
                out.push(2);
                out.extend(l.to_le_bytes());
            }
            Value::Double(d) => {
                out.push(3);
                out.extend(d.to_bits().to_le_bytes());
            }
            Value::Date(ms) => {
                out.push(4);
                out.extend(ms.to_le_bytes());
            }
            Value::Decimal(s) | Value::String(s) => {
                out.push(5);
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(6);
                out.extend((b.len() as u64).to_le_bytes());
                out.extend(b);
            }
        }
    }
    out
}

/// The merged changes of one task: key bytes → (key values, net change).
#[derive(Default)]
pub struct Window {
    pub keys: HashMap<Vec<u8>, (Vec<Value>, Net)>,
    pub changes: u64,
}

impl Window {
    pub fn apply(&mut self, change: Change) {
        self.changes += 1;
        let k = key_bytes(&change.key);
        match self.keys.get_mut(&k) {
            Some((_, net)) => {
                let before = std::mem::replace(net, Net::Delete);
                *net = merge(Some(before), change);
            }
            None => {
                let key = change.key.clone();
                self.keys.insert(k, (key, merge(None, change)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn layout() -> Layout {
        // Data columns: id, a, b, c (id is the key).
        Layout {
            key_at: vec![0],
            value_at: vec![1, 2, 3],
        }
    }

    fn change(op: &str, states: &str, vals: [Value; 3]) -> Change {
        let mut r = vec![s(op), s(states), s("k")];
        r.extend(vals);
        layout().parse(&r).unwrap()
    }

    const N: Value = Value::Null;

    #[test]
    fn records_are_parsed_by_their_states() {
        let c = change("update", "U-D", [Value::Long(1), N, N]);
        assert_eq!(c.op, Op::Update);
        assert_eq!(c.key, vec![s("k")]);
        assert_eq!(c.values, vec![Some(Value::Long(1)), None, Some(N)]);
        let d = change("delete", "---", [N, N, N]);
        assert_eq!(d.values, vec![None, None, None]);
        let l = layout();
        for (bad, what) in [
            (vec![s("put"), s("UUU"), s("k")], "columns"),
            (
                vec![s("upsert"), s("UUU"), s("k"), N, N, N],
                "put, update or delete",
            ),
            (vec![s("put"), s("UU"), s("k"), N, N, N], "state string"),
            (vec![s("put"), s("UUX"), s("k"), N, N, N], "not U, D or -"),
            (vec![s("put"), s("UUU"), N, N, N, N], "null"),
        ] {
            let e = l.parse(&bad).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
        // A trailing sequence-info column is accepted and ignored.
        let mut r = vec![s("put"), s("UUU"), s("k"), N, N, N, s("seq")];
        assert!(l.parse(&r).is_ok());
        r.push(N);
        assert!(l.parse(&r).is_err());
    }

    #[test]
    fn the_last_change_of_a_key_wins() {
        let put = change("put", "UDU", [Value::Long(1), N, s("x")]);
        let upd = change("update", "-UD", [N, Value::Long(2), N]);
        let del = change("delete", "---", [N, N, N]);
        // put then update: the whole row with the update applied.
        let net = merge(Some(merge(None, put.clone())), upd.clone());
        assert_eq!(net, Net::Row(vec![Value::Long(1), Value::Long(2), N]));
        // update alone stays partial; two updates combine, the later one winning.
        let upd2 = change("update", "UU-", [Value::Long(5), Value::Long(6), N]);
        let net = merge(Some(merge(None, upd.clone())), upd2);
        assert_eq!(
            net,
            Net::Partial(vec![Some(Value::Long(5)), Some(Value::Long(6)), Some(N)])
        );
        // delete then update: a new row of the update's columns only.
        let net = merge(Some(merge(None, del.clone())), upd.clone());
        assert_eq!(net, Net::Row(vec![N, Value::Long(2), N]));
        // anything then delete, anything then put.
        assert_eq!(merge(Some(net.clone()), del), Net::Delete);
        assert_eq!(
            merge(Some(Net::Partial(vec![None, None, None])), put),
            Net::Row(vec![Value::Long(1), N, s("x")])
        );
    }

    #[test]
    fn a_window_keeps_one_entry_per_key() {
        let mut w = Window::default();
        let l = layout();
        for (op, st, k, v) in [
            ("put", "UUU", "a", 1),
            ("put", "UUU", "b", 2),
            ("update", "U--", "a", 3),
            ("delete", "---", "b", 0),
        ] {
            let r = vec![s(op), s(st), s(k), Value::Long(v), N, N];
            w.apply(l.parse(&r).unwrap());
        }
        assert_eq!(w.changes, 4);
        assert_eq!(w.keys.len(), 2);
        assert_eq!(
            w.keys[&key_bytes(&[s("a")])].1,
            Net::Row(vec![Value::Long(3), N, N])
        );
        assert_eq!(w.keys[&key_bytes(&[s("b")])].1, Net::Delete);
        assert_ne!(key_bytes(&[s("a"), s("b")]), key_bytes(&[s("ab"), s("")]));
    }
}
