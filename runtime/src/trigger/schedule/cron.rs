//! Quartz cron expressions: parsing, and the next fire time in an IANA time zone.
//!
//! `seconds minutes hours day-of-month month day-of-week [year]`, as Quartz's `CronExpression`
//! reads them:
//! - values, ranges `a-b` (a range may wrap: `FRI-MON`, `22-2`), steps `a/n`, `a-b/n`, `*/n`,
//!   `/n` (= `first/n`), lists `a,b-c`; month names `JAN`..`DEC`, day names `SUN`..`SAT`
//!   (case-insensitive); day-of-week numbers are Quartz's: 1 = SUN ... 7 = SAT;
//! - day-of-month: `?`, `L` (last day), `L-n` (n days before the last), `LW` (last weekday),
//!   `nW` (the weekday nearest day n, within the month);
//! - day-of-week: `?`, `L` alone (= 7, Saturday), `dL` (the last day d of the month), `d#n` (the
//!   n-th day d of the month, n = 1..5);
//! - year (optional): 1970-2099.
//!
//! Quartz wants `?` in exactly one of day-of-month and day-of-week. Weir also accepts `*` in
//! one of them when the other restricts the days (`0 0 9 * * MON-FRI`), and `*` in both (every
//! day); two restrictions at once are refused, as in Quartz.
//!
//! Fire times are wall-clock times of the time zone. Across daylight-saving changes:
//! - a fire time inside a spring-forward gap (02:30 in Europe/Paris on the last Sunday of
//!   March) fires once, at the first valid instant after the gap (03:00 local); several fire
//!   times in one gap fire once together;
//! - a fire time inside a fall-back overlap (01:30 in America/New_York on the first Sunday of
//!   November) fires once, at its first occurrence.

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Weekday,
};
use chrono_tz::Tz;

/// The first year a Quartz cron expression can fire in.
pub const MIN_YEAR: i32 = 1970;
/// The last year a Quartz cron expression can fire in.
pub const MAX_YEAR: i32 = 2099;

/// The fields of a Quartz cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Seconds, 0-59.
    Seconds,
    /// Minutes, 0-59.
    Minutes,
    /// Hours, 0-23.
    Hours,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or JAN-DEC.
    Month,
    /// Day of the week, 1-7 (SUN-SAT) or SUN-SAT.
    DayOfWeek,
    /// Year, 1970-2099 (optional).
    Year,
}

impl Field {
    const ALL: [Field; 7] = [
        Field::Seconds,
        Field::Minutes,
        Field::Hours,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
        Field::Year,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Seconds => "seconds",
            Field::Minutes => "minutes",
            Field::Hours => "hours",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        }
    }

    fn range(self) -> (u32, u32) {
        match self {
            Field::Seconds | Field::Minutes => (0, 59),
            Field::Hours => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (1, 7),
            Field::Year => (MIN_YEAR as u32, MAX_YEAR as u32),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
            Field::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a Quartz cron expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not 6 or 7 fields.
    #[error(
        "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), \
         found {found}"
    )]
    FieldCount {
        /// How many fields there were.
        found: usize,
    },
    /// One field is wrong.
    #[error("{field} field {text:?}: {reason}")]
    Field {
        /// Which field.
        field: Field,
        /// The field as written.
        text: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// Day-of-month and day-of-week do not fit together.
    #[error("day-of-month {dom:?} and day-of-week {dow:?}: {reason}")]
    Days {
        /// The day-of-month field.
        dom: String,
        /// The day-of-week field.
        dow: String,
        /// What is wrong.
        reason: String,
    },
}

/// The day-of-month rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    /// No restriction (`*` or `?`).
    Every,
    /// These days (bit d = day d).
    Days(u32),
    /// `L` / `L-n`: n days before the last day.
    Last(u32),
    /// `LW`: the last weekday (Monday to Friday).
    LastWeekday,
    /// `nW`: the weekday nearest day n, within the month.
    NearestWeekday(u32),
}

/// The day-of-week rule (Quartz numbering: 1 = Sunday).
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    /// No restriction (`*` or `?`).
    Every,
    /// These days (bit d = Quartz day d).
    Days(u8),
    /// `dL`: the last day d of the month.
    Last(u32),
    /// `d#n`: the n-th day d of the month.
    Nth(u32, u32),
}

/// A parsed Quartz cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u32,
    months: u16,
    dom: DayOfMonth,
    dow: DayOfWeek,
    /// Allowed years, index `year - MIN_YEAR`; `None`: every year.
    years: Option<Vec<bool>>,
}

