//! `transform`: drops duplicates from what `extract` produced.
//! Task values: `rows`, `duplicates`.

use weir_examples::{Error, Flags, upstream_value};

fn main() {
    weir_sdk::run(|ctx| {
        Flags::parse(ctx.args(), &[])?;
        let extracted: u64 = upstream_value(ctx, "extract", "rows")?;
        // The pretend source repeats one row in fifty.
        let duplicates = extracted / 50;
        let rows = extracted - duplicates;
        println!("transformed {extracted} rows: dropped {duplicates} duplicates, {rows} remain");
        ctx.set_value("rows", rows)?;
        ctx.set_value("duplicates", duplicates)?;
        Ok::<(), Error>(())
    })
}
