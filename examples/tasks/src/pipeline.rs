//! The stages of the orders pipeline, each reading one layer of the lake and writing the next.

use crate::orders::{self, Order, RawOrder};
use crate::{Error, lake};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Landing files: `landing/*.csv`.
pub const LANDING: &str = "landing";
/// Raw rows of every landing file: `bronze/orders.jsonl`.
pub const BRONZE: &str = "bronze/orders.jsonl";
/// Valid orders: `silver/orders.jsonl`.
pub const SILVER: &str = "silver/orders.jsonl";
/// Totals per region: `gold/totals.json`.
pub const GOLD: &str = "gold/totals.json";

/// What `ingest` read.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Rows written to bronze.
    pub rows: usize,
    /// The landing files read, by name, sorted.
    pub files: Vec<String>,
}

/// Reads every `landing/*.csv` of the lake and writes their rows to bronze.
pub fn ingest(lake: &Path) -> Result<Ingested, Error> {
    let landing = lake.join(LANDING);
    let entries = std::fs::read_dir(&landing)
        .map_err(|e| format!("cannot list {}: {e}", landing.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".csv") {
            files.push(name);
        }
    }
    files.sort();
    let mut rows = Vec::new();
    for name in &files {
        let path = landing.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        rows.extend(orders::parse_csv(name, &text)?);
    }
    lake::write_jsonl(&lake.join(BRONZE), &rows)?;
    Ok(Ingested {
        rows: rows.len(),
        files,
    })
}

/// The bronze rows sorted into valid orders and rejected rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The valid orders.
    pub valid: Vec<Order>,
    /// The rejected rows and why.
    pub invalid: Vec<(RawOrder, String)>,
}

/// Reads the bronze rows and validates each.
pub fn validate(lake: &Path) -> Result<Validated, Error> {
    let rows: Vec<RawOrder> = lake::read_jsonl(&lake.join(BRONZE))?;
    let mut validated = Validated {
        valid: Vec::new(),
        invalid: Vec::new(),
    };
    for row in rows {
        match orders::validate(&row) {
            Ok(order) => validated.valid.push(order),
            Err(reason) => validated.invalid.push((row, reason)),
        }
    }
    Ok(validated)
}

impl Validated {
    /// The share of invalid rows, in percent (0 when there were no rows).
    pub fn invalid_pct(&self) -> f64 {
        let total = self.valid.len() + self.invalid.len();
        if total == 0 {
            0.0
        } else {
            self.invalid.len() as f64 * 100.0 / total as f64
        }
    }

    /// Fails when more than `max_invalid_pct` percent of the rows are invalid.
    pub fn check_invalid_share(&self, max_invalid_pct: f64) -> Result<(), Error> {
        if self.invalid_pct() <= max_invalid_pct {
            return Ok(());
        }
        Err(format!(
            "{} of {} rows are invalid ({:.1}%): more than --max-invalid-pct {max_invalid_pct}",
            self.invalid.len(),
            self.valid.len() + self.invalid.len(),
            self.invalid_pct()
        )
        .into())
    }

    /// Writes the valid orders to silver.
    pub fn write_silver(&self, lake: &Path) -> Result<(), Error> {
        lake::write_jsonl(&lake.join(SILVER), &self.valid)
    }
}

/// Orders and amount of one region.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RegionTotal {
    /// How many orders.
    pub orders: u64,
    /// Their amount.
    pub amount: f64,
}

/// The gold table: totals per region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// The region filter applied (`all` for none).
    pub region: String,
    /// Totals by region, sorted.
    pub regions: BTreeMap<String, RegionTotal>,
    /// The sum over `regions`.
    pub total_amount: f64,
}

