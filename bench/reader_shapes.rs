//! Benchmark 3, the stream reader under the hostile shapes of issue 15 (thousands of
//! attributes, namespace declarations, prefixed attributes, deep nesting): CPU per stanza of
//! component-http's reader (`StreamReader`, as the session reads the server's stream)
//! against rxml and minidom (the reader it replaced, as `xml::parse_stanza` reads a webhook's
//! stanza) in the same run, and how each grows when the shape doubles: a cost linear in the
//! input doubles, a quadratic one quadruples.
//!
//! `cargo bench --bench reader_shapes -- [--rounds 5] [--secs 1]`.

mod common;

use std::time::{Duration, Instant};

use component_http::config::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_READ_SIZE};
use component_http::xml::document::parse_stanza;
use component_http::xml::stream::{Event, StreamReader};
use component_http::xml::COMPONENT_NS;

use common::{cpu_us, median, Args};

const KNOWN: &[&str] = &["rounds", "secs"];
const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
                      xmlns:stream='http://etherx.jabber.org/streams' id='s1'>";

/// One shape at size `n`, as a message whose extension `<x/>` carries it.
fn shape(name: &str, n: usize) -> String {
    let inside: String = match name {
        "attributes" => (0..n).map(|i| format!(" a{i}='{i}'")).collect(),
        "declarations" => (0..n).map(|i| format!(" xmlns:p{i}='urn:p:{i}'")).collect(),
        "prefixed attributes" => (0..n)
            .map(|i| format!(" xmlns:q{i}='urn:q:{i}' q{i}:a='{i}'"))
            .collect(),
        _ => String::new(),
    };
    let nested = match name {
        "nesting" => format!("{}{}", "<a>".repeat(n), "</a>".repeat(n)),
        _ => String::new(),
    };
    format!("<message from='a@b/c' to='echo@bot.b'><x xmlns='urn:x'{inside}>{nested}</x></message>")
}

/// CPU microseconds per read of `stanza` by `read`, the median of `rounds` rounds of `secs`.
fn per_read(stanza: &str, rounds: usize, secs: Duration, read: impl Fn(&str)) -> f64 {
    let me = std::process::id();
    let figures: Vec<f64> = (0..rounds)
        .map(|_| {
            let (started, cpu) = (Instant::now(), cpu_us(me));
            let mut reads = 0u64;
            while started.elapsed() < secs || reads == 0 {
                read(stanza);
                reads += 1;
            }
            (cpu_us(me) - cpu) as f64 / reads as f64
        })
        .collect();
    median(&figures)
}

fn ours(stanza: &str) {
    let mut reader = StreamReader::new(COMPONENT_NS, DEFAULT_MAX_READ_SIZE, DEFAULT_MAX_DEPTH);
    reader.buffer().extend_from_slice(HEADER.as_bytes());
    reader.buffer().extend_from_slice(stanza.as_bytes());
    let header = reader.next_event();
    assert!(matches!(header, Ok(Some(Event::Header { .. }))));
    let event = reader.next_event();
    assert!(
        matches!(event, Ok(Some(Event::Element(_) | Event::TooDeep(_)))),
        "{event:?}"
    );
}

fn rxml(stanza: &str) {
    // With a depth limit as large as the shape, so that rxml builds the whole tree.
    let read = parse_stanza(stanza, 1 << 20);
    assert!(read.is_ok(), "{read:?}");
}

fn main() {
    if !common::bench_mode() {
        println!("reader_shapes: skipped (run it with `cargo bench --bench reader_shapes`)");
        return;
    }
    let args = Args::parse(KNOWN);
    let rounds: usize = args.get("rounds", 5);
    let secs = Duration::from_secs_f64(args.get("secs", 1.0));
    println!("| shape | n | bytes | ours µs | ×n/2 | rxml µs | ×n/2 | ours/rxml |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, sizes) in [
        ("attributes", &[2_500usize, 5_000, 10_000][..]),
        ("declarations", &[1_000, 2_000, 4_000]),
        ("prefixed attributes", &[2_250, 4_500, 9_000]),
        // Past max_depth (64) our reader skips the content; rxml (at a limit as large)
        // builds it. Kept below the depth at which minidom's drop overflows the stack.
        ("nesting", &[250, 500, 1_000]),
    ] {
        let mut before: Option<(f64, f64)> = None;
        for &n in sizes {
            let stanza = shape(name, n);
            let ours_us = per_read(&stanza, rounds, secs, ours);
            // rxml's own limits (names, attribute counts) refuse some shapes: say so.
            let rxml_us = match parse_stanza(&stanza, 1 << 20) {
                Ok(_) => Some(per_read(&stanza, rounds, secs, rxml)),
                Err(_) => None,
            };
            let growth = |now: f64, then: Option<f64>| {
                then.map_or("".to_string(), |then| format!("{:.2}", now / then))
            };
            let rxml_text = rxml_us.map_or("refused".to_string(), |us| format!("{us:.1}"));
            let ratio = rxml_us.map_or("".to_string(), |us| format!("{:.2}", ours_us / us));
            println!(
                "| {name} | {n} | {} | {ours_us:.1} | {} | {rxml_text} | {} | {ratio} |",
                stanza.len(),
                growth(ours_us, before.map(|b| b.0)),
                rxml_us.map_or(String::new(), |us| growth(us, before.map(|b| b.1))),
            );
            before = Some((ours_us, rxml_us.unwrap_or(f64::NAN)));
        }
    }
}
