//! `aggregate [--region R]`: totals the silver orders per region (only region R unless it is
//! `all`, the default) into `/lake/gold/totals.json`.
//! Task values: `regions` (`{"eu": {"orders": 2, "amount": 15.25}, ...}`), `total_amount`.

use std::path::Path;
use weir_examples::{Error, Flags, LAKE, pipeline};

fn main() {
    weir_sdk::run(|ctx| {
        let flags = Flags::parse(ctx.args(), &["region"])?;
        let region = flags.get("region").unwrap_or("all");
        let totals = pipeline::aggregate(Path::new(LAKE), region)?;
        if totals.regions.is_empty() {
            println!("no valid orders for region {:?}", totals.region);
        }
        for (name, total) in &totals.regions {
            println!("{name}: {} orders, {:.2}", total.orders, total.amount);
        }
        println!(
            "total {:.2}, written to {LAKE}/{}",
            totals.total_amount,
            pipeline::GOLD
        );
        ctx.set_value("regions", &totals.regions)?;
        ctx.set_value("total_amount", totals.total_amount)?;
        Ok::<(), Error>(())
    })
}
