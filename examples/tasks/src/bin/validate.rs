//! `validate [--max-invalid-pct N]`: keeps the bronze rows with a positive amount, a region and
//! a date, writes them to `/lake/silver/orders.jsonl`, and fails when more than N percent
//! (default 20) of the rows are invalid.
//! Task values: `valid_rows`, `invalid_rows`.

use std::path::Path;
use weir_examples::{Error, Flags, LAKE, pipeline};

fn main() {
    weir_sdk::run(|ctx| {
        let flags = Flags::parse(ctx.args(), &["max-invalid-pct"])?;
        let max_invalid_pct = flags
            .parse_value("max-invalid-pct", "a percentage such as 20")?
            .unwrap_or(20.0);
        let validated = pipeline::validate(Path::new(LAKE))?;
        for (row, reason) in &validated.invalid {
            println!(
                "rejected {}:{} (order {:?}): {reason}",
                row.source, row.line, row.order_id
            );
        }
        println!(
            "{} valid rows, {} invalid ({:.1}%, at most {max_invalid_pct}% allowed)",
            validated.valid.len(),
            validated.invalid.len(),
            validated.invalid_pct()
        );
        ctx.set_value("valid_rows", validated.valid.len())?;
        ctx.set_value("invalid_rows", validated.invalid.len())?;
        validated.check_invalid_share(max_invalid_pct)?;
        validated.write_silver(Path::new(LAKE))?;
        println!("wrote {LAKE}/{}", pipeline::SILVER);
        Ok::<(), Error>(())
    })
}
