//! The `reader_vs_rxml` fuzz target's property (our XML reader and rxml + minidom accept,
//! refuse and build alike; `fuzz/fuzz_targets/differential.rs`) checked in plain `cargo test`,
//! bounded and deterministic: every seed of the fuzz corpora as it is, generated deep, wide
//! and prefixed shapes, and a fixed number of mutations of the seeds drawn from a small PRNG
//! with a fixed seed. So the property is checked on every run, cargo-fuzz or not.
//! `READER_DIFFERENTIAL_MUTATIONS` (default 20,000) and `READER_DIFFERENTIAL_SEED` change
//! the draw; a failing input is saved to `target/reader-differential-failure`, which
//! `cargo fuzz run reader_vs_rxml <file>` (in `fuzz/`) reads too.

#[path = "../fuzz/fuzz_targets/differential.rs"]
mod differential;
#[path = "../fuzz/fuzz_targets/reference.rs"]
mod reference;

use std::panic::{catch_unwind, resume_unwind};
use std::path::Path;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

/// `differential::check`, saving the input when it fails.
fn check(input: &[u8]) {
    if let Err(panic) = catch_unwind(|| differential::check(input)) {
        let saved =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reader-differential-failure");
        let _ = std::fs::write(&saved, input);
        eprintln!(
            "failing input ({} bytes) saved to {}",
            input.len(),
            saved.display()
        );
        resume_unwind(panic);
    }
}

/// The hand-written seeds of every fuzz target (the stream and stanza ones are XML too).
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for target in ["reader_vs_rxml", "stanza_to_json", "stream_parser"] {
        let dir = Path::new(FUZZ_DIR).join("corpus").join(target);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            })
            .collect();
        paths.sort();
        seeds.extend(
            paths
                .iter()
                .map(|path| std::fs::read(path).expect("a seed")),
        );
    }
    seeds
}

/// The tokens of `fuzz/xmpp.dict` (libFuzzer's format: `"text"`, with `\xNN`, `\\`, `\"`).
fn dictionary() -> Vec<Vec<u8>> {
    let text =
        std::fs::read_to_string(Path::new(FUZZ_DIR).join("xmpp.dict")).expect("the dictionary");
    let mut tokens = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(quoted) = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
            continue;
        };
        let mut token = Vec::new();
        let mut bytes = quoted.bytes();
        while let Some(byte) = bytes.next() {
            match (byte, bytes.clone().next()) {
                (b'\\', Some(b'x')) => {
                    bytes.next();
                    let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                    let hex = std::str::from_utf8(&hex).expect("hex digits");
                    token.push(u8::from_str_radix(hex, 16).expect("a \\xNN escape"));
                }
                (b'\\', Some(escaped)) => {
                    bytes.next();
                    token.push(escaped);
                }
                _ => token.push(byte),
            }
        }
        tokens.push(token);
    }
    assert!(tokens.len() > 50, "the dictionary was not read");
    tokens
}

/// SplitMix64: small, fast, and the same draw on every machine.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes where XML readers part ways most often.
const TRICKY: &[u8] = b"<>/='\"&;:!?[]-#x \t\r\n\0\xff\xc3\xef";

/// One to four libFuzzer-like edits of `input`: a byte changed, a token or byte inserted, a
/// range deleted, repeated or replaced, or the tail of another seed spliced on.
fn mutate(input: &[u8], seeds: &[Vec<u8>], tokens: &[Vec<u8>], draw: &mut Draw) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=draw.below(4) {
        let at = draw.below(out.len() + 1);
        let length = draw.below(16).min(out.len() - at);
        match draw.below(7) {
            0 if at < out.len() => out[at] = TRICKY[draw.below(TRICKY.len())],
            1 => {
                let token = &tokens[draw.below(tokens.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 => {
                out.drain(at..at + length);
            }
            3 => {
                let piece = out[at..at + length].to_vec();
                let to = draw.below(out.len() + 1);
                out.splice(to..to, piece);
            }
            4 => {
                let token = &tokens[draw.below(tokens.len())];
                out.splice(at..at + length, token.iter().copied());
            }
            5 => {
                let other = &seeds[draw.below(seeds.len())];
                out.truncate(at);
                out.extend_from_slice(&other[draw.below(other.len() + 1)..]);
            }
            _ => out.insert(at, TRICKY[draw.below(TRICKY.len())]),
        }
    }
    out
}

fn variable(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse().unwrap_or_else(|_| panic!("{name}: {v}"))
    })
}

