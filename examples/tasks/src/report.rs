//! The daily Markdown report of the orders pipeline.

use crate::pipeline::RegionTotal;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything the report shows: the run and the upstream task values.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInputs {
    /// The heading, before the date.
    pub title: String,
    /// The report date, `YYYY-MM-DD`.
    pub date: String,
    /// The job's name.
    pub job_name: String,
    /// The job run's id.
    pub run_id: i64,
    /// `ingest`'s `rows`.
    pub rows: u64,
    /// `ingest`'s `files`.
    pub files: Vec<String>,
    /// `validate`'s `valid_rows`.
    pub valid_rows: u64,
    /// `validate`'s `invalid_rows`.
    pub invalid_rows: u64,
    /// The job parameter `region`.
    pub region: String,
    /// `aggregate`'s `regions`.
    pub regions: BTreeMap<String, RegionTotal>,
    /// `aggregate`'s `total_amount`.
    pub total_amount: f64,
}

/// The report's file name for a date.
pub fn file_name(date: &str) -> String {
    format!("report-{date}.md")
}

/// Renders the report as Markdown.
pub fn render(inputs: &ReportInputs) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, inputs);
    out
}

fn write_report(out: &mut String, r: &ReportInputs) -> std::fmt::Result {
    writeln!(out, "# {}, {}", r.title, r.date)?;
    writeln!(out)?;
    writeln!(out, "Job `{}`, run {}.", r.job_name, r.run_id)?;
    writeln!(out)?;
    writeln!(out, "## Ingest")?;
    writeln!(out)?;
    let files = if r.files.is_empty() {
        "no landing files".to_string()
    } else {
        format!("{} files ({})", r.files.len(), r.files.join(", "))
    };
    writeln!(out, "- {} rows from {files}", r.rows)?;
    writeln!(out, "- {} valid, {} rejected", r.valid_rows, r.invalid_rows)?;
    writeln!(out)?;
    writeln!(out, "## Totals per region (region: {})", r.region)?;
    writeln!(out)?;
    writeln!(out, "| region | orders | amount |")?;
    writeln!(out, "|---|---:|---:|")?;
    for (region, total) in &r.regions {
        writeln!(out, "| {region} | {} | {:.2} |", total.orders, total.amount)?;
    }
    let orders: u64 = r.regions.values().map(|t| t.orders).sum();
    writeln!(out, "| **total** | {orders} | {:.2} |", r.total_amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_section() {
        let inputs = ReportInputs {
            title: "Orders report".into(),
            date: "2025-11-22".into(),
            job_name: "orders-pipeline".into(),
            run_id: 5,
            rows: 5,
            files: vec!["orders-1.csv".into(), "orders-2.csv".into()],
            valid_rows: 3,
            invalid_rows: 2,
            region: "all".into(),
            regions: [
                (
                    "eu".to_string(),
                    RegionTotal {
                        orders: 2,
                        amount: 15.25,
                    },
                ),
                (
                    "us".to_string(),
                    RegionTotal {
                        orders: 1,
                        amount: 20.5,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            total_amount: 35.75,
        };
        assert_eq!(
            render(&inputs),
            "# Orders report, 2025-11-22

Job `orders-pipeline`, run 5.

## Ingest

- 5 rows from 2 files (orders-1.csv, orders-2.csv)
- 3 valid, 2 rejected

## Totals per region (region: all)

| region | orders | amount |
|---|---:|---:|
| eu | 2 | 15.25 |
| us | 1 | 20.50 |
| **total** | 3 | 35.75 |
"
        );
        assert_eq!(file_name("2025-11-22"), "report-2025-11-22.md");
    }
}
