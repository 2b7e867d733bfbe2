//! `load [--fail true|false]`: loads the transformed rows into the warehouse; fails on purpose
//! with `--fail true`.
//! Task value: `loaded_rows`.

use weir_examples::{Error, Flags, upstream_value};

fn main() {
    weir_sdk::run(|ctx| {
        let flags = Flags::parse(ctx.args(), &["fail"])?;
        let fail: bool = flags.parse_value("fail", "true or false")?.unwrap_or(false);
        let rows: u64 = upstream_value(ctx, "transform", "rows")?;
        if fail {
            return Err(format!(
                "loading {rows} rows failed on purpose: --fail is true \
                 (run the job with fail_load=false to let it succeed)"
            )
            .into());
        }
        println!("loaded {rows} rows into the warehouse");
        ctx.set_value("loaded_rows", rows)?;
        Ok::<(), Error>(())
    })
}
