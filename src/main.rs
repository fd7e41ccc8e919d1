//! The `carbon-store` command: parses arguments, calls the library, prints.

mod cli;

fn main() {
    quiet_library_backtraces();
    cap_malloc_arenas();
    std::process::exit(cli::run());
}

/// glibc gives each new thread its own malloc arena (up to eight per core), and memory
/// freed in one stays there. A realize's threads — writers, each layer's compressor pool,
/// the unpacking pool — pass 1 MiB blocks between them, so the arenas each grew to hold
/// some: `base` peaked at 516–620 MB of RSS with the default against 363 MB with one arena
/// per core, in the same time within run-to-run noise (2026-12-04, 2 cores).
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(target_env = "gnu")]
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let cores = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cores) };
}

#[cfg(not(target_env = "gnu"))]
fn cap_malloc_arenas() {}

/// Library errors (rPGP's among them) capture a backtrace when `RUST_BACKTRACE` is set, and
/// their messages then carry it: one refused signature cost ~240 MB and a screenful of
/// frames. Backtraces stay on for panics; `RUST_LIB_BACKTRACE=1` brings them back for errors.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the first thing main does, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}