impl std::str::FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Cron, CronError> {
        Cron::parse(s)
    }
}

impl Cron {
    /// Parses a Quartz cron expression; the error names the field that is wrong.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if !(6..=7).contains(&fields.len()) {
            return Err(CronError::FieldCount {
                found: fields.len(),
            });
        }
        let bits = |field: Field| -> Result<u64, CronError> {
            let text = fields[Field::ALL.iter().position(|f| *f == field).expect("field")];
            Ok(values(field, text)?.iter().fold(0u64, |b, v| b | 1 << v))
        };
        let (dom_text, dow_text) = (fields[3], fields[5]);
        let dom = day_of_month(dom_text)?;
        let dow = day_of_week(dow_text)?;
        let days_error = |reason: &str| CronError::Days {
            dom: dom_text.to_string(),
            dow: dow_text.to_string(),
            reason: reason.to_string(),
        };
        let (dom, dow) = match (dom, dow) {
            (None, None) => {
                return Err(days_error(
                    "`?` may stand in only one of them: put `?` in one and the days in the other",
                ));
            }
            (None, Some(w)) => (DayOfMonth::Every, w),
            (Some(d), None) => (d, DayOfWeek::Every),
            (Some(d), Some(w)) => {
                if d != DayOfMonth::Every && w != DayOfWeek::Every {
                    return Err(days_error(
                        "both restrict the days, which Quartz does not support: put `?` in one \
                         of them",
                    ));
                }
                (d, w)
            }
        };
        let years = match fields.get(6) {
            None => None,
            Some(text) => {
                let mut allowed = vec![false; (MAX_YEAR - MIN_YEAR + 1) as usize];
                for y in values(Field::Year, text)? {
                    allowed[(y as i32 - MIN_YEAR) as usize] = true;
                }
                Some(allowed)
            }
        };
        Ok(Cron {
            seconds: bits(Field::Seconds)?,
            minutes: bits(Field::Minutes)?,
            hours: bits(Field::Hours)? as u32,
            months: bits(Field::Month)? as u16,
            dom,
            dow,
            years,
        })
    }

    /// The first fire time strictly after `after_ms` (milliseconds since the epoch), in `tz`;
    /// `None` when the expression never fires again (before the end of [`MAX_YEAR`]).
    pub fn next_after(&self, tz: &Tz, after_ms: i64) -> Option<i64> {
        let start = after_ms.div_euclid(1000) + 1;
        let mut local = DateTime::from_timestamp(start, 0)?
            .with_timezone(tz)
            .naive_local();
        loop {
            let candidate = self.next_local(local)?;
            let secs = resolve(tz, candidate)?;
            if secs * 1000 > after_ms {
                return Some(secs * 1000);
            }
            // The candidate's first occurrence (a fall-back overlap) is already past: it fired.
            local = candidate + TimeDelta::seconds(1);
        }
    }

    /// The earliest local time at or after `from` that matches every field.
    fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut time = from.time();
        let midnight = NaiveTime::MIN;
        loop {
            let year = date.year();
            if year > MAX_YEAR {
                return None;
            }
            if year < MIN_YEAR {
                date = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)?;
                time = midnight;
                continue;
            }
            if let Some(years) = &self.years
                && !years[(year - MIN_YEAR) as usize]
            {
                let next = (year + 1..=MAX_YEAR).find(|y| years[(y - MIN_YEAR) as usize])?;
                date = NaiveDate::from_ymd_opt(next, 1, 1)?;
                time = midnight;
                continue;
            }
            if self.months & (1 << date.month()) == 0 {
                date = first_of_next_month(date)?;
                time = midnight;
                continue;
            }
            if self.day_matches(date)
                && let Some(t) = self.next_time(time)
            {
                return Some(date.and_time(t));
            }
            date = date.succ_opt()?;
            time = midnight;
        }
    }

    /// The earliest time of day at or after `from` that matches the time fields.
    fn next_time(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (fh, fm, fs) = (from.hour(), from.minute(), from.second());
        let mut h = next_bit(self.hours as u64, fh, 23)?;
        loop {
            let m_from = if h == fh { fm } else { 0 };
            let mut m = next_bit(self.minutes, m_from, 59);
            while let Some(min) = m {
                let s_from = if h == fh && min == fm { fs } else { 0 };
                if let Some(s) = next_bit(self.seconds, s_from, 59) {
                    return NaiveTime::from_hms_opt(h, min, s);
                }
                m = next_bit(self.minutes, min + 1, 59);
            }
            h = next_bit(self.hours as u64, h + 1, 23)?;
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = last_day(date);
        let dom = match &self.dom {
            DayOfMonth::Every => true,
            DayOfMonth::Days(bits) => bits & (1 << day) != 0,
            DayOfMonth::Last(before) => last.checked_sub(*before) == Some(day),
            DayOfMonth::LastWeekday => {
                let wd = date.with_day(last).expect("last day").weekday();
                let target = match wd {
                    Weekday::Sat => last - 1,
                    Weekday::Sun => last - 2,
                    _ => last,
                };
                day == target
            }
            DayOfMonth::NearestWeekday(n) => {
                if *n > last {
                    false
                } else {
                    let wd = date.with_day(*n).expect("day in month").weekday();
                    let target = match wd {
                        Weekday::Sat if *n == 1 => 3,
                        Weekday::Sat => n - 1,
                        Weekday::Sun if *n == last => n - 2,
                        Weekday::Sun => n + 1,
                        _ => *n,
                    };
                    day == target
                }
            }
        };
        if !dom {
            return false;
        }
        let quartz_dow = date.weekday().num_days_from_sunday() + 1;
        match &self.dow {
            DayOfWeek::Every => true,
            DayOfWeek::Days(bits) => bits & (1 << quartz_dow) != 0,
            DayOfWeek::Last(d) => quartz_dow == *d && day + 7 > last,
            DayOfWeek::Nth(d, n) => quartz_dow == *d && (day - 1) / 7 + 1 == *n,
        }
    }
}

