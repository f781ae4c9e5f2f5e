//! Benchmark 1, the daemon alone: component-http (the release binary, its own process)
//! between a synthetic XEP-0114 server and a hyper HTTP sink, against its ceiling measured in
//! the same run, a bare hyper client POSTing the same JSON to the same sink at the same
//! concurrency. Rounds alternate daemon / bare client; the table quotes medians.
//!
//! `cargo bench --bench daemon_alone -- [--inflight 1,64,1k,10k] [--sizes 100,10kB,200kB]
//! [--rounds 5] [--secs 3] [--warmup 1] [--drain 30] [--daemon PATH] [--store off|on|both]
//! [--threads N]` (`--threads`: the daemon's `[runtime] threads`; without it, its default).
//! Without --inflight and --sizes: every in-flight count at 100 B bodies, then every body
//! size at 64 in flight. `--store both` measures each setting with two daemons side by side,
//! one without and one with a delivery log (`[store]`), their rounds alternated; the rows of
//! the second say `+ store`, and a last table gives the store's cost.

#[path = "daemon_alone/bare.rs"]
mod bare;
mod common;
#[path = "daemon_alone/synthetic_server.rs"]
mod synthetic_server;
#[path = "daemon_alone/tables.rs"]
mod tables;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon_process::{Daemon, DaemonConfig};
use common::sink::SinkProcess;
use common::{mib, size_label, Args, RoundResult};
use tables::{print_store_ratio, print_table};
use tokio::net::TcpListener;

const KNOWN: &[&str] = &[
    "inflight", "sizes", "rounds", "secs", "warmup", "drain", "daemon", "perf", "store", "threads",
];
const IN_FLIGHT: &[usize] = &[1, 64, 1024, 10_000];
const SIZES: &[usize] = &[100, 10_000, 200_000];

struct Plan {
    /// `--perf FILE`: record a profile of the daemon over the measured rounds.
    perf: Option<String>,
    /// The daemon's `[runtime] threads`; None: its default.
    threads: Option<usize>,
    rounds: usize,
    secs: Duration,
    warmup: Duration,
    drain: Duration,
}

/// One configuration's measurements.
struct Row {
    /// The daemon ran with a delivery log.
    store: bool,
    in_flight: usize,
    body: usize,
    daemon: Vec<RoundResult>,
    bare: Vec<RoundResult>,
    idle_kb: u64,
    peak_kb: u64,
    /// Mean POST body the sink received from the daemon and from the bare client.
    post_bytes: (f64, f64),
    /// CPU used over the measured rounds, daemon side then bare side.
    cpu: [Cpu; 2],
    warnings: usize,
}

/// CPU time (user + system) of the three processes over the daemon's rounds or the bare
/// client's, with the wall time and the POSTs the sink answered in them.
#[derive(Clone, Copy, Default)]
struct Cpu {
    daemon_us: u64,
    /// Of it, the store's background writer thread.
    writer_us: u64,
    /// And its catch-up writer thread.
    catch_up_us: u64,
    /// This process: the synthetic XEP-0114 server, or the bare client.
    driver_us: u64,
    sink_us: u64,
    wall_us: u64,
    posts: u64,
}

impl Cpu {
    fn now(daemon: &Daemon, sink: &SinkProcess, origin: Instant) -> Cpu {
        Cpu {
            daemon_us: common::cpu_us(daemon.pid),
            writer_us: common::thread_cpu_us(daemon.pid, "store-writer"),
            catch_up_us: common::thread_cpu_us(daemon.pid, "store-catch-up"),
            driver_us: common::cpu_us(std::process::id()),
            sink_us: common::cpu_us(sink.pid()),
            wall_us: origin.elapsed().as_micros() as u64,
            posts: 0,
        }
    }

