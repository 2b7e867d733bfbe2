//! The Quartz evaluator against a table of known fire times, DST transitions, and a
//! brute-force matcher written independently of the evaluator.

use super::*;
use chrono::NaiveDateTime;
use rand::{Rng, SeedableRng};

fn tz(name: &str) -> Tz {
    name.parse().expect("time zone")
}

/// `2024-03-31 02:30:00` in `zone` (the first occurrence when ambiguous) as milliseconds.
fn local_ms(zone: &str, local: &str) -> i64 {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").expect("local time");
    tz(zone)
        .from_local_datetime(&naive)
        .earliest()
        .expect("existing local time")
        .timestamp_millis()
}

fn utc_ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .timestamp_millis()
}

/// A fire time as `2024-03-31 03:00:00 +02:00` in `zone`.
fn show(zone: &str, ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&tz(zone))
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn next(expr: &str, zone: &str, after_local: &str) -> Option<String> {
    let cron = Cron::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    cron.next_after(&tz(zone), local_ms(zone, after_local))
        .map(|ms| show(zone, ms))
}

/// Fire times after `after` in a row.
fn fires(expr: &str, zone: &str, after_ms: i64, n: usize) -> Vec<String> {
    let cron = Cron::parse(expr).unwrap();
    let mut at = after_ms;
    let mut out = Vec::new();
    for _ in 0..n {
        at = cron.next_after(&tz(zone), at).expect("fires");
        out.push(show(zone, at));
    }
    out
}

