//! Benchmarks 2 and 3, end to end through a real Prosody: N c2s clients → Prosody →
//! component-http (release binary, own process) → hyper webhook sink → back, against its
//! ceiling in the same run and the same Prosody: a minimal echo component with no HTTP on a
//! second component domain. Rounds alternate A (component-http) / B (echo); medians quoted.
//! Part 2: N clients × `window` messages outstanding. Part 3: one client, one in flight.
//!
//! `cargo bench --bench through_prosody -- [--clients 16] [--window 8] [--size 100]
//! [--rounds 5] [--secs 4] [--single-secs 3] [--warmup 1] [--drain 30] [--daemon PATH]`

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
use common::{median, mib, size_label, Args, RoundResult};

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
];
/// component-http's domain (A) and the echo component's (B).
const BENCH: &str = "bench.localhost";
const ECHO: &str = "echo.localhost";
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
    if common::sink::run_if_child() {
        return;
    }
    if !common::bench_mode() {
        println!("through_prosody: skipped (run it with `cargo bench --bench through_prosody`)");
        return;
    }
    let args = Args::parse(KNOWN);
    let plan = Plan {
        clients: args.get("clients", 16),
        window: args.get("window", 8),
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
    let server = prosody::Prosody::start(&[(BENCH, SECRET), (ECHO, SECRET)], &accounts);
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
    };
    let binary = common::daemon_process::binary(args);
    let mut daemon = Daemon::start(&binary, &config);
    let echo = echo::start(server.component_port, ECHO, SECRET, LOGIN_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail()));
    let logins = users
        .iter()
        .map(|user| c2s::login(server.c2s_port, user, PASSWORD, LOGIN_TIMEOUT));
    let clients: Vec<_> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|login| login.unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail())))
        .collect();
    let mut load = c2s::C2sLoad::new(clients, plan.window, plan.size, vec![BENCH, ECHO]);
    wait_for_daemon(&mut load, &daemon, server).await;
    let idle_kb = daemon.rss_kb();
    let all = (plan.clients as u32) * plan.window;
    // Warm-up: pools fill, Prosody's caches warm; not counted.
    for domain in [BENCH, ECHO] {
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
    let (many_a, many_b) = alternate(&mut load, all, plan.secs, plan).await;
    println!(
        "\n== one client, one in flight, {} bodies == (load average {})",
        size_label(plan.size),
        common::loadavg()
    );
    let (one_a, one_b) = alternate(&mut load, 1, plan.single_secs, plan).await;
    let peak_kb = daemon.peak_rss_kb();
    println!("(load average {})", common::loadavg());
    drop(load);
    daemon.stop();
    echo.abort();
    let warnings = daemon.warnings();
    if warnings > 0 {
        println!("{}", daemon.log());
    }
    println!(
        "\nMedians over the rounds (A = component-http + sink, B = echo component, same Prosody)"
    );
    println!("| load | A msgs/s | B msgs/s | A/B | A p50 / p99 ms | B p50 / p99 ms | A errors+lost | B errors+lost |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    summary(
        &format!("{all} in flight ({} clients)", plan.clients),
        &many_a,
        &many_b,
    );
    summary("1 in flight (1 client)", &one_a, &one_b);
    let p50 = |rounds: &[RoundResult]| {
        median(
            &rounds
                .iter()
                .map(|r| r.percentile_ms(50.0))
                .collect::<Vec<_>>(),
        )
    };
    println!(
        "\nOne at a time: component-http adds {:.3} ms at p50 over the echo component",
        p50(&one_a) - p50(&one_b)
    );
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

/// `plan.rounds` × (A then B), each `secs` long with `slots` outstanding.
async fn alternate(
    load: &mut c2s::C2sLoad,
    slots: u32,
    secs: Duration,
    plan: &Plan,
) -> (Vec<RoundResult>, Vec<RoundResult>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 1..=plan.rounds {
        for (domain, label, results) in [(BENCH, "A daemon", &mut a), (ECHO, "B echo", &mut b)] {
            load.aim_at(domain);
            let result = load.round(slots, secs, plan.drain).await;
            println!("{}", result.line(&format!("{label} #{round}")));
            results.push(result);
        }
    }
    (a, b)
}

fn summary(label: &str, a: &[RoundResult], b: &[RoundResult]) {
    let med = |rounds: &[RoundResult], f: &dyn Fn(&RoundResult) -> f64| {
        median(&rounds.iter().map(f).collect::<Vec<_>>())
    };
    let bad = |rounds: &[RoundResult]| rounds.iter().map(|r| r.errors + r.lost).sum::<u64>();
    let (a_rate, b_rate) = (med(a, &|r| r.rate()), med(b, &|r| r.rate()));
    println!(
        "| {label} | {a_rate:.0} | {b_rate:.0} | {:.0} % | {:.3} / {:.3} | {:.3} / {:.3} | {} | {} |",
        100.0 * a_rate / b_rate,
        med(a, &|r| r.percentile_ms(50.0)),
        med(a, &|r| r.percentile_ms(99.0)),
        med(b, &|r| r.percentile_ms(50.0)),
        med(b, &|r| r.percentile_ms(99.0)),
        bad(a),
        bad(b)
    );
}