    /// Adds what was used between `earlier` and `later`, and the POSTs answered then (a
    /// process gone meanwhile reads 0, and adds nothing rather than wrapping around).
    fn add(&mut self, later: Cpu, earlier: Cpu, posts: u64) {
        self.daemon_us += later.daemon_us.saturating_sub(earlier.daemon_us);
        self.writer_us += later.writer_us.saturating_sub(earlier.writer_us);
        self.catch_up_us += later.catch_up_us.saturating_sub(earlier.catch_up_us);
        self.driver_us += later.driver_us.saturating_sub(earlier.driver_us);
        self.sink_us += later.sink_us.saturating_sub(earlier.sink_us);
        self.wall_us += later.wall_us.saturating_sub(earlier.wall_us);
        self.posts += posts;
    }

    fn total_us(&self) -> u64 {
        self.daemon_us + self.driver_us + self.sink_us
    }

    /// Microseconds of CPU per POST answered.
    fn per_post(&self, us: u64) -> f64 {
        us as f64 / self.posts.max(1) as f64
    }

    /// How many cores the three processes kept busy, on average.
    fn cores_busy(&self) -> f64 {
        self.total_us() as f64 / self.wall_us.max(1) as f64
    }
}

fn main() {
    if common::sink::run_if_child() {
        return;
    }
    if !common::bench_mode() {
        println!("daemon_alone: skipped (run it with `cargo bench --bench daemon_alone`)");
        return;
    }
    let args = Args::parse(KNOWN);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the benchmark's runtime");
    runtime.block_on(run(&args));
}

async fn run(args: &Args) {
    let configs: Vec<(usize, usize)> = if args.has("inflight") || args.has("sizes") {
        let sizes = args.list("sizes", &[100]);
        let counts = args.list("inflight", &[64]);
        counts
            .iter()
            .flat_map(|&c| sizes.iter().map(move |&s| (c, s)))
            .collect()
    } else {
        let counts = IN_FLIGHT.iter().map(|&c| (c, 100));
        counts.chain(SIZES[1..].iter().map(|&s| (64, s))).collect()
    };
    let plan = Plan {
        perf: args.string("perf").map(str::to_string),
        threads: args.optional("threads"),
        rounds: args.get("rounds", 5),
        secs: Duration::from_secs_f64(args.get("secs", 3.0)),
        warmup: Duration::from_secs_f64(args.get("warmup", 1.0)),
        drain: Duration::from_secs_f64(args.get("drain", 30.0)),
    };
    let binary = common::daemon_process::binary(args);
    println!("daemon: {}", binary.display());
    let stores: &[bool] = match args.string("store") {
        None | Some("off") => &[false],
        Some("on") => &[true],
        Some("both") => &[false, true],
        Some(other) => panic!("--store {other}: off, on or both"),
    };
    let mut rows = Vec::new();
    for (in_flight, body) in configs {
        rows.extend(measure(&binary, in_flight, body, stores, &plan).await);
    }
    print_table(&rows);
    if stores.len() == 2 {
        print_store_ratio(&rows);
    }
}

/// One daemon of a measurement, with the synthetic server's end of its stream.
struct Measured {
    daemon: Daemon,
    load: synthetic_server::ComponentLoad,
    row: Row,
}

