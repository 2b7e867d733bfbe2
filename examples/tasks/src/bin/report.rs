//! `report --date YYYY-MM-DD`: writes `/lake/reports/report-<date>.md` from the values of the
//! upstream tasks `ingest`, `validate` and `aggregate`, and prints it. The heading is the task's
//! `REPORT_TITLE` environment variable (default "Orders report").
//! Task value: `report` (the report's path).

use std::path::Path;
use weir_examples::report::{self, ReportInputs};
use weir_examples::{Error, Flags, LAKE, lake, orders, upstream_value};

fn main() {
    weir_sdk::run(|ctx| {
        let flags = Flags::parse(ctx.args(), &["date"])?;
        let date = flags
            .get("date")
            .ok_or("missing --date: the job passes --date {{job.start_time.iso_date}}")?;
        if orders::parse_date(date).as_deref() != Some(date) {
            return Err(format!("--date {date:?} is not a date: expected YYYY-MM-DD").into());
        }
        let inputs = ReportInputs {
            title: std::env::var("REPORT_TITLE").unwrap_or_else(|_| "Orders report".into()),
            date: date.to_string(),
            job_name: ctx.job_name().to_string(),
            run_id: ctx.run_id(),
            rows: upstream_value(ctx, "ingest", "rows")?,
            files: upstream_value(ctx, "ingest", "files")?,
            valid_rows: upstream_value(ctx, "validate", "valid_rows")?,
            invalid_rows: upstream_value(ctx, "validate", "invalid_rows")?,
            region: ctx.param("region").unwrap_or("all").to_string(),
            regions: upstream_value(ctx, "aggregate", "regions")?,
            total_amount: upstream_value(ctx, "aggregate", "total_amount")?,
        };
        let text = report::render(&inputs);
        let path = Path::new(LAKE)
            .join("reports")
            .join(report::file_name(date));
        lake::write_file(&path, text.as_bytes())?;
        print!("{text}");
        println!("\nwritten to {}", path.display());
        ctx.set_value("report", path.display().to_string())?;
        Ok::<(), Error>(())
    })
}
