//! Saves visits in a loop and prints each id only after its save returned. The durability
//! test kills this process with SIGKILL at a random moment and checks that every printed
//! visit survived.
//!
//! Usage: `durability-child DATA_DIR` (the store must exist and know `南山小学`).

use anyhow::Context;
use fieldlog_core::{Options, Store};
use fieldlog_domain::VisitInput;
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .context("usage: durability-child DATA_DIR")?;
    let mut store = Store::open(dir.as_ref(), Options::default())?;
    let today = chrono::Local::now().date_naive();
    let mut out = std::io::stdout().lock();
    for n in 0.. {
        let input = VisitInput {
            school: "南山小学".into(),
            activities: vec!["lecture".into()],
            topic: format!("第 {n} 次"),
            notes: "x".repeat(n % 500),
            ..VisitInput::default()
        };
        let visit = store.add_visit(&input, today)?;
        writeln!(out, "{}", visit.id)?;
        out.flush()?;
    }
    Ok(())
}
