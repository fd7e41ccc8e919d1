//! The `carbon-store` command: parses arguments, calls the library, prints.

mod cli;

fn main() {
    quiet_library_backtraces();
    std::process::exit(cli::run());
}

/// Library errors (rPGP's among them) capture a backtrace when `RUST_BACKTRACE` is set, and
/// their messages then carry it: one refused signature cost ~240 MB and a screenful of
/// frames. Backtraces stay on for panics; `RUST_LIB_BACKTRACE=1` brings them back for errors.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the first thing main does, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}
