//! Cache keys: a SHA-256 of everything that decides an answer. The query
//! is the one the backend is sent — after the tenancy stage, so a scoped
//! caller's query carries its project's matcher — and the mode (privileged,
//! or scoped to which project) is in the key too: an entry of one project
//! cannot be found by another, nor a privileged one by a scoped caller.

use ring::digest::{Context, SHA256};

use super::split::Range;

/// Bumped when what is stored changes shape.
const VERSION: &[u8] = b"aetos-results-v1";

/// What every key of one request shares.
pub(crate) struct Base<'a> {
    /// The configured backend URLs.
    pub(crate) backend: &'a str,
    /// `None`: privileged; else the project a scoped caller is confined to.
    pub(crate) project: Option<&'a str>,
    /// The backend path (`/api/v1/query_range`).
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
}

/// One entry's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) digest: [u8; 32],
}

impl Base<'_> {
    fn context(&self, kind: &[u8]) -> Context {
        let mut c = Context::new(&SHA256);
        // Every field length-prefixed: no two different inputs hash the same bytes.
        let mut field = |bytes: &[u8]| {
            c.update(&(bytes.len() as u64).to_be_bytes());
            c.update(bytes);
        };
        field(VERSION);
        field(kind);
        field(self.backend.as_bytes());
        match self.project {
            None => field(b"privileged"),
            Some(p) => {
                field(b"scoped");
                field(p.as_bytes());
            }
        }
        field(self.path.as_bytes());
        field(self.query.as_bytes());
        c
    }

    /// The key of one piece of a `query_range`.
    pub(crate) fn range(&self, r: Range) -> Key {
        let mut c = self.context(b"range");
        for n in [r.start, r.end, r.step] {
            c.update(&n.to_be_bytes());
        }
        finish(c)
    }

    /// The key of an instant query at `time` (milliseconds).
    pub(crate) fn instant(&self, time: i64) -> Key {
        let mut c = self.context(b"instant");
        c.update(&time.to_be_bytes());
        finish(c)
    }
}

fn finish(c: Context) -> Key {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(c.finish().as_ref());
    Key { digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>(project: Option<&'a str>, query: &'a str) -> Base<'a> {
        Base {
            backend: "http://127.0.0.1:9090",
            project,
            path: "/api/v1/query_range",
            query,
        }
    }

    const R: Range = Range {
        start: 0,
        end: 60_000,
        step: 15_000,
    };

    #[test]
    fn keys_differ_by_mode_project_query_range_and_backend() {
        let k = base(None, "up").range(R);
        assert_eq!(k, base(None, "up").range(R));
        let others = [
            base(Some("p1"), "up").range(R),
            base(Some("p2"), "up").range(R),
            base(None, "up2").range(R),
            base(None, "up").range(Range { step: 30_000, ..R }),
            base(None, "up").range(Range { start: 15_000, ..R }),
            base(None, "up").range(Range { end: 45_000, ..R }),
            base(None, "up").instant(0),
            Base {
                backend: "http://other:9090",
                ..base(None, "up")
            }
            .range(R),
        ];
        for (i, o) in others.iter().enumerate() {
            assert_ne!(k, *o, "#{i}");
        }
        assert_ne!(others[0], others[1]);
    }
}
