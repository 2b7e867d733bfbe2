//! Order records at each layer of the lake, and the rules that make a raw order valid.

use crate::Error;
use serde::{Deserialize, Serialize};

/// The header every landing CSV file starts with.
pub const CSV_HEADER: [&str; 4] = ["order_id", "region", "amount", "ordered_at"];

/// A row of a landing file as it was (bronze): text fields, plus where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawOrder {
    /// The landing file's name.
    pub source: String,
    /// The 1-based line in that file.
    pub line: usize,
    /// The order id.
    pub order_id: String,
    /// The sales region.
    pub region: String,
    /// The amount, as written.
    pub amount: String,
    /// When it was ordered, as written.
    pub ordered_at: String,
}

/// A valid order (silver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order id.
    pub order_id: String,
    /// The sales region, lower-case.
    pub region: String,
    /// The amount in cents (positive).
    pub amount_cents: i64,
    /// The order date, `YYYY-MM-DD`.
    pub date: String,
}

/// Parses a landing CSV file named `source` into raw orders. The first line must be
/// [`CSV_HEADER`]; blank lines are skipped; missing fields are empty.
pub fn parse_csv(source: &str, text: &str) -> Result<Vec<RawOrder>, Error> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, line)| crate::csv::split_line(line))
        .unwrap_or_default();
    if header != CSV_HEADER {
        return Err(format!(
            "{source}: header is {:?}: expected {:?}",
            header.join(","),
            CSV_HEADER.join(",")
        )
        .into());
    }
    Ok(lines
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let mut fields = crate::csv::split_line(line).into_iter();
            let mut next = || fields.next().unwrap_or_default();
            RawOrder {
                source: source.to_string(),
                line: index + 1,
                order_id: next(),
                region: next(),
                amount: next(),
                ordered_at: next(),
            }
        })
        .collect())
}

/// Checks a raw order: a non-empty order id and region, a positive amount, a real date.
/// The error says what is wrong with it.
pub fn validate(raw: &RawOrder) -> Result<Order, String> {
    if raw.order_id.is_empty() {
        return Err("order_id is empty".into());
    }
    if raw.region.is_empty() {
        return Err("region is empty".into());
    }
    let amount_cents = parse_amount_cents(&raw.amount)
        .ok_or_else(|| format!("amount {:?} is not a positive number", raw.amount))?;
    let date = parse_date(&raw.ordered_at).ok_or_else(|| {
        format!(
            "ordered_at {:?} is not a date (YYYY-MM-DD, optionally with a time)",
            raw.ordered_at
        )
    })?;
    Ok(Order {
        order_id: raw.order_id.clone(),
        region: raw.region.to_lowercase(),
        amount_cents,
        date,
    })
}

/// A positive decimal amount with at most two decimals, in cents: `"12.5"` is 1250.
pub fn parse_amount_cents(text: &str) -> Option<i64> {
    let (units, decimals) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || units.len() > 12 || !digits(units) {
        return None;
    }
    if decimals.len() > 2 || !digits(decimals) || (text.contains('.') && decimals.is_empty()) {
        return None;
    }
    let cents = format!("{decimals:0<2}").parse::<i64>().ok()?;
    let cents = units.parse::<i64>().ok()? * 100 + cents;
    (cents > 0).then_some(cents)
}

/// The date of `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS]` with an
/// optional `Z` or `±HH:MM` offset; `None` unless it is a real calendar date and time.
pub fn parse_date(text: &str) -> Option<String> {
    let date = text.get(..10)?;
    let rest = &text[10..];
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (year, month, day) = match date.split('-').collect::<Vec<_>>()[..] {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (number(y)?, number(m)?, number(d)?)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if !rest.is_empty() {
        let time = rest.strip_prefix(['T', ' '])?;
        let time = time
            .strip_suffix('Z')
            .or_else(|| {
                let (clock, offset) = time.split_at_checked(time.len().checked_sub(6)?)?;
                let sign_ok = offset.starts_with(['+', '-']);
                (sign_ok && valid_clock(&offset[1..], false)).then_some(clock)
            })
            .unwrap_or(time);
        if !valid_clock(time, true) {
            return None;
        }
    }
    Some(date.to_string())
}

/// `HH:MM`, or `HH:MM:SS` when `seconds` allows it.
fn valid_clock(text: &str, seconds: bool) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let field = |s: &str, max: u32| {
        s.len() == 2
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|v| v <= max)
    };
    match parts[..] {
        [h, m] => field(h, 23) && field(m, 59),
        [h, m, s] if seconds => field(h, 23) && field(m, 59) && field(s, 59),
        _ => false,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(order_id: &str, region: &str, amount: &str, ordered_at: &str) -> RawOrder {
        RawOrder {
            source: "orders-1.csv".into(),
            line: 2,
            order_id: order_id.into(),
            region: region.into(),
            amount: amount.into(),
            ordered_at: ordered_at.into(),
        }
    }

    #[test]
    fn parses_a_landing_file() {
        let text = "order_id,region,amount,ordered_at\n1001,EU,120.50,2025-11-20\n\n1002,us\n";
        let rows = parse_csv("orders-1.csv", text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], raw("1001", "EU", "120.50", "2025-11-20"));
        assert_eq!(rows[1].line, 4);
        assert_eq!(
            (rows[1].amount.as_str(), rows[1].ordered_at.as_str()),
            ("", "")
        );
    }

    #[test]
    fn refuses_a_wrong_header() {
        let err = parse_csv("x.csv", "id,region,amount\n1,eu,2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.csv: header is \"id,region,amount\": expected \"order_id,region,amount,ordered_at\""
        );
        assert!(parse_csv("empty.csv", "").is_err());
    }

    #[test]
    fn validates_orders() {
        let order = validate(&raw("1001", "EU", "120.5", "2025-11-20T08:15:00Z")).unwrap();
        assert_eq!(order.region, "eu");
        assert_eq!(order.amount_cents, 12050);
        assert_eq!(order.date, "2025-11-20");
        assert_eq!(
            validate(&raw("1", "", "1", "2025-11-20")).unwrap_err(),
            "region is empty"
        );
        assert_eq!(
            validate(&raw("1", "eu", "-3", "2025-11-20")).unwrap_err(),
            "amount \"-3\" is not a positive number"
        );
        assert!(
            validate(&raw("1", "eu", "3", "2025-02-30"))
                .unwrap_err()
                .starts_with("ordered_at \"2025-02-30\" is not a date")
        );
        assert_eq!(
            validate(&raw("", "eu", "3", "2025-02-03")).unwrap_err(),
            "order_id is empty"
        );
    }

    #[test]
    fn amounts_are_positive_decimals_with_cents() {
        assert_eq!(parse_amount_cents("12"), Some(1200));
        assert_eq!(parse_amount_cents("12.5"), Some(1250));
        assert_eq!(parse_amount_cents("0.07"), Some(7));
        for bad in [
            "0", "0.00", "-1", "1e3", "abc", "", "1.", ".5", "1.234", "1,5", "12 ",
        ] {
            assert_eq!(parse_amount_cents(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(parse_date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(
            parse_date("2025-11-20 23:59").as_deref(),
            Some("2025-11-20")
        );
        assert_eq!(
            parse_date("2025-11-20T10:00:00+01:00").as_deref(),
            Some("2025-11-20")
        );
        for bad in [
            "2025-02-29",
            "1900-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-11-31",
            "20-11-2025",
            "2025/11/20",
            "yesterday",
            "2025-11-20T24:00",
            "2025-11-20T10:00:00+1:00",
            "2025-11-20x",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }
}
