use super::*;

/// Every grid point of `r`.
fn points(r: &Range) -> Vec<i64> {
    (0..)
        .map(|k| r.start + k * r.step)
        .take_while(|t| *t <= r.end)
        .collect()
}

#[test]
fn steps_are_read_as_prometheus_reads_them() {
    assert_eq!(parse_step_ms("30"), Some(30_000));
    assert_eq!(parse_step_ms("7.5"), Some(7_500));
    assert_eq!(parse_step_ms("61s"), Some(61_000));
    assert_eq!(parse_step_ms("1h30m"), Some(5_400_000));
    assert_eq!(parse_step_ms("250ms"), Some(250));
    assert_eq!(parse_step_ms("1w"), Some(604_800_000));
    // Not cached: other units, sub-millisecond steps, nonsense, zero.
    assert_eq!(parse_step_ms("1y"), None);
    assert_eq!(parse_step_ms("0.0001"), None);
    assert_eq!(parse_step_ms("0"), None);
    assert_eq!(parse_step_ms("-5"), None);
    assert_eq!(parse_step_ms("5x"), None);
    assert_eq!(parse_step_ms(""), None);
    assert_eq!(parse_step_ms("NaN"), None);
}

#[test]
fn times_are_milliseconds() {
    assert_eq!(parse_ms("1700000000.123"), Some(1_700_000_000_123));
    assert_eq!(parse_ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
    assert_eq!(parse_ms("yesterday"), None);
}

#[test]
fn ranges_prometheus_refuses_are_not_split() {
    assert_eq!(Range::new(10, 5, 1), None);
    assert_eq!(Range::new(0, 11_000, 1), None);
    assert!(Range::new(0, 10_999, 1).is_some());
    assert_eq!(Range::new(0, 10, 0), None);
}

#[test]
fn alignment_rounds_down_to_the_step() {
    let r = Range::new(1_007, 9_999, 100).unwrap().aligned();
    assert_eq!((r.start, r.end), (1_000, 9_900));
    let r = Range::new(-150, 50, 100).unwrap().aligned();
    assert_eq!((r.start, r.end), (-200, 0));
}

#[test]
fn split_pieces_hold_every_point_once_and_stay_on_the_grid() {
    let day = 86_400_000;
    for (start, end, step) in [
        (0, 3 * day, 60_000),
        (123_456, 2 * day + 17, 17_000),
        (day - 1, day + 1, 1),
        (5 * day + 999, 9 * day, 61_000),
        (0, 10 * day, 2 * day + 3),
        (7, 7, 1_000),
    ] {
        let r = Range::new(start, end, step).unwrap();
        let pieces = r.split(day).unwrap();
        let joined: Vec<i64> = pieces.iter().flat_map(points).collect();
        assert_eq!(joined, points(&r), "{r:?}");
        for p in &pieces {
            assert_eq!((p.start - r.start) % step, 0, "{p:?} off the grid");
            assert_eq!(
                p.start.div_euclid(day),
                p.end.div_euclid(day),
                "{p:?} crosses a boundary"
            );
            assert!(p.end <= r.end);
        }
    }
}

#[test]
fn split_cuts_at_multiples_of_the_interval() {
    let r = Range::new(50, 250, 10).unwrap();
    let cuts: Vec<(i64, i64)> = r
        .split(100)
        .unwrap()
        .iter()
        .map(|p| (p.start, p.end))
        .collect();
    assert_eq!(cuts, [(50, 90), (100, 190), (200, 250)]);
    // A start off the interval's grid keeps its own grid.
    let r = Range::new(55, 250, 30).unwrap();
    let cuts: Vec<(i64, i64)> = r
        .split(100)
        .unwrap()
        .iter()
        .map(|p| (p.start, p.end))
        .collect();
    assert_eq!(cuts, [(55, 85), (115, 175), (205, 235)]);
}

#[test]
fn too_many_pieces_are_not_split() {
    let r = Range::new(0, 10_000, 1).unwrap();
    assert!(r.split(1).is_none());
    assert!(r.split(100).is_some());
}