#[test]
fn known_quartz_fire_times() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "0 */5 * * * ?",
            "2024-01-01 00:00:00",
            "2024-01-01 00:05:00 +00:00",
        ),
        (
            "*/15 * * * * ?",
            "2024-01-01 00:00:07",
            "2024-01-01 00:00:15 +00:00",
        ),
        (
            "/20 * * * * ?",
            "2024-01-01 00:00:40",
            "2024-01-01 00:01:00 +00:00",
        ),
        (
            "0 0 12 ? * WED",
            "2024-01-01 00:00:00",
            "2024-01-03 12:00:00 +00:00",
        ),
        (
            "0 0 12 ? * 4",
            "2024-01-03 12:00:00",
            "2024-01-10 12:00:00 +00:00",
        ),
        // L: the last day of the month, in a leap year.
        (
            "0 15 10 L * ?",
            "2024-02-01 00:00:00",
            "2024-02-29 10:15:00 +00:00",
        ),
        (
            "0 15 10 L * ?",
            "2023-02-01 00:00:00",
            "2023-02-28 10:15:00 +00:00",
        ),
        (
            "0 15 10 L-2 * ?",
            "2024-02-01 00:00:00",
            "2024-02-27 10:15:00 +00:00",
        ),
        // LW: 2024-08-31 is a Saturday.
        (
            "0 0 0 LW * ?",
            "2024-08-01 00:00:00",
            "2024-08-30 00:00:00 +00:00",
        ),
        // 15W: 2024-06-15 is a Saturday -> Friday the 14th.
        (
            "0 0 0 15W * ?",
            "2024-06-01 00:00:00",
            "2024-06-14 00:00:00 +00:00",
        ),
        // 1W on Saturday the 1st -> Monday the 3rd (never into the previous month).
        (
            "0 0 0 1W * ?",
            "2024-05-31 12:00:00",
            "2024-06-03 00:00:00 +00:00",
        ),
        // 30W on Sunday the 30th (the last day) -> Friday the 28th.
        (
            "0 0 0 30W * ?",
            "2024-06-01 00:00:00",
            "2024-06-28 00:00:00 +00:00",
        ),
        // 16W on Sunday the 16th -> Monday the 17th.
        (
            "0 0 0 16W * ?",
            "2024-06-01 00:00:00",
            "2024-06-17 00:00:00 +00:00",
        ),
        // 31W skips months without a 31st.
        (
            "0 0 0 31W * ?",
            "2024-04-01 00:00:00",
            "2024-05-31 00:00:00 +00:00",
        ),
        // 6#3: the third Friday.
        (
            "0 0 0 ? * 6#3",
            "2024-01-01 00:00:00",
            "2024-01-19 00:00:00 +00:00",
        ),
        (
            "0 0 0 ? * FRI#5",
            "2024-01-01 00:00:00",
            "2024-03-29 00:00:00 +00:00",
        ),
        // 6L: the last Friday.
        (
            "0 0 0 ? * 6L",
            "2024-01-01 00:00:00",
            "2024-01-26 00:00:00 +00:00",
        ),
        // L alone in day-of-week: Saturday.
        (
            "0 0 0 ? * L",
            "2024-01-01 00:00:00",
            "2024-01-06 00:00:00 +00:00",
        ),
        // Feb 29, with and without a year field.
        (
            "0 0 0 29 2 ?",
            "2024-03-01 00:00:00",
            "2028-02-29 00:00:00 +00:00",
        ),
        (
            "0 0 0 29 FEB ? *",
            "2025-01-01 00:00:00",
            "2028-02-29 00:00:00 +00:00",
        ),
        (
            "0 0 0 1 1 ? 2030",
            "2024-06-01 00:00:00",
            "2030-01-01 00:00:00 +00:00",
        ),
        (
            "0 0 0 1 1 ? 2026/2",
            "2026-01-01 00:00:00",
            "2028-01-01 00:00:00 +00:00",
        ),
        // Names, lists and ranges.
        (
            "0 0 9 ? JAN,MAR MON-FRI",
            "2024-01-31 10:00:00",
            "2024-03-01 09:00:00 +00:00",
        ),
        (
            "0 0 9 ? jan,mar mon-fri",
            "2024-01-31 10:00:00",
            "2024-03-01 09:00:00 +00:00",
        ),
        (
            "0 0 9 * * MON-FRI",
            "2024-01-05 10:00:00",
            "2024-01-08 09:00:00 +00:00",
        ),
        // Ranges that wrap.
        (
            "0 0 22-2 * * ?",
            "2024-01-01 02:00:00",
            "2024-01-01 22:00:00 +00:00",
        ),
        (
            "0 0 22-2 * * ?",
            "2024-01-01 23:00:00",
            "2024-01-02 00:00:00 +00:00",
        ),
        (
            "0 0 12 ? * FRI-MON",
            "2024-01-02 00:00:00",
            "2024-01-05 12:00:00 +00:00",
        ),
        (
            "0 0 12 ? * FRI-MON",
            "2024-01-07 12:00:00",
            "2024-01-08 12:00:00 +00:00",
        ),
        // Steps within ranges, both days fields as *.
        (
            "0 10-40/15 * * * *",
            "2024-01-01 00:25:00",
            "2024-01-01 00:40:00 +00:00",
        ),
        (
            "0 10-40/15 * * * *",
            "2024-01-01 00:40:00",
            "2024-01-01 01:10:00 +00:00",
        ),
        (
            "0 0 0 1/10 * ?",
            "2024-01-21 00:00:00",
            "2024-01-31 00:00:00 +00:00",
        ),
        (
            "0 0 0 1/10 * ?",
            "2024-01-31 00:00:00",
            "2024-02-01 00:00:00 +00:00",
        ),
        // New year.
        (
            "59 59 23 31 12 ?",
            "2024-06-01 00:00:00",
            "2024-12-31 23:59:59 +00:00",
        ),
    ];
    for (expr, after, expected) in cases {
        assert_eq!(
            next(expr, "UTC", after).as_deref(),
            Some(*expected),
            "{expr} after {after}"
        );
    }
}

#[test]
fn fire_times_are_strictly_after_the_instant_and_on_whole_seconds() {
    let cron = Cron::parse("* * * * * ?").unwrap();
    let utc = tz("UTC");
    assert_eq!(cron.next_after(&utc, 1_000), Some(2_000));
    assert_eq!(cron.next_after(&utc, 1_001), Some(2_000));
    assert_eq!(cron.next_after(&utc, 1_999), Some(2_000));
    assert_eq!(cron.next_after(&utc, -1), Some(0));
}

#[test]
fn expressions_that_end_or_never_fire() {
    assert_eq!(next("0 0 0 1 1 ? 2030", "UTC", "2030-01-01 00:00:00"), None);
    assert_eq!(next("0 0 0 30 2 ?", "UTC", "2024-01-01 00:00:00"), None);
    assert_eq!(
        next("0 0 0 31 12 ? 2099", "UTC", "2099-12-31 00:00:00"),
        None
    );
}

