//! The pure core of the results cache: a `query_range` as a step grid,
//! split into intervals (whose answers `super::merge` joins back into
//! one). No I/O; every function here is a plain function of its inputs.
//!
//! Times are whole milliseconds, as Prometheus keeps them. A range query
//! evaluates its expression at `start + k·step` for every `k` with the
//! point not after `end`, each point on its own; so the points of a
//! sub-range whose start is on the same grid are exactly the points of
//! the whole query in that sub-range, and intervals that share no grid
//! point merge into the whole answer without duplicates.

/// Prometheus refuses a range of more points than this ("exceeded maximum
/// resolution of 11,000 points per timeseries"); such ranges are not split
/// (split, they would be answered where Prometheus refuses).
pub(crate) const MAX_POINTS: i64 = 11_000;

/// Most intervals one request is split into; more are not cached.
pub(crate) const MAX_INTERVALS: usize = 1_000;

/// A step grid: `start`, `start + step`, … up to `end`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

/// A time as Prometheus reads it (unix seconds or RFC 3339) in
/// milliseconds, Prometheus' precision.
pub(crate) fn parse_ms(text: &str) -> Option<i64> {
    let seconds = crate::limits::parse_time(text)?;
    let ms = (seconds * 1000.0).round();
    (ms.abs() < 1e15).then_some(ms as i64)
}

/// A step as Prometheus reads it — float seconds, or a duration of the
/// fixed units `ms s m h d w` (`1h30m`) — in whole milliseconds. `None`
/// for anything else (including `y`, whose length differs between
/// libraries, and sub-millisecond steps): such a request is not cached.
pub(crate) fn parse_step_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(seconds) = t.parse::<f64>() {
        let ms = seconds * 1000.0;
        let whole = ms.round();
        return (ms.is_finite() && (1.0..1e15).contains(&whole) && (ms - whole).abs() < 1e-6)
            .then_some(whole as i64);
    }
    let mut total: i64 = 0;
    let mut rest = t;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.bytes().next()? {
                b's' => (1_000, 1),
                b'm' => (60_000, 1),
                b'h' => (3_600_000, 1),
                b'd' => (86_400_000, 1),
                b'w' => (604_800_000, 1),
                _ => return None,
            }
        };
        rest = &rest[len..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (total > 0).then_some(total)
}

impl Range {
    /// The grid of a request, or `None` when Prometheus would refuse it or
    /// answer it some other way than point by point (end before start,
    /// more than [`MAX_POINTS`]).
    pub(crate) fn new(start: i64, end: i64, step: i64) -> Option<Range> {
        if step <= 0 || end < start || (end - start) / step + 1 > MAX_POINTS {
            return None;
        }
        Some(Range { start, end, step })
    }

    /// Start and end rounded down to multiples of the step (Thanos'
    /// `align-range-with-step`).
    pub(crate) fn aligned(self) -> Range {
        Range {
            start: self.start - self.start.rem_euclid(self.step),
            end: self.end - self.end.rem_euclid(self.step),
            step: self.step,
        }
    }

    /// The last grid point, at or before `end`.
    pub(crate) fn last(&self) -> i64 {
        self.start + (self.end - self.start) / self.step * self.step
    }

    /// The range cut at every multiple of `interval` since the epoch: each
    /// piece starts on this range's grid and holds the grid points before
    /// the next multiple; pieces share no point, and together hold all of
    /// them. `None` past [`MAX_INTERVALS`] pieces.
    pub(crate) fn split(&self, interval: i64) -> Option<Vec<Range>> {
        let interval = interval.max(1);
        let last = self.last();
        let mut out = Vec::new();
        let mut a = self.start;
        while a <= last {
            if out.len() == MAX_INTERVALS {
                return None;
            }
            let boundary = (a.div_euclid(interval) + 1) * interval;
            let b = (a + (boundary - 1 - a) / self.step * self.step).min(last);
            out.push(Range {
                start: a,
                end: b,
                step: self.step,
            });
            a = b + self.step;
        }
        Some(out)
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
