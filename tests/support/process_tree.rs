//! A process and everything it started, found through /proc by parent pid: for servers
//! whose real process is not our child and not in our process group (ejabberdctl runs
//! ejabberd through `su`, which starts a new session). Linux only, no libc needed.

use std::collections::HashMap;
use std::fs;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// One process, by pid and start time (so that a recycled pid is never mistaken for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pid: u32,
    start_time: u64,
    is_beam_smp: bool,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this is the Erlang VM (beam.smp), the server proper.
    pub fn is_beam(&self) -> bool {
        self.is_beam_smp
    }

    /// Still there and not a zombie (a zombie holds no socket and no CPU).
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some(s) if s.start_time == self.start_time && s.state != "Z")
    }
}

/// What /proc/PID/stat says about a process.
struct Stat {
    comm: String,
    state: String,
    ppid: u32,
    start_time: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    // After "pid (comm) ": state is field 3, ppid field 4, starttime field 22.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(Stat {
        comm: text[open + 1..close].to_string(),
        state: fields.first()?.to_string(),
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `root` and every process below it.
pub fn descendants(root: u32) -> Vec<Proc> {
    let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
    let mut root_proc = None;
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(stat) = stat(pid) {
            let proc = Proc {
                pid,
                start_time: stat.start_time,
                is_beam_smp: stat.comm == "beam.smp",
            };
            if pid == root {
                root_proc = Some(proc);
            }
            children.entry(stat.ppid).or_default().push(proc);
        }
    }
    let mut tree = Vec::new();
    let mut queue: Vec<Proc> = root_proc.into_iter().collect();
    while let Some(proc) = queue.pop() {
        tree.push(proc);
        queue.extend(children.remove(&proc.pid).unwrap_or_default());
    }
    tree
}

/// Sends `sig` (TERM, KILL, ...) to those of `procs` that are still alive.
pub fn signal(sig: &str, procs: &[Proc]) {
    let alive: Vec<String> = procs
        .iter()
        .filter(|p| p.is_alive())
        .map(|p| p.pid.to_string())
        .collect();
    if alive.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(&alive)
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `timeout` for every process of `tree` to be gone; SIGKILLs the ones that
/// linger.
pub fn wait_gone(tree: &[Proc], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while tree.iter().any(Proc::is_alive) {
        if Instant::now() > deadline {
            signal("KILL", tree);
            sleep(Duration::from_millis(100));
            return;
        }
        sleep(Duration::from_millis(20));
    }
}