#[test]
fn spring_forward_fires_once_at_the_end_of_the_gap() {
    // Europe/Paris, 2024-03-31: 02:00 CET -> 03:00 CEST.
    assert_eq!(
        next("0 30 2 * * ?", "Europe/Paris", "2024-03-30 03:00:00").as_deref(),
        Some("2024-03-31 03:00:00 +02:00")
    );
    assert_eq!(
        fires(
            "0 30 2 * * ?",
            "Europe/Paris",
            utc_ms("2024-03-30T12:00:00Z"),
            3
        ),
        [
            "2024-03-31 03:00:00 +02:00",
            "2024-04-01 02:30:00 +02:00",
            "2024-04-02 02:30:00 +02:00"
        ]
    );
    // Every minute of the missing hour: one run, at 03:00, then nothing until 02:00 the next day.
    assert_eq!(
        fires(
            "0 * 2 * * ?",
            "Europe/Paris",
            utc_ms("2024-03-31T00:58:30Z"),
            3
        ),
        [
            "2024-03-31 03:00:00 +02:00",
            "2024-04-01 02:00:00 +02:00",
            "2024-04-01 02:01:00 +02:00"
        ]
    );
    // America/New_York, 2024-03-10: 02:00 EST -> 03:00 EDT.
    assert_eq!(
        fires(
            "0 15 2 * * ?",
            "America/New_York",
            utc_ms("2024-03-09T12:00:00Z"),
            3
        ),
        [
            "2024-03-10 03:00:00 -04:00",
            "2024-03-11 02:15:00 -04:00",
            "2024-03-12 02:15:00 -04:00"
        ]
    );
    // A time just past the gap is unaffected.
    assert_eq!(
        next("0 0 3 * * ?", "America/New_York", "2024-03-10 00:00:00").as_deref(),
        Some("2024-03-10 03:00:00 -04:00")
    );
}

#[test]
fn fall_back_fires_once_at_the_first_occurrence() {
    // Europe/Paris, 2024-10-27: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    assert_eq!(
        fires(
            "0 30 2 * * ?",
            "Europe/Paris",
            utc_ms("2024-10-26T12:00:00Z"),
            2
        ),
        ["2024-10-27 02:30:00 +02:00", "2024-10-28 02:30:00 +01:00"]
    );
    // America/New_York, 2024-11-03: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    assert_eq!(
        fires(
            "0 30 1 * * ?",
            "America/New_York",
            utc_ms("2024-11-03T04:00:00Z"),
            2
        ),
        ["2024-11-03 01:30:00 -04:00", "2024-11-04 01:30:00 -05:00"]
    );
    // Every 20 minutes through the overlap: the repeated hour does not fire again.
    assert_eq!(
        fires(
            "0 0/20 * * * ?",
            "America/New_York",
            utc_ms("2024-11-03T05:30:00Z"),
            4
        ),
        [
            "2024-11-03 01:40:00 -04:00",
            "2024-11-03 02:00:00 -05:00",
            "2024-11-03 02:20:00 -05:00",
            "2024-11-03 02:40:00 -05:00"
        ]
    );
    // Asked from inside the second occurrence, the repeated times are skipped too.
    let cron = Cron::parse("0 45 1 * * ?").unwrap();
    let second_occurrence = utc_ms("2024-11-03T06:10:00Z"); // 01:10 EST
    assert_eq!(
        cron.next_after(&tz("America/New_York"), second_occurrence)
            .map(|ms| show("America/New_York", ms))
            .as_deref(),
        Some("2024-11-04 01:45:00 -05:00")
    );
}

