//! The users of a test's ejabberd: registered at start, and checked after a restart, since
//! a kill -9 can make ejabberd forget the users it registered last.

use std::process::{Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::super::c2s_probe::logs_in;
use super::{Ejabberd, HOST, START_TIMEOUT};

impl Ejabberd {
    /// Registers every user, all at once (each `ejabberdctl register` is an Erlang VM);
    /// with `again`, a user already there is not a failure.
    pub(super) fn register(&mut self, again: bool) {
        let runs: Vec<_> = self
            .users
            .iter()
            .map(|(user, password)| {
                let child = self
                    .ctl()
                    .args(["register", user, HOST, password])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run ejabberdctl register");
                (user, child)
            })
            .collect();
        let mut failures = String::new();
        for (user, child) in runs {
            let out: Output = child.wait_with_output().expect("wait for ejabberdctl");
            let said = [&out.stdout, &out.stderr].map(|bytes| String::from_utf8_lossy(bytes));
            let already_there = again && said.iter().any(|s| s.contains("already registered"));
            if !(out.status.success() || already_there) {
                failures.push_str(&format!(
                    "ejabberdctl register {user} {HOST} failed ({}):\n{}{}\n",
                    out.status, said[0], said[1]
                ));
            }
        }
        if !failures.is_empty() {
            let tail = self.log_tail();
            self.kill9();
            panic!("{failures}{tail}");
        }
    }

    /// After a kill -9, ejabberd may come back without the users registered last (Mnesia
    /// had not written them to disk: "Invalid username or password" from then on). Waits
    /// until every user logs in, registering them all again once if one is refused.
    pub(super) fn ensure_users(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut registered_again = false;
        loop {
            let answers: Vec<Option<bool>> = self
                .users
                .iter()
                .map(|(user, password)| logs_in(self.c2s_port, HOST, user, password))
                .collect();
            if answers.iter().all(|answer| *answer == Some(true)) {
                return;
            }
            if answers.contains(&Some(false)) && !registered_again {
                self.register(true);
                eprintln!(
                    "[ejabberd] {} lost users in the restart: registered them again",
                    self.node
                );
                registered_again = true;
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                self.kill9();
                panic!("ejabberd restarted but its users cannot log in ({answers:?}):\n{tail}");
            }
            sleep(Duration::from_millis(50));
        }
    }
}
