//! The `[runtime]` section: how many threads run the daemon's tasks, checked.

use serde::{Deserialize, Serialize};

/// The most worker threads `threads` may ask for.
const MAX_THREADS: usize = 256;
/// `threads` when the config does not say: one thread, which costs the least CPU per
/// message at the rates an XMPP server routes (bench/README.md, "Issue 20").
pub const DEFAULT_THREADS: usize = 1;

/// The `[runtime]` section as serde reads it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    threads: Option<usize>,
}

/// The threads that run the daemon's tasks (`[runtime]`). The store's writer and the
/// store's reads have threads of their own whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    /// 1 (the default): every task on the one thread that started the daemon, with no
    /// hand-off between threads: the least CPU per message, and a ceiling of what one core
    /// can do. 0: one worker thread per core. N: N worker threads.
    pub threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            threads: DEFAULT_THREADS,
        }
    }
}

pub(super) fn check_runtime(raw: RawRuntime) -> Result<RuntimeConfig, String> {
    let threads = raw.threads.unwrap_or(DEFAULT_THREADS);
    if threads > MAX_THREADS {
        return Err(format!(
            "key 'threads': {threads} is more than {MAX_THREADS} (0: one per core)"
        ));
    }
    Ok(RuntimeConfig { threads })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_default_to_one_and_are_bounded() {
        let checked = |threads| check_runtime(RawRuntime { threads });
        assert_eq!(checked(None), Ok(RuntimeConfig { threads: 1 }));
        assert_eq!(checked(None), Ok(RuntimeConfig::default()));
        assert_eq!(checked(Some(0)), Ok(RuntimeConfig { threads: 0 }));
        assert_eq!(checked(Some(4)), Ok(RuntimeConfig { threads: 4 }));
        assert_eq!(checked(Some(256)), Ok(RuntimeConfig { threads: 256 }));
        assert!(checked(Some(257)).is_err(), "past the bound");
        let refused = checked(Some(100_000)).expect_err("too many");
        assert!(refused.contains("'threads'"), "{refused}");
    }
}