/// Measures one setting: a daemon for each of `stores` (without a store, with one), all
/// started at once against the same sink, their rounds alternated with the bare client's
/// (daemon, daemon with a store, bare, ...), so that a drift of the machine meets them all.
async fn measure(
    binary: &Path,
    in_flight: usize,
    body: usize,
    stores: &[bool],
    plan: &Plan,
) -> Vec<Row> {
    println!(
        "\n== {in_flight} in flight, {} bodies{} == (load average {})",
        size_label(body),
        match stores {
            [false, true] => ", without and with a store, rounds alternated",
            [true] => ", with a store",
            _ => "",
        },
        common::loadavg()
    );
    let sink = SinkProcess::start(body);
    let slots = in_flight as u32;
    let mut measured = Vec::new();
    for &store in stores {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the synthetic XEP-0114 server");
        let config = DaemonConfig {
            server_port: listener.local_addr().expect("its address").port(),
            domain: synthetic_server::DOMAIN,
            sink_port: sink.port,
            max_in_flight: in_flight.max(256),
            store,
            threads: plan.threads,
        };
        let daemon = Daemon::start(binary, &config);
        let (tcp, leftover) =
            match synthetic_server::accept(&listener, Duration::from_secs(15)).await {
                Ok(accepted) => accepted,
                Err(error) => panic!("{error}\n{}", daemon.log()),
            };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let row = Row {
            store,
            in_flight,
            body,
            daemon: Vec::new(),
            bare: Vec::new(),
            idle_kb: daemon.rss_kb(),
            peak_kb: 0,
            post_bytes: (0.0, 0.0),
            cpu: [Cpu::default(); 2],
            warnings: 0,
        };
        let load = synthetic_server::ComponentLoad::new(tcp, leftover, slots, body);
        measured.push(Measured { daemon, load, row });
    }
    let bare = bare::BareClient::new(sink.port, in_flight, body);
    // Warm-up: connection pools fill, allocators grow; not counted.
    for m in &mut measured {
        m.load.round(slots, plan.warmup, plan.drain).await;
    }
    bare.round(slots, plan.warmup, plan.drain).await;
    let origin = Instant::now();
    let mut posts = vec![[(0u64, 0u64); 2]; measured.len()];
    // The profile is of the last daemon: the one with a store, when there are two.
    let profile = plan
        .perf
        .as_deref()
        .and_then(|out| measured.last().map(|m| m.daemon.start_profile(out)));
    for round in 1..=plan.rounds {
        for (m, posts) in measured.iter_mut().zip(&mut posts) {
            let before = sink.stats().await;
            let cpu_before = Cpu::now(&m.daemon, &sink, origin);
            let a = m.load.round(slots, plan.secs, plan.drain).await;
            let cpu_after = Cpu::now(&m.daemon, &sink, origin);
            let after = sink.stats().await;
            m.row.cpu[0].add(cpu_after, cpu_before, after.0 - before.0);
            let label = if m.row.store { "+ store" } else { "" };
            println!("{}", a.line(&format!("daemon {label} #{round}")));
            posts[0] = add(posts[0], diff(after, before));
            m.row.daemon.push(a);
        }
        let before = sink.stats().await;
        let cpu_before: Vec<Cpu> = measured
            .iter()
            .map(|m| Cpu::now(&m.daemon, &sink, origin))
            .collect();
        let b = bare.round(slots, plan.secs, plan.drain).await;
        let after = sink.stats().await;
        println!("{}", b.line(&format!("bare    #{round}")));
        for ((m, posts), cpu_before) in measured.iter_mut().zip(&mut posts).zip(cpu_before) {
            let cpu_after = Cpu::now(&m.daemon, &sink, origin);
            m.row.cpu[1].add(cpu_after, cpu_before, after.0 - before.0);
            posts[1] = add(posts[1], diff(after, before));
            m.row.bare.push(b.clone());
        }
    }
    if let Some(perf) = profile {
        Daemon::stop_profile(perf);
    }
    let mut rows = Vec::new();
    for (mut m, posts) in measured.into_iter().zip(posts) {
        m.row.peak_kb = m.daemon.peak_rss_kb();
        m.row.post_bytes = (mean(posts[0]), mean(posts[1]));
        println!(
            "daemon{} RSS idle {:.1} MiB, peak {:.1} MiB; mean POST body: daemon {:.0} B, bare {:.0} B; \
             load average {}",
            if m.row.store { " with a store" } else { "" },
            mib(m.row.idle_kb),
            mib(m.row.peak_kb),
            m.row.post_bytes.0,
            m.row.post_bytes.1,
            common::loadavg()
        );
        m.daemon.stop(); // first, so that it closes the stream itself (no warning for a lost link)
        drop(m.load);
        m.row.warnings = m.daemon.warnings();
        if m.row.warnings > 0 {
            println!("{}", m.daemon.log());
        }
        rows.push(m.row);
    }
    rows
}

fn diff(later: (u64, u64), earlier: (u64, u64)) -> (u64, u64) {
    (later.0 - earlier.0, later.1 - earlier.1)
}

fn add(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 + b.0, a.1 + b.1)
}

fn mean((count, bytes): (u64, u64)) -> f64 {
    bytes as f64 / count.max(1) as f64
}
