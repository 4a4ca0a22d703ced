//! Ctrl-C: the one SIGINT handler of the process, installed first thing in `main`.
//!
//! Commands that stop cleanly (build, the registry commands) register what to do on an
//! interrupt ([`on_interrupt`]); one registered after the interrupt came runs at once. Before
//! any is registered — loading, rendering, writing `dist/` by atomic renames — a Ctrl-C ends
//! the process with exit code 130, as the default action would.
//! When the process starts with SIGINT ignored — a shell runs `cmd &` that way in scripts, so
//! that a Ctrl-C at the terminal does not reach background jobs — no handler is installed and
//! SIGINT stays ignored, as it would for any other program (stop such a run with SIGTERM).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

type Listener = Box<dyn Fn() + Send>;

/// SIGINT's number on Linux.
const SIGINT: u32 = 2;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static LISTENERS: Mutex<Vec<Listener>> = Mutex::new(Vec::new());

/// Installs the handler, unless SIGINT was ignored when the process started.
pub fn install() {
    if sigint_ignored() {
        tracing::debug!("SIGINT is ignored (inherited): no Ctrl-C handler");
        return;
    }
    let result = ctrlc::set_handler(|| {
        let listeners = LISTENERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        INTERRUPTED.store(true, Ordering::SeqCst);
        if listeners.is_empty() {
            // Nothing is running that stops cleanly (loading, rendering, writing dist/ by
            // atomic renames): end now, with the code a shell gives a run ended by SIGINT.
            #[allow(clippy::disallowed_methods)]
            std::process::exit(130);
        }
        for listener in listeners.iter() {
            listener();
        }
    });
    if let Err(error) = result {
        tracing::warn!("cannot handle Ctrl-C: {error}");
    }
}

/// Runs `listener` on Ctrl-C (at once if it already came).
pub fn on_interrupt(listener: impl Fn() + Send + 'static) {
    let mut listeners = LISTENERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if INTERRUPTED.load(Ordering::SeqCst) {
        listener();
    } else {
        listeners.push(Box::new(listener));
    }
}

/// Whether SIGINT is ignored: bit 1 (signal 2) of the `SigIgn` mask in `/proc/self/status`.
fn sigint_ignored() -> bool {
    let Ok(status) = fs_err::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGINT - 1)) != 0)
}