/// The instant (seconds) a local time fires at: itself; the first occurrence when it happens
/// twice (fall-back); the first valid instant after it when it does not exist (spring-forward).
fn resolve(tz: &Tz, local: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.timestamp()),
        LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
        LocalResult::None => {
            // Transitions fall on whole minutes: find the first valid minute, then its first
            // valid second after `local`.
            let mut t = local.with_second(0)? + TimeDelta::minutes(1);
            for _ in 0..48 * 60 {
                if !matches!(tz.from_local_datetime(&t), LocalResult::None) {
                    while t - TimeDelta::seconds(1) > local
                        && !matches!(
                            tz.from_local_datetime(&(t - TimeDelta::seconds(1))),
                            LocalResult::None
                        )
                    {
                        t -= TimeDelta::seconds(1);
                    }
                    return tz.from_local_datetime(&t).earliest().map(|d| d.timestamp());
                }
                t += TimeDelta::minutes(1);
            }
            None
        }
    }
}

fn last_day(date: NaiveDate) -> u32 {
    first_of_next_month(date)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// The lowest set bit at or above `from` and at most `max`.
fn next_bit(bits: u64, from: u32, max: u32) -> Option<u32> {
    if from > max {
        return None;
    }
    let masked = bits >> from;
    if masked == 0 {
        return None;
    }
    let v = from + masked.trailing_zeros();
    (v <= max).then_some(v)
}

fn field_error(field: Field, text: &str, reason: impl Into<String>) -> CronError {
    CronError::Field {
        field,
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// One value of a field: a number or, for months and days of the week, a name.
fn value(field: Field, whole: &str, token: &str) -> Result<u32, CronError> {
    let (min, max) = field.range();
    let upper = token.to_ascii_uppercase();
    let v = if let Some(i) = field.names().iter().position(|n| *n == upper) {
        i as u32 + 1
    } else if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        token.parse::<u32>().map_err(|_| {
            field_error(field, whole, format!("{token} is out of range {min}-{max}"))
        })?
    } else {
        let names = field.names();
        let expected = if names.is_empty() {
            format!("a number {min}-{max}")
        } else {
            format!(
                "a number {min}-{max} or a name {}-{}",
                names[0],
                names[names.len() - 1]
            )
        };
        let hint = match token {
            "?" => " (`?` is allowed only in day-of-month and day-of-week)".to_string(),
            t if t.contains('#')
                || t.eq_ignore_ascii_case("L")
                || t.eq_ignore_ascii_case("LW")
                || (t.len() > 1
                    && t.to_ascii_uppercase().ends_with(['L', 'W'])
                    && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit())) =>
            {
                " (`L`, `W` and `#` stand alone in day-of-month and day-of-week, e.g. `L`, \
                 `15W`, `6#3`; not in lists or ranges)"
                    .to_string()
            }
            _ => String::new(),
        };
        return Err(field_error(
            field,
            whole,
            format!("{token:?} is not {expected}{hint}"),
        ));
    };
    if v < min || v > max {
        return Err(field_error(
            field,
            whole,
            format!("{v} is out of range {min}-{max}"),
        ));
    }
    Ok(v)
}

/// The values a list field (`*`, values, ranges, steps, lists) allows, in ascending order.
fn values(field: Field, text: &str) -> Result<Vec<u32>, CronError> {
    let (min, max) = field.range();
    let span = max - min + 1;
    let mut out = vec![false; span as usize];
    for part in text.split(',') {
        if part.is_empty() {
            return Err(field_error(field, text, "empty item in the list"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step_max = if field == Field::Year { span } else { max };
                let n = step
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=step_max).contains(n))
                    .ok_or_else(|| {
                        field_error(
                            field,
                            text,
                            format!("step {step:?} must be a number 1-{step_max}"),
                        )
                    })?;
                (range, Some(n))
            }
            None => (part, None),
        };
        let (from, to) = if range == "*" || (range.is_empty() && step.is_some()) {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(field, text, a)?, value(field, text, b)?)
        } else {
            let v = value(field, text, range)?;
            (v, if step.is_some() { max } else { v })
        };
        let step = step.unwrap_or(1);
        // A range may wrap around the end of the field (`FRI-MON`, `22-2`).
        let len = (to + span - from) % span;
        let mut k = 0;
        while k <= len {
            out[((from - min + k) % span) as usize] = true;
            k += step;
        }
    }
    Ok((0..span)
        .filter(|i| out[*i as usize])
        .map(|i| i + min)
        .collect())
}

