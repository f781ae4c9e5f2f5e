//! Benchmarks 2 and 3 through a real Prosody: c2s clients → Prosody → component-http →
//! webhook sink → back, against a Rust and a Python echo component through the same
//! Prosody in the same run, with the CPU each process uses per message. The procedure,
//! shared with through_ejabberd.rs, is in through_server/run.rs.
//!
//! `cargo bench --bench through_prosody -- [--clients 4] [--window 16] [--size 100]
//! [--rounds 5] [--secs 4] [--single-secs 3] [--warmup 1] [--drain 30] [--daemon PATH]
//! [--threads N]` (`--threads`: component-http's `[runtime] threads`; without it, its
//! default).

mod common;
#[path = "../tests/support/mod.rs"]
mod support;
mod through_server;

fn main() {
    through_server::run::main_through(support::xmpp_server::Server::Prosody, "through_prosody");
}