#[test]
fn every_seed_reads_alike() {
    for seed in seeds() {
        check(&seed);
    }
}

/// Around the depth where each side stops building whole trees, and far past it; as wide and
/// prefixed as the attack stanzas; and broken at the bottom of a deep tree.
#[test]
fn deep_wide_and_prefixed_shapes_read_alike() {
    let stanza = |inner: String| format!("<message from='a@b' to='echo@bot.b'>{inner}</message>");
    let cap = differential::CAP;
    for depth in [
        1,
        2,
        63,
        64,
        65,
        127,
        128,
        129,
        cap - 1,
        cap,
        cap + 1,
        1000,
        8000,
    ] {
        let open = "<a>".repeat(depth - 1);
        let close = "</a>".repeat(depth);
        let deep = format!("<a xmlns='urn:x' n='{depth}'>{open}{close}");
        let prefixed = format!(
            "<p:a xmlns:p='urn:p'>{}{}",
            "<p:a>".repeat(depth - 1),
            "</p:a>".repeat(depth)
        );
        let texts = format!(
            "<a xmlns='urn:x'>{}{}",
            "t<a>".repeat(depth - 1),
            "&amp;</a>".repeat(depth)
        );
        for inner in [&deep, &prefixed, &texts] {
            check(stanza(inner.clone()).as_bytes());
            // Two of them in a stream, then the footer.
            check(
                format!(
                    "{}{}</stream:stream>",
                    stanza(inner.clone()),
                    stanza(inner.clone())
                )
                .as_bytes(),
            );
        }
        // Broken at the bottom: unclosed, mismatched, a comment, an undeclared prefix.
        for bottom in ["<b>", "</b>", "<!-- x -->", "<q:b/>", "&nbsp;"] {
            check(stanza(format!("<a xmlns='urn:x'>{open}{bottom}{close}")).as_bytes());
        }
    }
    let attributes: String = (0..5000).map(|i| format!(" a{i}='{i}'")).collect();
    check(stanza(format!("<x xmlns='urn:x'{attributes}/>")).as_bytes());
    let declarations: String = (0..2000)
        .map(|i| format!(" xmlns:n{i}='urn:n{i}'"))
        .collect();
    check(stanza(format!("<x xmlns='urn:x'{declarations}/>")).as_bytes());
    let prefixed: String = (0..2000).map(|i| format!(" n{i}:a='{i}'")).collect();
    check(stanza(format!("<x xmlns='urn:x'{declarations}{prefixed}/>")).as_bytes());
    let twice =
        format!("<x xmlns='urn:x'{declarations} n0:a='1' n1:a='2' xmlns:m='urn:n0' m:a='3'/>");
    check(stanza(twice).as_bytes());
    for declared_twice in [" xmlns:n7='urn:again'", " xmlns='urn:again'"] {
        check(stanza(format!("<x xmlns='urn:x'{declarations}{declared_twice}/>")).as_bytes());
    }
    // The findings of the fuzz target, kept as inputs (fuzz/known-crashes/reader_vs_rxml).
    let known = Path::new(FUZZ_DIR).join("known-crashes/reader_vs_rxml");
    for entry in std::fs::read_dir(&known).unwrap_or_else(|e| panic!("{}: {e}", known.display())) {
        check(&std::fs::read(entry.expect("an entry").path()).expect("a known crash"));
    }
}

#[test]
fn mutated_seeds_read_alike() {
    let seeds = seeds();
    let tokens = dictionary();
    // The big seeds are read as they are above; mutating them costs seconds each in debug.
    let small: Vec<_> = seeds.iter().filter(|s| s.len() <= 4096).cloned().collect();
    let mut draw = Draw(variable("READER_DIFFERENTIAL_SEED", 15));
    for _ in 0..variable("READER_DIFFERENTIAL_MUTATIONS", 20_000) {
        let mut input = small[draw.below(small.len())].clone();
        // Sometimes mutate the mutant again: deeper changes, as libFuzzer's corpus grows.
        for _ in 0..=draw.below(3) {
            input = mutate(&input, &small, &tokens, &mut draw);
        }
        check(&input);
    }
}
