//! What the through-server benchmarks measure of one side (component-http, or an echo
//! component): each round's result, and the CPU time of its processes from /proc, and
//! the two tables printed from them.

use crate::common::{cpu_us, median, RoundResult};

/// One side of the comparison: where its messages go and the processes that answer them.
pub struct Side {
    pub domain: &'static str,
    /// In the tables.
    pub name: &'static str,
    /// In the per-round log.
    pub label: &'static str,
    /// component-http, or the echo component.
    pub component: u32,
    /// component-http's webhook sink.
    pub sink: Option<u32>,
    /// The XMPP server (Prosody, or ejabberd's Erlang VM).
    pub server: u32,
}

/// What one side's rounds gave.
#[derive(Default)]
pub struct Measured {
    pub rounds: Vec<RoundResult>,
    pub cpu: Cpu,
}

/// CPU time, in µs, that a side's processes used over its rounds, and the messages they
/// answered (those of the drains included).
#[derive(Default)]
pub struct Cpu {
    component_us: u64,
    sink_us: u64,
    server_us: u64,
    messages: u64,
}

impl Cpu {
    /// The CPU time its processes have used so far: component, sink, server.
    pub fn read(side: &Side) -> [u64; 3] {
        [
            cpu_us(side.component),
            side.sink.map_or(0, cpu_us),
            cpu_us(side.server),
        ]
    }

    pub fn add(&mut self, before: [u64; 3], after: [u64; 3], messages: u64) {
        self.component_us += after[0].saturating_sub(before[0]);
        self.sink_us += after[1].saturating_sub(before[1]);
        self.server_us += after[2].saturating_sub(before[2]);
        self.messages += messages;
    }

    /// Microseconds per message answered.
    fn per_message(&self, us: u64) -> f64 {
        us as f64 / self.messages.max(1) as f64
    }

    fn total_us(&self) -> u64 {
        self.component_us + self.sink_us + self.server_us
    }
}

impl Measured {
    fn median(&self, f: &dyn Fn(&RoundResult) -> f64) -> f64 {
        median(&self.rounds.iter().map(f).collect::<Vec<_>>())
    }

    fn rate(&self) -> f64 {
        self.median(&|r| r.rate())
    }

    fn p50_ms(&self) -> f64 {
        self.median(&|r| r.percentile_ms(50.0))
    }

    fn cpu_per_message(&self) -> f64 {
        self.cpu.per_message(self.cpu.component_us)
    }
}

/// The header of the table `summary` prints rows of; `server` names the server's column.
pub fn summary_header(server: &str) -> String {
    format!(
        "| load | component | msgs/s | p50 / p99 ms | errors+lost | CPU: component | its sink | \
         {server} | total |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
}

/// One side's row: its rate, latency, errors, and CPU per message of each process.
pub fn summary(label: &str, side: &Side, m: &Measured) {
    let bad: u64 = m.rounds.iter().map(|r| r.errors + r.lost).sum();
    let sink = match side.sink {
        Some(_) => format!("{:.1}", m.cpu.per_message(m.cpu.sink_us)),
        None => "–".into(),
    };
    println!(
        "| {label} | {} | {:.0} | {:.3} / {:.3} | {bad} | {:.1} | {sink} | {:.1} | {:.1} |",
        side.name,
        m.rate(),
        m.p50_ms(),
        m.median(&|r| r.percentile_ms(99.0)),
        m.cpu_per_message(),
        m.cpu.per_message(m.cpu.server_us),
        m.cpu.per_message(m.cpu.total_us()),
    );
}

/// The header of the table `compare` prints rows of.
pub const COMPARE_HEADER: &str =
    "| load | rate ÷ Rust echo | rate ÷ Python echo | CPU ÷ Rust echo \
    | CPU ÷ Python echo | p50 − Rust echo | p50 − Python echo |\n\
    |---|---:|---:|---:|---:|---:|---:|";

/// component-http (a) against the Rust (b) and the Python (c) echo component.
pub fn compare(label: &str, [a, b, c]: &[Measured; 3]) {
    println!(
        "| {label} | {:.0} % | {:.0} % | {:.2} × | {:.2} × | {:+.3} ms | {:+.3} ms |",
        100.0 * a.rate() / b.rate(),
        100.0 * a.rate() / c.rate(),
        a.cpu_per_message() / b.cpu_per_message().max(f64::MIN_POSITIVE),
        a.cpu_per_message() / c.cpu_per_message().max(f64::MIN_POSITIVE),
        a.p50_ms() - b.p50_ms(),
        a.p50_ms() - c.p50_ms(),
    );
}
