//! Open-file descriptors, which every connection costs: the process's soft limit raised to
//! the hard one at start, and the API's share kept below it, so that a flood of API
//! connections can never take the descriptors the webhook and the XMPP server need.

use crate::config::ComponentConfig;

/// Descriptors kept for what is neither an API, webhook nor server connection: standard
/// streams, the runtime's poller and wakers, the listener, signal pipes, DNS look-ups,
/// certificate and secret files.
pub const BASE_RESERVE: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (`LimitNOFILE=` of the systemd unit
/// sets both); returns the soft limit before and after.
#[cfg(unix)]
pub fn raise_soft_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a pointer to a valid, owned value.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok((before, before));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `setrlimit` reads one `rlimit` through a pointer to a valid, owned value.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((before, limit.rlim_cur))
}

/// The soft `RLIMIT_NOFILE`: how many descriptors this process may hold (`None`: no limit,
/// or it cannot be read).
#[cfg(unix)]
pub fn soft_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as in `raise_soft_limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn soft_limit() -> Option<u64> {
    None
}

/// Descriptors the components may hold at once: for each, its server connection and its
/// `max_connections` webhook connections and one spare; plus
/// [`BASE_RESERVE`].
pub fn reserve(components: &[ComponentConfig]) -> u64 {
    components
        .iter()
        .map(|c| c.max_connections as u64 + 2)
        .sum::<u64>()
        + BASE_RESERVE
}

/// The API connections allowed: `wanted` (`[api] max_connections`), or fewer when that and
/// `reserve` do not fit under `limit` (then `Clamped`); an error when not even one fits.
pub fn api_connections(
    wanted: usize,
    limit: Option<u64>,
    reserve: u64,
) -> Result<ApiConnections, String> {
    let Some(limit) = limit else {
        return Ok(ApiConnections::AsConfigured(wanted));
    };
    let room = limit.saturating_sub(reserve);
    if room == 0 {
        return Err(format!(
            "the open-file limit ({limit}) leaves no descriptor for API connections after the \
             {reserve} kept for the webhook and the server: raise it (LimitNOFILE= in the \
             systemd unit, ulimit -n)"
        ));
    }
    match usize::try_from(room) {
        Ok(room) if room < wanted => Ok(ApiConnections::Clamped { room, limit }),
        _ => Ok(ApiConnections::AsConfigured(wanted)),
    }
}

/// What [`api_connections`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum ApiConnections {
    AsConfigured(usize),
    /// `max_connections` and the reserve exceed `limit`: only `room` connections.
    Clamped {
        room: usize,
        limit: u64,
    },
}

impl ApiConnections {
    pub fn count(&self) -> usize {
        match *self {
            ApiConnections::AsConfigured(count) => count,
            ApiConnections::Clamped { room, .. } => room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_gets_what_is_left_after_the_reserve() {
        assert_eq!(
            api_connections(256, Some(65_536), 200),
            Ok(ApiConnections::AsConfigured(256))
        );
        assert_eq!(
            api_connections(256, None, 200),
            Ok(ApiConnections::AsConfigured(256))
        );
        assert_eq!(
            api_connections(256, Some(456), 200),
            Ok(ApiConnections::AsConfigured(256))
        );
        assert_eq!(
            api_connections(256, Some(300), 200),
            Ok(ApiConnections::Clamped {
                room: 100,
                limit: 300
            })
        );
        let error = api_connections(256, Some(200), 200).expect_err("no room");
        assert!(error.contains("LimitNOFILE"), "{error}");
    }

    #[test]
    fn the_reserve_counts_every_webhook_and_server_connection() {
        let text = "[[component]]\ndomain = \"a.example\"\nsecret = \"s\"\npost_url = \"http://127.0.0.1:9/\"\nmax_connections = 10\n\
                    [[component]]\ndomain = \"b.example\"\nsecret = \"s\"\npost_url = \"http://127.0.0.1:9/\"\n";
        let config = crate::Config::parse(text, std::path::Path::new(".")).expect("valid");
        assert_eq!(reserve(&config.components), BASE_RESERVE + 12 + 66);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (before, after) = raise_soft_limit().expect("getrlimit works");
        assert!(after >= before);
        assert_eq!(soft_limit().unwrap_or(u64::MAX), after);
    }
}
