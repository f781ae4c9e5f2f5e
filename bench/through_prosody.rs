//! Benchmarks 2 and 3, end to end through a real Prosody: N c2s clients → Prosody →
//! component-http (release binary, own process) → hyper webhook sink → back, against its
//! ceiling in the same run and the same Prosody: a minimal echo component with no HTTP on a
//! second component domain, and the one a user would write in Python on a third. Rounds
//! alternate A (component-http) / B (echo) / C (Python echo); medians quoted.
//! Part 2: N clients × `window` messages outstanding. Part 3: one client, one in flight.
//! Besides the rates, it prints each process's CPU time per message (user + system, read
//! from /proc over the same rounds): component-http and its sink against each echo
//! component (its own process, one thread), and Prosody's on each side.
//!
//! `cargo bench --bench through_prosody -- [--clients 4] [--window 16] [--size 100]
//! [--rounds 5] [--secs 4] [--single-secs 3] [--warmup 1] [--drain 30] [--daemon PATH]
//! [--threads 0]` (`--threads`: component-http's `[runtime] threads`).

#[path = "through_prosody/c2s.rs"]
mod c2s;
mod common;
#[path = "through_prosody/echo.rs"]
mod echo;
#[allow(dead_code)]
#[path = "../tests/support/prosody.rs"]
mod prosody;
// What prosody.rs shares with the ejabberd harness.
#[allow(dead_code)]
#[path = "../tests/support/server_process.rs"]
mod server_process;

use std::time::{Duration, Instant};

use common::daemon_process::{Daemon, DaemonConfig, SECRET};
use common::sink::SinkProcess;
use common::{cpu_us, median, mib, size_label, Args, RoundResult};
use echo::{Echo, EchoProcess};

const KNOWN: &[&str] = &[
    "clients",
    "window",
    "size",
    "rounds",
    "secs",
    "single-secs",
    "warmup",
    "drain",
    "daemon",
    "threads",
];
/// component-http's domain (A), the echo component's (B) and the Python one's (C).
const BENCH: &str = "bench.localhost";
const ECHO: &str = "echo.localhost";
const PYTHON_ECHO: &str = "pyecho.localhost";
const PASSWORD: &str = "pw";
const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

struct Plan {
    clients: usize,
    window: u32,
    size: usize,
    rounds: usize,
    secs: Duration,
    single_secs: Duration,
    warmup: Duration,
    drain: Duration,
}

fn main() {
    if common::sink::run_if_child() || echo::run_if_child() {
        return;
    }
    if !common::bench_mode() {
        println!("through_prosody: skipped (run it with `cargo bench --bench through_prosody`)");
        return;
    }
    let args = Args::parse(KNOWN);
    let plan = Plan {
        clients: args.get("clients", 4),
        window: args.get("window", 16),
        size: args.get("size", 100),
        rounds: args.get("rounds", 5),
        secs: Duration::from_secs_f64(args.get("secs", 4.0)),
        single_secs: Duration::from_secs_f64(args.get("single-secs", 3.0)),
        warmup: Duration::from_secs_f64(args.get("warmup", 1.0)),
        drain: Duration::from_secs_f64(args.get("drain", 30.0)),
    };
    let started = Instant::now();
    let users: Vec<String> = (0..plan.clients).map(|i| format!("user{i}")).collect();
    let accounts: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), PASSWORD)).collect();
    let server = prosody::Prosody::start(
        &[(BENCH, SECRET), (ECHO, SECRET), (PYTHON_ECHO, SECRET)],
        &accounts,
    );
    println!(
        "Prosody up on c2s {} / component {} with {} users in {:.1} s",
        server.c2s_port,
        server.component_port,
        plan.clients,
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the benchmark's runtime");
    runtime.block_on(run(&args, &plan, &server, &users));
}

