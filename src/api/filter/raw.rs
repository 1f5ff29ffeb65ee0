//! Borrowed views of a JSON document, for filtering it without building a
//! `serde_json::Value` tree.
//!
//! A `Value` costs about ten times the text it was parsed from, and its many
//! small allocations stay with the allocator afterwards. Here an object is
//! only its members in order, each value left as the raw text it was
//! (`&RawValue`, a slice of the body), and a key or string is decoded only
//! when it holds an escape. Whatever the filter keeps is copied to the
//! output byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the document unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object: its members in document order (duplicates kept), each
/// value as raw text.
#[derive(Debug, Default)]
pub struct RawObject<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawObject<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(Str(k)) = m.next_key::<Str<'de>>()? {
                    let v: &'de RawValue = m.next_value()?;
                    members.push((k, v));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> RawObject<'a> {
    /// The value of `key`; with duplicates the last one, as `serde_json`
    /// and Go read it.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The string value of `key` when every occurrence of it is the same
    /// string; `None` when it is absent, not a string, or ambiguous.
    pub fn unique_str(&self, key: &str) -> Option<Cow<'a, str>> {
        let mut found: Option<Cow<'a, str>> = None;
        for (_, v) in self.0.iter().filter(|(k, _)| k == key) {
            let s = string(v)?;
            match &found {
                Some(f) if *f != s => return None,
                Some(_) => {}
                None => found = Some(s),
            }
        }
        found
    }
}

/// `raw` as an object, if it is one.
pub fn object<'a>(raw: &'a RawValue) -> Option<RawObject<'a>> {
    serde_json::from_str(raw.get()).ok()
}

/// `raw` as an array of raw elements; `null` counts as empty (Go encodes a
/// nil slice as `null`).
pub fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if raw.get() == "null" {
        return Some(Vec::new());
    }
    serde_json::from_str(raw.get()).ok()
}

/// `raw` as a string, if it is one.
pub fn string<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    serde_json::from_str::<Str<'a>>(raw.get()).ok().map(|s| s.0)
}

/// Appends `s` as a JSON string. A key borrowed from the document has no
/// escapes, so it is written back exactly as it was.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `"key":`.
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
    out.push(b':');
}

/// Appends a raw value unchanged.
pub fn write_raw(out: &mut Vec<u8>, raw: &RawValue) {
    out.extend_from_slice(raw.get().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_order_duplicates_and_raw_text() {
        let doc = r#"{"b": [1, 2], "a\u0041":{"x" : 1},"b":"\u00e9"}"#;
        let o: RawObject = serde_json::from_str(doc).unwrap();
        let keys: Vec<&str> = o.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "aA", "b"]);
        assert!(matches!(o.0[0].0, Cow::Borrowed(_)));
        assert!(matches!(o.0[1].0, Cow::Owned(_)));
        assert_eq!(o.0[0].1.get(), "[1, 2]");
        assert_eq!(o.0[1].1.get(), r#"{"x" : 1}"#);
        assert_eq!(o.get("b").unwrap().get(), r#""\u00e9""#);
        assert_eq!(string(o.get("b").unwrap()).unwrap(), "é");
    }

    #[test]
    fn unique_str_refuses_ambiguous_or_non_string_values() {
        let o: RawObject =
            serde_json::from_str(r#"{"p":"A","p":"A","q":"A","q":"B","n":1}"#).unwrap();
        assert_eq!(o.unique_str("p").as_deref(), Some("A"));
        assert_eq!(o.unique_str("q"), None);
        assert_eq!(o.unique_str("n"), None);
        assert_eq!(o.unique_str("missing"), None);
    }

    #[test]
    fn arrays_and_null() {
        let v: &RawValue = serde_json::from_str("[ {\"a\":1} ,2]").unwrap();
        let a = array(v).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].get(), "{\"a\":1}");
        let n: &RawValue = serde_json::from_str("null").unwrap();
        assert!(array(n).unwrap().is_empty());
        let s: &RawValue = serde_json::from_str("\"x\"").unwrap();
        assert!(array(s).is_none());
        assert!(object(s).is_none());
    }

    #[test]
    fn keys_are_written_back_exactly() {
        let mut out = Vec::new();
        write_key(&mut out, "a\"b");
        write_str(&mut out, "plain");
        assert_eq!(out, br#""a\"b":"plain""#);
    }
}