/// The day-of-month field; `None` for `?`.
fn day_of_month(text: &str) -> Result<Option<DayOfMonth>, CronError> {
    let f = Field::DayOfMonth;
    let upper = text.to_ascii_uppercase();
    if upper == "?" {
        return Ok(None);
    }
    if upper == "*" {
        return Ok(Some(DayOfMonth::Every));
    }
    if upper == "L" {
        return Ok(Some(DayOfMonth::Last(0)));
    }
    if upper == "LW" {
        return Ok(Some(DayOfMonth::LastWeekday));
    }
    if let Some(n) = upper.strip_prefix("L-") {
        let before = n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 30)
            .ok_or_else(|| field_error(f, text, "`L-n` needs a number of days 0-30"))?;
        return Ok(Some(DayOfMonth::Last(before)));
    }
    if let Some(day) = upper.strip_suffix('W') {
        if day.contains([',', '-', '/', '*']) {
            return Err(field_error(
                f,
                text,
                "`W` takes a single day (`15W`), not a list or range",
            ));
        }
        return Ok(Some(DayOfMonth::NearestWeekday(value(f, text, day)?)));
    }
    if upper.contains('#') {
        return Err(field_error(
            f,
            text,
            "`#` belongs in day-of-week (`6#3`: the third Friday)",
        ));
    }
    let bits = values(f, text)?.iter().fold(0u32, |b, v| b | 1 << v);
    Ok(Some(DayOfMonth::Days(bits)))
}

/// The day-of-week field; `None` for `?`.
fn day_of_week(text: &str) -> Result<Option<DayOfWeek>, CronError> {
    let f = Field::DayOfWeek;
    let upper = text.to_ascii_uppercase();
    if upper == "?" {
        return Ok(None);
    }
    if upper == "*" {
        return Ok(Some(DayOfWeek::Every));
    }
    if upper == "L" {
        return Ok(Some(DayOfWeek::Days(1 << 7)));
    }
    if let Some((day, n)) = upper.split_once('#') {
        let d = value(f, text, day)?;
        let n = n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| field_error(f, text, "`d#n` needs n = 1-5 (`6#3`: the third Friday)"))?;
        return Ok(Some(DayOfWeek::Nth(d, n)));
    }
    if let Some(day) = upper.strip_suffix('L')
        && !day.contains([',', '-', '/', '*'])
    {
        return Ok(Some(DayOfWeek::Last(value(f, text, day)?)));
    }
    let bits = values(f, text)?.iter().fold(0u8, |b, v| b | 1 << v);
    Ok(Some(DayOfWeek::Days(bits)))
}

#[cfg(test)]
mod tests;