async fn run(args: &Args, plan: &Plan, server: &prosody::Prosody, users: &[String]) {
    let sink = SinkProcess::start(plan.size);
    let config = DaemonConfig {
        server_port: server.component_port,
        domain: BENCH,
        sink_port: sink.port,
        max_in_flight: (plan.clients * plan.window as usize).max(256),
        store: false,
        threads: args.get("threads", 0),
    };
    let binary = common::daemon_process::binary(args);
    let mut daemon = Daemon::start(&binary, &config);
    let start_echo = |echo, domain| {
        EchoProcess::start(echo, server.component_port, domain, SECRET)
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail()))
    };
    let echo = start_echo(Echo::Rust, ECHO);
    let python_echo = start_echo(Echo::Python, PYTHON_ECHO);
    let prosody_pid = server.pid().expect("the prosody process");
    let sides = [
        Side {
            domain: BENCH,
            name: "component-http",
            label: "A daemon",
            component: daemon.pid,
            sink: Some(sink.pid()),
            server: prosody_pid,
        },
        Side {
            domain: ECHO,
            name: "echo (Rust)",
            label: "B echo",
            component: echo.pid(),
            sink: None,
            server: prosody_pid,
        },
        Side {
            domain: PYTHON_ECHO,
            name: "echo (Python)",
            label: "C python",
            component: python_echo.pid(),
            sink: None,
            server: prosody_pid,
        },
    ];
    let logins = users
        .iter()
        .map(|user| c2s::login(server.c2s_port, user, PASSWORD, LOGIN_TIMEOUT));
    let clients: Vec<_> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|login| login.unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail())))
        .collect();
    let mut load = c2s::C2sLoad::new(
        clients,
        plan.window,
        plan.size,
        vec![BENCH, ECHO, PYTHON_ECHO],
    );
    wait_for_daemon(&mut load, &daemon, server).await;
    let idle_kb = daemon.rss_kb();
    let all = (plan.clients as u32) * plan.window;
    // Warm-up: pools fill, Prosody's caches warm; not counted.
    for domain in [BENCH, ECHO, PYTHON_ECHO] {
        load.aim_at(domain);
        load.round(all, plan.warmup, plan.drain).await;
    }
    println!(
        "\n== {} clients × {} in flight = {all}, {} bodies == (load average {})",
        plan.clients,
        plan.window,
        size_label(plan.size),
        common::loadavg()
    );
    let many = alternate(&mut load, &sides, all, plan.secs, plan).await;
    println!(
        "\n== one client, one in flight, {} bodies == (load average {})",
        size_label(plan.size),
        common::loadavg()
    );
    let one = alternate(&mut load, &sides, 1, plan.single_secs, plan).await;
    let peak_kb = daemon.peak_rss_kb();
    println!("(load average {})", common::loadavg());
    drop(load);
    daemon.stop();
    drop(echo);
    drop(python_echo);
    let warnings = daemon.warnings();
    if warnings > 0 {
        println!("{}", daemon.log());
    }
    let many_label = format!("{all} in flight ({} clients)", plan.clients);
    println!(
        "\nMedians over the rounds; CPU per message in µs (user + system over the measured \
         rounds, their drains included, ÷ messages answered)"
    );
    println!("| load | component | msgs/s | p50 / p99 ms | errors+lost | CPU: component | its sink | Prosody | total |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, measured) in [
        (&many_label, &many),
        (&"1 in flight (1 client)".to_string(), &one),
    ] {
        for (side, measured) in sides.iter().zip(measured) {
            summary(label, side, measured);
        }
    }
    println!("\ncomponent-http against each echo component (A ÷ B, A ÷ C)");
    println!("| load | rate ÷ Rust echo | rate ÷ Python echo | CPU ÷ Rust echo | CPU ÷ Python echo | p50 − Rust echo | p50 − Python echo |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    compare(&many_label, &many);
    compare("1 in flight (1 client)", &one);
    println!(
        "component-http RSS: idle {:.1} MiB, peak {:.1} MiB; {warnings} warnings logged",
        mib(idle_kb),
        mib(peak_kb)
    );
}

/// Sends single messages to component-http until one is answered without error (it has
/// connected and its webhook answers), for at most 30 s.
async fn wait_for_daemon(load: &mut c2s::C2sLoad, daemon: &Daemon, server: &prosody::Prosody) {
    load.aim_at(BENCH);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let probe = load
            .round(1, Duration::from_millis(200), Duration::from_secs(5))
            .await;
        if probe.completed > 0 && probe.errors == 0 && probe.lost == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "component-http did not answer through Prosody within 30 s\n{}\n{}",
        daemon.log(),
        server.log_tail()
    );
}

/// One side of the comparison: where its messages go and the processes that answer them.
struct Side {
    domain: &'static str,
    /// In the tables.
    name: &'static str,
    /// In the per-round log.
    label: &'static str,
    /// component-http, or the echo component.
    component: u32,
    /// component-http's webhook sink.
    sink: Option<u32>,
    server: u32,
}

/// What one side's rounds gave.
#[derive(Default)]
struct Measured {
    rounds: Vec<RoundResult>,
    cpu: Cpu,
}

/// CPU time, in µs, that a side's processes used over its rounds, and the messages they
/// answered (those of the drains included).
#[derive(Default)]
struct Cpu {
    component_us: u64,
    sink_us: u64,
    server_us: u64,
    messages: u64,
}

impl Cpu {
    fn read(side: &Side) -> [u64; 3] {
        [
            cpu_us(side.component),
            side.sink.map_or(0, cpu_us),
            cpu_us(side.server),
        ]
    }

    fn add(&mut self, before: [u64; 3], after: [u64; 3], messages: u64) {
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

/// `plan.rounds` × (A then B), each `secs` long with `slots` outstanding.
async fn alternate(
    load: &mut c2s::C2sLoad,
    sides: &[Side; 3],
    slots: u32,
    secs: Duration,
    plan: &Plan,
) -> [Measured; 3] {
    let mut measured: [Measured; 3] = Default::default();
    for round in 1..=plan.rounds {
        for (side, measured) in sides.iter().zip(&mut measured) {
            load.aim_at(side.domain);
            let before = Cpu::read(side);
            let result = load.round(slots, secs, plan.drain).await;
            let after = Cpu::read(side);
            // The `slots` outstanding when the window closed were answered in the drain,
            // but for those lost.
            let answered = result.completed + u64::from(slots).saturating_sub(result.lost);
            measured.cpu.add(before, after, answered);
            println!("{}", result.line(&format!("{} #{round}", side.label)));
            measured.rounds.push(result);
        }
    }
    measured
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

fn summary(label: &str, side: &Side, m: &Measured) {
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

fn compare(label: &str, [a, b, c]: &[Measured; 3]) {
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