#[test]
fn bad_expressions_name_the_field() {
    let err = |expr: &str| Cron::parse(expr).unwrap_err().to_string();
    assert_eq!(
        err("0 0 12 * *"),
        "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), \
         found 5"
    );
    assert_eq!(
        err("0 0 25 * * ?"),
        "hours field \"25\": 25 is out of range 0-23"
    );
    assert_eq!(
        err("60 0 0 * * ?"),
        "seconds field \"60\": 60 is out of range 0-59"
    );
    assert_eq!(
        err("0 0 0 ? * 8"),
        "day-of-week field \"8\": 8 is out of range 1-7"
    );
    assert_eq!(
        err("0 0 0 ? FOO *"),
        "month field \"FOO\": \"FOO\" is not a number 1-12 or a name JAN-DEC"
    );
    assert_eq!(
        err("0 0 0 32 * ?"),
        "day-of-month field \"32\": 32 is out of range 1-31"
    );
    assert_eq!(
        err("0 */0 * * * ?"),
        "minutes field \"*/0\": step \"0\" must be a number 1-59"
    );
    assert_eq!(
        err("0 0 ? * * *"),
        "hours field \"?\": \"?\" is not a number 0-23 (`?` is allowed only in day-of-month \
         and day-of-week)"
    );
    assert_eq!(
        err("0 0 0 1,L * ?"),
        "day-of-month field \"1,L\": \"L\" is not a number 1-31 (`L`, `W` and `#` stand alone \
         in day-of-month and day-of-week, e.g. `L`, `15W`, `6#3`; not in lists or ranges)"
    );
    assert_eq!(
        err("0 0 0 1-5W * ?"),
        "day-of-month field \"1-5W\": `W` takes a single day (`15W`), not a list or range"
    );
    assert_eq!(
        err("0 0 0 ? * 6#6"),
        "day-of-week field \"6#6\": `d#n` needs n = 1-5 (`6#3`: the third Friday)"
    );
    assert_eq!(
        err("0 0 0 ? * ?"),
        "day-of-month \"?\" and day-of-week \"?\": `?` may stand in only one of them: put `?` \
         in one and the days in the other"
    );
    assert_eq!(
        err("0 0 0 1 * MON"),
        "day-of-month \"1\" and day-of-week \"MON\": both restrict the days, which Quartz does \
         not support: put `?` in one of them"
    );
    assert_eq!(
        err("0 0 0 1 1 ? 1969"),
        "year field \"1969\": 1969 is out of range 1970-2099"
    );
    assert_eq!(
        err("0 0 0 1,,2 * ?"),
        "day-of-month field \"1,,2\": empty item in the list"
    );
}

// ---- Property test: the evaluator against a brute-force matcher. ----

/// A day rule, written directly from Quartz's definitions (no shared code with the evaluator).
fn brute_day(dom: &str, dow: &str, date: NaiveDate) -> bool {
    let days_in_month = (28..=31)
        .filter(|d| NaiveDate::from_ymd_opt(date.year(), date.month(), *d).is_some())
        .max()
        .unwrap();
    let weekday_of = |d: u32| {
        NaiveDate::from_ymd_opt(date.year(), date.month(), d)
            .unwrap()
            .weekday()
    };
    let is_workday = |d: u32| !matches!(weekday_of(d), Weekday::Sat | Weekday::Sun);
    let day = date.day();
    let dom_ok = match dom {
        "*" | "?" => true,
        "L" => day == days_in_month,
        "L-3" => day + 3 == days_in_month,
        "LW" => {
            day == (1..=days_in_month)
                .filter(|d| is_workday(*d))
                .max()
                .unwrap()
        }
        "15W" | "1W" | "31W" => {
            let n: u32 = dom.trim_end_matches('W').parse().unwrap();
            n <= days_in_month
                && day
                    == (1..=days_in_month)
                        .filter(|d| is_workday(*d))
                        .min_by_key(|d| d.abs_diff(n))
                        .unwrap()
        }
        "1-10/3" => [1, 4, 7, 10].contains(&day),
        other => panic!("no brute rule for {other}"),
    };
    let wd = date.weekday();
    let dow_ok = match dow {
        "*" | "?" => true,
        "6#3" => wd == Weekday::Fri && (1..=day).filter(|d| weekday_of(*d) == wd).count() == 3,
        "2L" => wd == Weekday::Mon && (day + 1..=days_in_month).all(|d| weekday_of(d) != wd),
        "MON-FRI" => is_workday(day),
        "SAT,SUN" => !is_workday(day),
        other => panic!("no brute rule for {other}"),
    };
    dom_ok && dow_ok
}

