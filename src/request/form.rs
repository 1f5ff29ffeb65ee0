//! `application/x-www-form-urlencoded`, as `url::form_urlencoded` reads and
//! writes it, byte for byte, without its per-byte iterator chains: the
//! scoped hot path decodes and re-encodes every parameter of every request.
//! A piece without `%` or `+` is borrowed, not copied.

use std::borrow::Cow;

/// The non-empty `&`-separated pieces of `s`, found by a vectorised byte
/// search (a query is often a kilobyte with a few pieces).
pub fn pieces(s: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b'&', s.as_bytes())
        .chain(std::iter::once(s.len()))
        .map(move |end| {
            // `&` is ASCII: both ends are character boundaries.
            let piece = &s[start..end];
            start = end + 1;
            piece
        })
        .filter(|p| !p.is_empty())
}

/// One `name=value` pair per non-empty `&`-separated piece, decoded
/// (`+` is a space, `%XX` a byte, invalid escapes kept, UTF-8 lossy).
pub fn parse(s: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    pieces(s).map(|piece| {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        (decode(k), decode(v))
    })
}

/// Whether any pair's decoded name is `key`.
pub fn has_key(s: &str, key: &str) -> bool {
    pieces(s).any(|piece| decode(piece.split_once('=').map_or(piece, |(k, _)| k)) == key)
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
    let Some(first) = b.iter().position(|&c| c == b'%' || c == b'+') else {
        return Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut i = first;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match escape_at(b, i) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                // A run of plain bytes, copied at once.
                let run = b[i..]
                    .iter()
                    .position(|&c| c == b'%' || c == b'+')
                    .map_or(b.len(), |n| i + n);
                out.extend_from_slice(&b[i..run]);
                i = run;
            }
        }
    }
    Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The byte `%XX` at `i` stands for, if `XX` are two hex digits.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let h = hex(*b.get(i + 1)?)?;
    let l = hex(*b.get(i + 2)?)?;
    Some(h << 4 | l)
}

/// The bytes of `s` decoded, before any UTF-8 repair: what [`decode`]
/// returns for valid UTF-8, without building it (for size limits).
pub fn decoded_len(s: &str) -> usize {
    let b = s.as_bytes();
    let escapes = memchr::memchr_iter(b'%', b)
        .filter(|&i| escape_at(b, i).is_some())
        .count();
    b.len() - 2 * escapes
}

/// Bytes written as they are: ASCII alphanumerics and `*-._`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// `%XX` of every byte, three characters each.
const ESCAPES: &str = concat!(
    "%00%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14%15%16%17%18%19%1A%1B%1C%1D%1E%1F",
    "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2D%2E%2F%30%31%32%33%34%35%36%37%38%39%3A%3B%3C%3D%3E%3F",
    "%40%41%42%43%44%45%46%47%48%49%4A%4B%4C%4D%4E%4F%50%51%52%53%54%55%56%57%58%59%5A%5B%5C%5D%5E%5F",
    "%60%61%62%63%64%65%66%67%68%69%6A%6B%6C%6D%6E%6F%70%71%72%73%74%75%76%77%78%79%7A%7B%7C%7D%7E%7F",
    "%80%81%82%83%84%85%86%87%88%89%8A%8B%8C%8D%8E%8F%90%91%92%93%94%95%96%97%98%99%9A%9B%9C%9D%9E%9F",
    "%A0%A1%A2%A3%A4%A5%A6%A7%A8%A9%AA%AB%AC%AD%AE%AF%B0%B1%B2%B3%B4%B5%B6%B7%B8%B9%BA%BB%BC%BD%BE%BF",
    "%C0%C1%C2%C3%C4%C5%C6%C7%C8%C9%CA%CB%CC%CD%CE%CF%D0%D1%D2%D3%D4%D5%D6%D7%D8%D9%DA%DB%DC%DD%DE%DF",
    "%E0%E1%E2%E3%E4%E5%E6%E7%E8%E9%EA%EB%EC%ED%EE%EF%F0%F1%F2%F3%F4%F5%F6%F7%F8%F9%FA%FB%FC%FD%FE%FF",
);

/// Appends `s` encoded (space as `+`, other reserved bytes as `%XX`).
pub fn encode_into(out: &mut String, s: &str) {
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
            let at = 3 * usize::from(c);
            out.push_str(&ESCAPES[at..at + 3]);
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
    fn the_escape_table_is_every_byte_in_order() {
        for b in 0..=255u8 {
            let at = 3 * usize::from(b);
            assert_eq!(&ESCAPES[at..at + 3], format!("%{b:02X}"));
        }
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
        fn pieces_are_the_non_empty_ampersand_separated_parts(s in "[a&b=€]{0,40}") {
            let want: Vec<&str> = s.split('&').filter(|p| !p.is_empty()).collect();
            prop_assert_eq!(pieces(&s).collect::<Vec<_>>(), want);
        }

        #[test]
        fn parsing_equals_form_urlencoded(s in "[a-z=&%+0-9A-Fa-f€\\[\\] ;]{0,40}") {
            prop_assert_eq!(ours(&s), theirs(&s));
        }

        #[test]
        fn decoded_len_is_the_decoded_length_of_utf8(s in "[a-z%+0-9A-F€ ]{0,40}") {
            let d = decode(&s);
            // Valid UTF-8 once decoded: the lengths agree exactly.
            if !d.contains('\u{fffd}') {
                prop_assert_eq!(decoded_len(&s), d.len());
            }
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
