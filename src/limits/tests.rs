use super::*;

fn key(p: &str) -> LimitKey {
    LimitKey {
        privileged: false,
        project: p.to_owned(),
    }
}

fn values() -> LimitValues {
    LimitValues {
        max_concurrent_requests: 2,
        max_queued_requests: 1,
        max_queue_time: Duration::from_millis(200),
        ..LimitValues::unlimited()
    }
}

#[tokio::test]
async fn concurrency_queues_then_refuses_per_project() {
    let l = Limits::new(values(), None).unwrap();
    let a1 = l.admit(&key("a")).await.unwrap();
    let _a2 = l.admit(&key("a")).await.unwrap();
    // Another project is not affected.
    let _b = l.admit(&key("b")).await.unwrap();
    // The third waits in the queue and gets in when one finishes.
    let waiter = {
        let l = Arc::new(l);
        let l2 = l.clone();
        let h = tokio::spawn(async move { l2.admit(&key("a")).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The queue (1) is full: a fourth is refused at once.
        assert_eq!(
            l.admit(&key("a")).await.unwrap_err(),
            Refusal::Concurrency { limit: 2 }
        );
        drop(a1);
        h
    };
    assert_eq!(waiter.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn a_queued_request_is_refused_after_the_queue_time() {
    let l = Limits::new(values(), None).unwrap();
    let _a1 = l.admit(&key("a")).await.unwrap();
    let _a2 = l.admit(&key("a")).await.unwrap();
    let started = Instant::now();
    assert!(l.admit(&key("a")).await.is_err());
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn the_rate_is_a_token_bucket_with_retry_after() {
    let v = LimitValues {
        requests_per_second: 2.0,
        request_burst: 3,
        ..LimitValues::unlimited()
    };
    let l = Limits::new(v, None).unwrap();
    for _ in 0..3 {
        l.admit(&key("a")).await.unwrap();
    }
    let e = l.admit(&key("a")).await.unwrap_err();
    assert_eq!(e.reason(), "rate");
    assert_eq!(e.status(), (429, Some(1)));
    l.admit(&key("b")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    l.admit(&key("a")).await.unwrap();
}

#[tokio::test]
async fn refusals_are_held_back_but_shape_refusals_are_not() {
    let l = Limits::new(values(), None)
        .unwrap()
        .with_refusal_delay(Duration::from_millis(300));
    let started = Instant::now();
    l.hold(&Refusal::Concurrency { limit: 1 }).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let l = l.with_refusal_delay(Duration::from_secs(5));
    let started = Instant::now();
    l.hold(&Refusal::Rate {
        rate: 10.0,
        retry_after: Duration::from_millis(100),
    })
    .await;
    let took = started.elapsed();
    // Retry-After says 1 s: never held longer than that.
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3));
    let started = Instant::now();
    l.hold(&Refusal::Selectors { got: 2, max: 1 }).await;
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn time_limits() {
    let v = LimitValues {
        max_query_length: Some(Duration::from_secs(3600)),
        max_query_lookback: Some(Duration::from_secs(86400)),
        ..LimitValues::unlimited()
    };
    let l = Limits::new(v, None).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let k = key("a");
    let params = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    };
    let ok = params(&[("start", "999000"), ("end", "1000000")]);
    assert_eq!(
        l.values(&k).check_times(TimeKind::Range, &ok, now),
        Ok(None)
    );
    let long = params(&[("start", "990000"), ("end", "1000000")]);
    assert_eq!(
        l.values(&k)
            .check_times(TimeKind::Range, &long, now)
            .unwrap_err()
            .reason(),
        "query_length"
    );
    let old = params(&[("start", "900000"), ("end", "900100")]);
    assert_eq!(
        l.values(&k)
            .check_times(TimeKind::Range, &old, now)
            .unwrap_err()
            .reason(),
        "lookback"
    );
    let old_instant = params(&[("time", "1970-01-02T00:00:00Z")]);
    assert_eq!(
        l.values(&k)
            .check_times(TimeKind::Instant, &old_instant, now)
            .unwrap_err()
            .reason(),
        "lookback"
    );
    let garbage = params(&[("time", "yesterday")]);
    assert_eq!(
        l.values(&k)
            .check_times(TimeKind::Instant, &garbage, now)
            .unwrap_err()
            .status(),
        (400, None)
    );
    // Series without start: bounded to the lookback instead of "all".
    let none = params(&[]);
    assert_eq!(
        l.values(&k).check_times(TimeKind::Series, &none, now),
        Ok(Some(("start".to_owned(), "913600.000".to_owned())))
    );
    // Privileged callers: unlimited by default.
    let admin = LimitKey {
        privileged: true,
        project: "a".into(),
    };
    assert_eq!(
        l.values(&admin).check_times(TimeKind::Range, &old, now),
        Ok(None)
    );
}

#[test]
fn overrides_apply_per_project_and_to_privileged_callers() {
    let dir = std::env::temp_dir().join(format!("aetos-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("limits.yaml");
    std::fs::write(
        &f,
        "privileged:\n  max_concurrent_requests: 64\nprojects:\n  p1:\n    max_query_length: 7d\n    requests_per_second: 5\n",
    )
    .unwrap();
    let l = Limits::new(values(), Some(f.clone())).unwrap();
    let p1 = l.values(&key("p1"));
    assert_eq!(p1.max_query_length, Some(Duration::from_secs(7 * 86400)));
    assert_eq!(p1.requests_per_second, 5.0);
    assert_eq!(
        p1.max_concurrent_requests, 2,
        "unnamed limits keep the defaults"
    );
    assert_eq!(l.values(&key("p2")), values());
    let admin = LimitKey {
        privileged: true,
        project: "p1".into(),
    };
    assert_eq!(l.values(&admin).max_concurrent_requests, 64);
    assert_eq!(l.values(&admin).requests_per_second, 0.0);
    // A broken file on reload keeps the last good overrides.
    std::fs::write(&f, "projects:\n  p1:\n    max_query_lenght: 7d\n").unwrap();
    let e = l.reload().unwrap_err();
    assert!(
        e.contains("limits.yaml") && e.contains("max_query_lenght"),
        "{e}"
    );
    assert_eq!(l.values(&key("p1")), p1);
    std::fs::write(&f, "projects:\n  p1:\n    max_selectors: 3\n").unwrap();
    l.reload().unwrap();
    assert_eq!(l.values(&key("p1")).max_selectors, 3);
    assert_eq!(l.values(&key("p1")).max_query_length, None);
    // At start-up a broken file is an error naming it.
    std::fs::write(&f, "projects: [\n").unwrap();
    assert!(Limits::new(values(), Some(f.clone()))
        .err()
        .unwrap()
        .contains("limits.yaml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_and_times_parse_as_operators_write_them() {
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86400)
    );
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_duration("-5").is_err());
    assert!(parse_duration("soon").is_err());
    assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000.5));
    assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60.0));
    assert_eq!(parse_time("1970-01-01T01:01:00+01:00"), Some(60.0));
    assert_eq!(parse_time("1970-01-01T00:00:00.5-00:30"), Some(1800.5));
    assert_eq!(
        parse_time("2026-02-23T13:20:05+00:00"),
        Some(1_771_852_805.0)
    );
    assert_eq!(parse_time("1970-01-01T00:01:00"), None);
    assert_eq!(parse_time("NaN"), None);
    assert_eq!(parse_time("x"), None);
}

#[test]
fn the_query_size_is_measured_only_when_what_was_sent_is_over_the_limit() {
    let mut v = LimitValues::unlimited();
    let never = || -> usize { panic!("measured although the bound decides") };
    assert!(v.check_query_bytes(1 << 20, never).is_ok(), "no limit");
    v.max_query_bytes = 100;
    assert!(v.check_query_bytes(100, never).is_ok());
    assert!(v.check_query_bytes(101, || 100).is_ok(), "decoded within");
    match v.check_query_bytes(300, || 101) {
        Err(Refusal::QueryBytes { got: 101, max: 100 }) => {}
        other => panic!("{other:?}"),
    }
}
