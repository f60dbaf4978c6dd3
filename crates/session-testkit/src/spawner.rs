//! Spawns every server from one thread that lives as long as the process.
//!
//! `PR_SET_PDEATHSIG` is tied to the thread that forked the child: had a test's own
//! thread spawned the server, the server would be killed as soon as that test thread
//! ended, even when the server was moved to another thread or into a static. A single
//! long-lived spawner thread ties the signal to the process instead.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Request = (Command, Sender<io::Result<Child>>);

/// Spawns `command` from the spawner thread, arranging (on Linux) for the child to
/// receive `SIGKILL` when this process dies.
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    arm_death_signal(&mut command);
    let (reply_tx, reply_rx) = channel();
    let sent = spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_tx));
    if let Err(std::sync::mpsc::SendError((mut command, _))) = sent {
        // The spawner thread is gone (it never exits on its own); spawning here still
        // works, only the death signal then follows this thread.
        return command.spawn();
    }
    reply_rx
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("session-testkit spawner thread died")))
}

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("session-testkit-spawner".into())
            .spawn(move || {
                // `rx` lives in a static sender's counterpart, so this loop only ends
                // with the process.
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("session-testkit: cannot start the spawner thread");
        Mutex::new(tx)
    })
}

#[cfg(target_os = "linux")]
fn arm_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only calls prctl, getppid and
    // _exit, which are async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; the signal would then
            // never come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn arm_death_signal(_command: &mut Command) {
    // No portable equivalent; Drop still kills the server on every ordinary exit path.
}
