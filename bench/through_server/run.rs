//! The through-server benchmarks' one procedure, for Prosody (through_prosody.rs) and
//! ejabberd (through_ejabberd.rs) alike: N c2s clients → the server → component-http
//! (release binary, own process) → hyper webhook sink → back, against its ceilings in the
//! same run and through the same server: a minimal echo component with no HTTP on a second
//! component domain, and the one a user would write in Python on a third. Rounds alternate
//! A (component-http) / B (echo) / C (Python echo); medians quoted. Part 2: N clients ×
//! `window` messages outstanding. Part 3: one client, one in flight. Besides the rates, it
//! prints each process's CPU time per message (user + system, read from /proc over the same
//! rounds): component-http and its sink against each echo component (its own process, one
//! thread), and the server's on each side.

use std::time::{Duration, Instant};

use super::c2s;
use super::echo::{self, Echo, EchoProcess};
use super::measure::{compare, summary, summary_header, Cpu, Measured, Side, COMPARE_HEADER};
use crate::common::daemon_process::{Daemon, DaemonConfig, SECRET};
use crate::common::sink::SinkProcess;
use crate::common::{self, mib, size_label, Args};
use crate::support::xmpp_server::{Server, XmppServer};

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
/// The echo components' secrets.
const ECHO_SECRET: &str = "echo-secret";
const PYTHON_ECHO_SECRET: &str = "pyecho-secret";
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
    /// component-http's `[runtime] threads`; None: its default.
    threads: Option<usize>,
}

/// The benchmark binary's `main`, through `kind`; `target` is its Cargo name.
pub fn main_through(kind: Server, target: &str) {
    if common::sink::run_if_child() || echo::run_if_child() {
        return;
    }
    if !common::bench_mode() {
        println!("{target}: skipped (run it with `cargo bench --bench {target}`)");
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
        threads: args.optional("threads"),
    };
    let started = Instant::now();
    let users: Vec<String> = (0..plan.clients).map(|i| format!("user{i}")).collect();
    let accounts: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), PASSWORD)).collect();
    let server = kind.start(
        &[
            (BENCH, SECRET),
            (ECHO, ECHO_SECRET),
            (PYTHON_ECHO, PYTHON_ECHO_SECRET),
        ],
        &accounts,
    );
    println!(
        "{} up on c2s {} / component {} with {} users in {:.1} s",
        kind.name(),
        server.c2s_port(),
        server.component_port(),
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

async fn run(args: &Args, plan: &Plan, server: &XmppServer, users: &[String]) {
    let sink = SinkProcess::start(plan.size);
    let config = DaemonConfig {
        server_port: server.component_port_for(BENCH),
        domain: BENCH,
        sink_port: sink.port,
        max_in_flight: (plan.clients * plan.window as usize).max(256),
        store: false,
        threads: plan.threads,
    };
    let binary = common::daemon_process::binary(args);
    let mut daemon = Daemon::start(&binary, &config);
    let start_echo = |echo, domain, secret| {
        EchoProcess::start(echo, server.component_port_for(domain), domain, secret)
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail()))
    };
    let echo = start_echo(Echo::Rust, ECHO, ECHO_SECRET);
    let python_echo = start_echo(Echo::Python, PYTHON_ECHO, PYTHON_ECHO_SECRET);
    let server_pid = server.pid().expect("the server's process");
    let side = |domain, name, label, component, sink| Side {
        domain,
        name,
        label,
        component,
        sink,
        server: server_pid,
    };
    let sides = [
        side(
            BENCH,
            "component-http",
            "A daemon",
            daemon.pid,
            Some(sink.pid()),
        ),
        side(ECHO, "echo (Rust)", "B echo", echo.pid(), None),
        side(
            PYTHON_ECHO,
            "echo (Python)",
            "C python",
            python_echo.pid(),
            None,
        ),
    ];
    let logins = users
        .iter()
        .map(|user| c2s::login(server.c2s_port(), user, PASSWORD, LOGIN_TIMEOUT));
    let clients: Vec<_> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|login| login.unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail())))
        .collect();
    let domains = vec![BENCH, ECHO, PYTHON_ECHO];
    let mut load = c2s::C2sLoad::new(clients, plan.window, plan.size, domains);
    wait_for_daemon(&mut load, &daemon, server).await;
    let idle_kb = daemon.rss_kb();
    let all = (plan.clients as u32) * plan.window;
    // Warm-up: pools fill, the server's caches warm; not counted.
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
    let one_label = "1 in flight (1 client)";
    println!(
        "\nThrough {}; medians over the rounds; CPU per message in µs (user + system over \
         the measured rounds, their drains included, ÷ messages answered)",
        server.kind().name()
    );
    println!("{}", summary_header(server.kind().name()));
    for (label, measured) in [(many_label.as_str(), &many), (one_label, &one)] {
        for (side, measured) in sides.iter().zip(measured) {
            summary(label, side, measured);
        }
    }
    println!("\ncomponent-http against each echo component (A ÷ B, A ÷ C)");
    println!("{COMPARE_HEADER}");
    compare(&many_label, &many);
    compare(one_label, &one);
    println!(
        "component-http RSS: idle {:.1} MiB, peak {:.1} MiB; {warnings} warnings logged",
        mib(idle_kb),
        mib(peak_kb)
    );
}

/// Sends single messages to component-http until one is answered without error (it has
/// connected and its webhook answers), for at most 30 s.
async fn wait_for_daemon(load: &mut c2s::C2sLoad, daemon: &Daemon, server: &XmppServer) {
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
        "component-http did not answer through {} within 30 s\n{}\n{}",
        server.kind().name(),
        daemon.log(),
        server.log_tail()
    );
}

/// `plan.rounds` × (A, B, C), each `secs` long with `slots` outstanding.
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
