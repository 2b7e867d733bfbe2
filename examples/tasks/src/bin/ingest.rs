//! `ingest`: reads every `/lake/landing/*.csv` into `/lake/bronze/orders.jsonl`.
//! Task values: `rows` (number of rows), `files` (the landing files read).

use std::path::Path;
use weir_examples::{Error, Flags, LAKE, pipeline};

fn main() {
    weir_sdk::run(|ctx| {
        Flags::parse(ctx.args(), &[])?;
        let ingested = pipeline::ingest(Path::new(LAKE))?;
        println!(
            "ingested {} rows from {} landing files into {LAKE}/{}",
            ingested.rows,
            ingested.files.len(),
            pipeline::BRONZE
        );
        for file in &ingested.files {
            println!("  {file}");
        }
        ctx.set_value("rows", ingested.rows)?;
        ctx.set_value("files", &ingested.files)?;
        Ok::<(), Error>(())
    })
}