/// Totals the silver orders per region, of one region or `all`, and writes them to gold.
/// Amounts are summed in cents, so the totals are exact.
pub fn aggregate(lake: &Path, region: &str) -> Result<Totals, Error> {
    let region = region.trim().to_lowercase();
    let orders: Vec<Order> = lake::read_jsonl(&lake.join(SILVER))?;
    let mut cents: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for order in orders
        .iter()
        .filter(|o| region == "all" || o.region == region)
    {
        let (count, sum) = cents.entry(order.region.clone()).or_default();
        *count += 1;
        *sum += order.amount_cents;
    }
    let total_cents: i64 = cents.values().map(|(_, sum)| sum).sum();
    let totals = Totals {
        region,
        regions: cents
            .into_iter()
            .map(|(region, (orders, sum))| {
                let amount = sum as f64 / 100.0;
                (region, RegionTotal { orders, amount })
            })
            .collect(),
        total_amount: total_cents as f64 / 100.0,
    };
    lake::write_file(
        &lake.join(GOLD),
        serde_json::to_string_pretty(&totals)?.as_bytes(),
    )?;
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS_1: &str = "order_id,region,amount,ordered_at
1,eu,10.00,2025-11-20
2,us,20.50,2025-11-20
3,eu,abc,2025-11-20
";
    const ORDERS_2: &str = "order_id,region,amount,ordered_at
4,EU,5.25,2025-11-21T09:30:00Z
5,,7.00,2025-11-21
";

    fn lake_with_landing() -> tempfile::TempDir {
        let lake = tempfile::tempdir().unwrap();
        let landing = lake.path().join(LANDING);
        std::fs::create_dir_all(&landing).unwrap();
        std::fs::write(landing.join("orders-2.csv"), ORDERS_2).unwrap();
        std::fs::write(landing.join("orders-1.csv"), ORDERS_1).unwrap();
        std::fs::write(landing.join("notes.txt"), "not an orders file").unwrap();
        lake
    }

    #[test]
    fn the_stages_move_orders_through_the_layers() {
        let lake = lake_with_landing();
        let ingested = ingest(lake.path()).unwrap();
        assert_eq!(ingested.rows, 5);
        assert_eq!(ingested.files, ["orders-1.csv", "orders-2.csv"]);

        let validated = validate(lake.path()).unwrap();
        assert_eq!(validated.valid.len(), 3);
        let reasons: Vec<_> = validated
            .invalid
            .iter()
            .map(|(r, why)| (r.line, why.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (4, "amount \"abc\" is not a positive number"),
                (3, "region is empty")
            ]
        );
        assert_eq!(validated.invalid_pct(), 40.0);
        validated.check_invalid_share(40.0).unwrap();
        validated.write_silver(lake.path()).unwrap();

        let all = aggregate(lake.path(), "all").unwrap();
        assert_eq!(
            all.regions["eu"],
            RegionTotal {
                orders: 2,
                amount: 15.25
            }
        );
        assert_eq!(
            all.regions["us"],
            RegionTotal {
                orders: 1,
                amount: 20.5
            }
        );
        assert_eq!(all.total_amount, 35.75);
        let gold: Totals =
            serde_json::from_str(&std::fs::read_to_string(lake.path().join(GOLD)).unwrap())
                .unwrap();
        assert_eq!(gold, all);

        let us = aggregate(lake.path(), "US").unwrap();
        assert_eq!(us.region, "us");
        assert_eq!(us.regions.keys().collect::<Vec<_>>(), ["us"]);
        assert_eq!(us.total_amount, 20.5);
    }

    #[test]
    fn too_many_invalid_rows_fail_the_check() {
        let lake = lake_with_landing();
        ingest(lake.path()).unwrap();
        let err = validate(lake.path())
            .unwrap()
            .check_invalid_share(39.9)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 of 5 rows are invalid (40.0%): more than --max-invalid-pct 39.9"
        );
    }

    #[test]
    fn an_empty_landing_directory_ingests_nothing() {
        let lake = tempfile::tempdir().unwrap();
        std::fs::create_dir(lake.path().join(LANDING)).unwrap();
        let ingested = ingest(lake.path()).unwrap();
        assert_eq!(ingested.rows, 0);
        assert!(ingested.files.is_empty());
        let validated = validate(lake.path()).unwrap();
        assert_eq!(validated.invalid_pct(), 0.0);
        validated.check_invalid_share(0.0).unwrap();
    }

    #[test]
    fn a_missing_landing_directory_is_named() {
        let lake = tempfile::tempdir().unwrap();
        let err = ingest(lake.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot list ") && err.contains("landing"),
            "{err}"
        );
    }
}
