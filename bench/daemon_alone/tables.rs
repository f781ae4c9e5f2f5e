//! The daemon-alone benchmark's tables: the rates and latencies, the CPU per exchange, and
//! with `--store both` what the delivery log costs, each from the rounds `measure` kept.

use super::common::{median, mib, size_label, RoundResult};
use super::Row;

/// With `--store both`: what the store leaves of the daemon's rate and what it adds to its
/// CPU, each setting's two daemons measured in the same alternated rounds.
pub(super) fn print_store_ratio(rows: &[Row]) {
    println!("\nThe store's cost (rounds alternated: each pair ran side by side)");
    println!(
        "| in flight | body | stanzas/s, no store | with store | ratio | daemon CPU µs/msg, no store | with store | difference | of it, the background writer | the catch-up writer |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for pair in rows.chunks(2) {
        let [without, with] = pair else { continue };
        let (a, _, _) = medians(&without.daemon);
        let (b, _, _) = medians(&with.daemon);
        let ca = without.cpu[0].per_post(without.cpu[0].daemon_us);
        let cb = with.cpu[0].per_post(with.cpu[0].daemon_us);
        println!(
            "| {} | {} | {a:.0} | {b:.0} | {:.0} % | {ca:.1} | {cb:.1} | {:+.1} | {:.1} | {:.1} |",
            without.in_flight,
            size_label(without.body),
            100.0 * b / a,
            cb - ca,
            with.cpu[0].per_post(with.cpu[0].writer_us),
            with.cpu[0].per_post(with.cpu[0].catch_up_us),
        );
    }
}

/// The in-flight column: the count, and whether the daemon kept a delivery log.
fn in_flight_label(row: &Row) -> String {
    if row.store {
        format!("{} + store", row.in_flight)
    } else {
        row.in_flight.to_string()
    }
}

fn medians(rounds: &[RoundResult]) -> (f64, f64, f64) {
    let pick = |f: &dyn Fn(&RoundResult) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    (
        pick(&|r| r.rate()),
        pick(&|r| r.percentile_ms(50.0)),
        pick(&|r| r.percentile_ms(99.0)),
    )
}

pub(super) fn print_table(rows: &[Row]) {
    println!("\nMedians over the rounds (daemon = component-http, bare = hyper client, same sink)");
    println!(
        "| in flight | body | daemon stanzas/s | bare POSTs/s | daemon/bare | daemon p50 / p99 ms \
         | bare p50 / p99 ms | idle RSS | peak RSS | errors | lost | warnings |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (a_rate, a50, a99) = medians(&row.daemon);
        let (b_rate, b50, b99) = medians(&row.bare);
        let errors: u64 = row.daemon.iter().map(|r| r.errors).sum();
        let lost: u64 = row.daemon.iter().map(|r| r.lost).sum();
        let bare_bad: u64 = row.bare.iter().map(|r| r.errors + r.lost).sum();
        println!(
            "| {} | {} | {a_rate:.0} | {b_rate:.0} | {:.0} % | {a50:.2} / {a99:.2} | {b50:.2} / {b99:.2} \
             | {:.1} MiB | {:.1} MiB | {errors} | {lost} | {} |{}",
            in_flight_label(row),
            size_label(row.body),
            100.0 * a_rate / b_rate,
            mib(row.idle_kb),
            mib(row.peak_kb),
            row.warnings,
            if bare_bad > 0 { format!(" (bare client: {bare_bad} failed)") } else { String::new() },
        );
    }
    print_cpu_table(rows);
}

/// Where the CPU went, per exchange: with every core busy, the daemon's rate can be at most
/// the bare client's times (bare side total ÷ daemon side total).
fn print_cpu_table(rows: &[Row]) {
    println!(
        "\nCPU per exchange, µs (user + system over all measured rounds, their drains included, \
         ÷ POSTs the sink answered; cores busy: the three processes' CPU ÷ wall time)"
    );
    println!(
        "| in flight | body | daemon | its XEP-0114 server | its sink | daemon side | cores busy \
         | bare client | its sink | bare side | cores busy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let [a, b] = &row.cpu;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} |",
            in_flight_label(row),
            size_label(row.body),
            a.per_post(a.daemon_us),
            a.per_post(a.driver_us),
            a.per_post(a.sink_us),
            a.per_post(a.total_us()),
            a.cores_busy(),
            b.per_post(b.driver_us),
            b.per_post(b.sink_us),
            b.per_post(b.total_us()),
            b.cores_busy(),
        );
    }
}
