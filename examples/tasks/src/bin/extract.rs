//! `extract [--fail-attempts N]`: a flaky extraction that fails while `WEIR_ATTEMPT` is below
//! N (default 0), so the job's retries make it succeed.
//! Task value: `rows`.

use weir_examples::{Error, Flags};

/// Rows the pretend source system returns.
const SOURCE_ROWS: u64 = 1000;

fn main() {
    weir_sdk::run(|ctx| {
        let flags = Flags::parse(ctx.args(), &["fail-attempts"])?;
        let fail_attempts: u32 = flags
            .parse_value("fail-attempts", "a whole number")?
            .unwrap_or(0);
        let attempt = ctx.attempt();
        if attempt < fail_attempts {
            return Err(format!(
                "attempt {attempt} fails on purpose: the source is unavailable \
                 (--fail-attempts {fail_attempts} fails attempts 0 to {})",
                fail_attempts - 1
            )
            .into());
        }
        println!("attempt {attempt}: extracted {SOURCE_ROWS} rows from the source system");
        ctx.set_value("rows", SOURCE_ROWS)?;
        Ok::<(), Error>(())
    })
}