fn brute_list(list: &[u32], v: u32) -> bool {
    list.contains(&v)
}

#[test]
fn the_evaluator_agrees_with_a_brute_force_matcher_in_utc() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let day_rules: &[(&str, &str)] = &[
        ("*", "?"),
        ("L", "?"),
        ("L-3", "?"),
        ("LW", "?"),
        ("15W", "?"),
        ("1W", "?"),
        ("31W", "?"),
        ("1-10/3", "?"),
        ("?", "6#3"),
        ("?", "2L"),
        ("?", "MON-FRI"),
        ("?", "SAT,SUN"),
        ("*", "MON-FRI"),
    ];
    let pick = |rng: &mut rand::rngs::StdRng, max: u32, n: usize| -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).map(|_| rng.random_range(0..=max)).collect();
        v.sort();
        v.dedup();
        v
    };
    let utc = tz("UTC");
    for case in 0..300 {
        let counts: [usize; 4] = std::array::from_fn(|_| rng.random_range(1..4));
        let seconds = pick(&mut rng, 59, counts[0]);
        let minutes = pick(&mut rng, 59, counts[1]);
        let hours = pick(&mut rng, 23, counts[2]);
        let months = pick(&mut rng, 11, counts[3])
            .into_iter()
            .map(|m| m + 1)
            .collect::<Vec<_>>();
        let (dom, dow) = day_rules[rng.random_range(0..day_rules.len())];
        let join = |v: &[u32]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let expr = format!(
            "{} {} {} {dom} {} {dow}",
            join(&seconds),
            join(&minutes),
            join(&hours),
            join(&months)
        );
        let cron = Cron::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let after = utc_ms("2023-01-01T00:00:00Z") + rng.random_range(0..3 * 365 * 86_400_000i64);
        let got = cron.next_after(&utc, after);

        // Brute force: scan days, then every second of the first matching day.
        let start = DateTime::from_timestamp_millis(after).unwrap().naive_utc();
        let mut date = start.date();
        let mut expected = None;
        'days: for _ in 0..3 * 366 {
            if brute_list(&months, date.month()) && brute_day(dom, dow, date) {
                for h in &hours {
                    for m in &minutes {
                        for s in &seconds {
                            let t = date.and_hms_opt(*h, *m, *s).unwrap();
                            let ms = t.and_utc().timestamp_millis();
                            if ms > after {
                                expected = Some(ms);
                                break 'days;
                            }
                        }
                    }
                }
            }
            date = date.succ_opt().unwrap();
        }
        match expected {
            Some(_) => assert_eq!(
                got.map(|ms| show("UTC", ms)),
                expected.map(|ms| show("UTC", ms)),
                "case {case}: {expr} after {}",
                show("UTC", after)
            ),
            // Nothing within the scanned days (31W in months without a 31st, say).
            None => {
                let scanned_to = date
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_millis();
                assert!(
                    got.is_none_or(|g| g >= scanned_to),
                    "case {case}: {expr} after {}: the evaluator found {:?}",
                    show("UTC", after),
                    got.map(|ms| show("UTC", ms))
                );
            }
        }
    }
}

#[test]
fn in_every_zone_fire_times_increase_and_match_the_wall_clock() {
    // Every 7 minutes across a whole year in zones with DST: strictly increasing instants,
    // each showing a matching wall-clock minute (or the end of a gap).
    for zone in ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"] {
        let cron = Cron::parse("0 0/7 * * * ?").unwrap();
        let z = tz(zone);
        let mut at = utc_ms("2024-01-01T00:00:00Z");
        let end = utc_ms("2025-01-01T00:00:00Z");
        let mut count = 0;
        while at < end {
            let next = cron.next_after(&z, at).unwrap();
            assert!(next > at);
            let local = DateTime::from_timestamp_millis(next)
                .unwrap()
                .with_timezone(&z);
            let gap_end = local.second() == 0
                && z.from_local_datetime(&(local.naive_local() - TimeDelta::minutes(1)))
                    .single()
                    .is_none();
            assert!(
                local.minute().is_multiple_of(7) || gap_end,
                "{zone}: {local} does not match"
            );
            at = next;
            count += 1;
        }
        assert!(count > 70_000, "{zone}: {count} fires");
    }
}
