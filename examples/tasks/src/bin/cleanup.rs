//! `cleanup`: runs after `load` whatever its result (`run_if: ALL_DONE`) and removes the run's
//! staging data; always succeeds.

use weir_examples::{Error, Flags};

fn main() {
    weir_sdk::run(|ctx| {
        Flags::parse(ctx.args(), &[])?;
        let load = ctx.result_of("load").unwrap_or("no result");
        println!("load finished with {load}");
        println!(
            "cleaning up run {}: removing staging/run-{}/extract and staging/run-{}/transform",
            ctx.run_id(),
            ctx.run_id(),
            ctx.run_id()
        );
        Ok::<(), Error>(())
    })
}
