//! `application/x-www-form-urlencoded`, as `url::form_urlencoded` reads and
//! writes it, byte for byte, without its per-byte iterator chains: the
//! scoped hot path decodes and re-encodes every parameter of every request.
//! A piece without `%` or `+` is borrowed, not copied.

use std::borrow::Cow;

/// One `name=value` pair per non-empty `&`-separated piece, decoded
/// (`+` is a space, `%XX` a byte, invalid escapes kept, UTF-8 lossy).
pub fn parse(s: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    s.split('&').filter(|p| !p.is_empty()).map(|piece| {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        (decode(k), decode(v))
    })
}

/// Whether any pair's decoded name is `key`.
pub fn has_key(s: &str, key: &str) -> bool {
    s.split('&')
        .filter(|p| !p.is_empty())
        .any(|piece| decode(piece.split_once('=').map_or(piece, |(k, _)| k)) == key)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One name or value, decoded.
pub fn decode(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Bytes written as they are: ASCII alphanumerics and `*-._`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// Appends `s` encoded (space as `+`, other reserved bytes as `%XX`).
pub fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut run = 0;
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if unreserved(c) {
            continue;
        }
        if run < i {
            // `run` follows an ASCII byte (or is 0): a char boundary.
            out.push_str(&s[run..i]);
        }
        if c == b' ' {
            out.push('+');
        } else {
            out.push(char::from(b'%'));
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
}

/// Appends `name=value`, with `&` before it unless `out` is empty.
pub fn append_pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    encode_into(out, name);
    out.push('=');
    encode_into(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use url::form_urlencoded;

    fn ours(s: &str) -> Vec<(String, String)> {
        parse(s)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn theirs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn tricky_inputs_decode_as_form_urlencoded_does() {
        for s in [
            "",
            "&",
            "&&a",
            "a",
            "a=",
            "=",
            "=b",
            "a=b=c",
            "a+b=c+d",
            "%",
            "%2",
            "%2+",
            "%zz=%4",
            "%2B=%2b",
            "q=%E2%82%AC",
            "q=%FF%FE",
            "match%5B%5D=up&match[]=x",
            "a=%25%32%35",
            "k=%C3",
            "k=%c3%a9+%",
        ] {
            assert_eq!(ours(s), theirs(s), "{s:?}");
            for (k, _) in theirs(s) {
                assert!(has_key(s, &k), "{s:?} has {k:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn parsing_equals_form_urlencoded(s in "[a-z=&%+0-9A-Fa-f€\\[\\] ;]{0,40}") {
            prop_assert_eq!(ours(&s), theirs(&s));
        }

        #[test]
        fn encoding_equals_form_urlencoded(k in "\\PC{0,20}", v in "\\PC{0,40}") {
            let mut out = String::from("x=1");
            append_pair(&mut out, &k, &v);
            let want = form_urlencoded::Serializer::new(String::from("x=1"))
                .append_pair(&k, &v)
                .finish();
            prop_assert_eq!(out, want);
        }
    }
}
