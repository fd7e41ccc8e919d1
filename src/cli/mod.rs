//! Command-line interface: argument definitions, dispatch, and turning library errors
//! into messages that say what to do next, with documented exit codes.

mod error;
mod fetch;
mod list;
mod lock;
mod maintain;
mod progress;
mod realize;
mod registry;
mod run;
mod sbom;
mod show;
mod vcs;
mod verify_image;

use clap::{Parser, Subcommand};
use error::CliError;
use std::path::PathBuf;

/// Exit codes (also in docs/commands.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const LOCK_CHECK: i32 = 3;
    pub const OFFLINE_MISSING: i32 = 4;
}

/// The heading of the options every command takes: `-h` lists the common ones after the
/// command's own, `--help` all of them.
const GLOBAL: &str = "Global options (-h shows the common ones, --help all)";

#[derive(Parser, Debug)]
#[command(
    name = "carbon-store",
    version,
    about = "Declarative, reproducible container images from Debian packages, PyPI wheels and npm tarballs",
    long_about = "Declarative, reproducible container images.\n\n\
Recipes (recipes/) say what an image holds; `lock` pins exact artifacts by sha256 into\n\
lockfiles/<image>.lock; `fetch` downloads them into a content-addressed store.\n\n\
Typical use:\n  carbon-store realize minimal      lock if needed, fetch, build oci-out/minimal and per-arch tarballs\n  carbon-store list                 what images and components exist\n  carbon-store lock minimal         resolve and pin (commit the lockfile)\n  carbon-store fetch minimal        download what the lock names\n  carbon-store lock --check         CI: fail when a lock is missing or stale\n\n\
Mirrors are configuration, never part of recipes or locks: --mirror debian=URL,\n\
CARBON_MIRROR_DEBIAN, ~/.config/carbon-store/config.toml, or the host's apt sources.\n\n\
Exit codes: 0 ok, 1 failure, 2 usage, 3 lock check failed, 4 offline and something is missing."
)]
pub struct Cli {
    /// Store directory
    #[arg(long, global = true, env = "CARBON_STORE", default_value = "store", help_heading = GLOBAL)]
    store: PathBuf,
    /// Recipes directory
    #[arg(long, global = true, default_value = "recipes", help_heading = GLOBAL, hide_short_help = true)]
    recipes: PathBuf,
    /// Lockfiles directory
    #[arg(long, global = true, default_value = "lockfiles", help_heading = GLOBAL, hide_short_help = true)]
    lockfiles: PathBuf,
    /// Make no network connection; use only what the store holds
    #[arg(long, global = true, help_heading = GLOBAL)]
    offline: bool,
    /// Parallel downloads and build jobs (default: 8 downloads, all cores for CPU work)
    #[arg(short = 'j', long, global = true, help_heading = GLOBAL, hide_short_help = true)]
    jobs: Option<usize>,
    /// More output (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,
    /// Only errors
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    quiet: bool,
    /// Mirror for an ecosystem, NAME=URL (repeatable; several URLs are fallbacks in order)
    #[arg(long = "mirror", global = true, value_name = "NAME=URL", help_heading = GLOBAL, hide_short_help = true)]
    mirrors: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Resolve images' recipes into lockfiles (all images when none is named)
    Lock(lock::LockArgs),
    /// Download everything the images' lockfiles name into the store
    Fetch(fetch::FetchArgs),
    /// Build images from their locks: OCI layout and docker-archive tarballs per arch
    Realize(realize::RealizeArgs),
    /// List images and components with their descriptions
    List(list::ListArgs),
    /// Carry a store into an air-gapped site: export and import bundles
    #[command(subcommand)]
    Bundle(maintain::BundleAction),
    /// Remove what no lockfile, output or root needs from the store
    Gc(maintain::GcArgs),
    /// Re-hash the store; report (or --repair) corrupt and missing objects
    Verify(maintain::VerifyArgs),
    /// Show an image: components, archs, package counts and download size
    Show(show::ShowArgs),
    /// Print an image's SBOM (SPDX or CycloneDX) or provenance, as realize attached it
    Sbom(sbom::SbomArgs),
    /// Rebuild an image from the lock its provenance names, in a clean store, and compare
    VerifyImage(verify_image::VerifyImageArgs),
    /// Start an image in docker or podman with its services, ports and volumes; wait until
    /// they answer and print where they are
    Run(run::RunArgs),
    /// Push an image (its multi-arch index, manifests and layers) to an OCI registry
    Push(registry::PushArgs),
    /// Pull an image from an OCI registry into an OCI layout, every blob verified
    Pull(registry::PullArgs),
    /// Share the store's packages and wheels through an OCI registry
    #[command(subcommand)]
    Cache(registry::CacheAction),
    /// Print a shell completion script: `carbon-store completions bash > /etc/bash_completion.d/carbon-store`
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (carbon-store.1 and one per command) into a directory
    Man {
        /// Where to write them, e.g. /usr/local/share/man/man1
        dir: PathBuf,
    },
}

/// `--json`, shared by the commands that report results.
#[derive(clap::Args, Debug)]
pub struct JsonFlag {
    /// Print the result as one JSON document on standard output (messages stay on
    /// standard error)
    #[arg(long)]
    pub json: bool,
}

/// Prints one JSON document on standard output; a closed pipe is not an error.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).expect("reports serialize") + "\n";
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// A size for people: `812.4 kB`, `35.2 MB`, `1.37 GB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// Output settings shared by commands.
#[derive(Clone, Copy)]
pub struct Output {
    pub verbose: u8,
    pub quiet: bool,
    /// Standard output carries one JSON document (the command's `--json`): results that
    /// would be printed there as lines go into it instead.
    pub json: bool,
}

impl Output {
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let out = Output {
        verbose: cli.verbose,
        quiet: cli.quiet,
        json: false,
    };
    let result: Result<(), CliError> = match &cli.command {
        Command::Lock(args) => lock::run(&cli, args, &out),
        Command::Fetch(args) => fetch::run(&cli, args, &out),
        Command::Realize(args) => realize::run(&cli, args, &out),
        Command::List(args) => list::run(&cli, args),
        Command::Bundle(action) => maintain::bundle(&cli, action, &out),
        Command::Gc(args) => maintain::gc(&cli, args, &out),
        Command::Verify(args) => maintain::verify(&cli, args, &out),
        Command::Show(args) => show::run(&cli, args),
        Command::Sbom(args) => sbom::run(&cli, args),
        Command::VerifyImage(args) => verify_image::run(&cli, args, &out),
        Command::Run(args) => run::run(&cli, args, &out),
        Command::Push(args) => registry::push(&cli, args, &out),
        Command::Pull(args) => registry::pull(&cli, args, &out),
        Command::Cache(action) => registry::cache(&cli, action, &out),
        Command::Completions { shell } => completions(*shell),
        Command::Man { dir } => manual(dir),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) if e.message.is_empty() => e.code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            if let Some(hint) = &e.hint {
                eprintln!("hint: {hint}");
            }
            e.code
        }
    }
}

/// Prints the completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut <Cli as clap::CommandFactory>::command(),
        "carbon-store",
        &mut script,
    );
    let mut script = String::from_utf8(script).expect("completion scripts are text");
    if shell == clap_complete::Shell::Bash {
        // clap_complete spells the state of a hyphenated program's subcommands one way
        // where it sets it (`carbon__store__subcmd__realize`) and another where it matches
        // it (`carbon__subcmd__store__subcmd__realize`), so no subcommand's options would
        // complete (clap issue 6421): match the spelling that is set.
        script = script.replace("carbon__subcmd__store", "carbon__store");
    }
    let _ = std::io::stdout().write_all(script.as_bytes());
    Ok(())
}

/// Writes the manual pages into `dir`: carbon-store.1 and one page per command
/// (carbon-store-realize.1, …), all generated from the same definitions as `--help`.
fn manual(dir: &std::path::Path) -> Result<(), CliError> {
    let failed = |e: std::io::Error| {
        CliError::new(format!("writing manual pages to {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), dir).map_err(failed)?;
    eprintln!(
        "wrote the manual pages to {} (read one with `man -l {}/carbon-store-realize.1`)",
        dir.display(),
        dir.display()
    );
    Ok(())
}

impl Cli {
    fn load_recipes(&self) -> Result<carbon_store::recipe::Recipes, CliError> {
        Ok(carbon_store::recipe::Recipes::load(&self.recipes)?)
    }

    fn mirror_settings(&self) -> Result<carbon_store::config::mirrors::MirrorSettings, CliError> {
        Ok(carbon_store::config::mirrors::MirrorSettings::from_host(
            &self.mirrors,
        )?)
    }

    fn open_store(&self) -> Result<carbon_store::store::Store, CliError> {
        Ok(carbon_store::store::Store::open(&self.store)?)
    }

    fn download_jobs(&self) -> usize {
        self.jobs.unwrap_or(8)
    }

    /// Blobs uploaded at a time by `push` and `cache push`.
    fn upload_jobs(&self) -> usize {
        self.jobs.unwrap_or(4)
    }

    /// The named images, or all of them.
    fn images(
        &self,
        recipes: &carbon_store::recipe::Recipes,
        named: &[String],
    ) -> Result<Vec<String>, CliError> {
        if named.is_empty() {
            let all = recipes.image_names();
            if all.is_empty() {
                return Err(CliError::new(format!(
                    "no image recipes in {}",
                    self.recipes.join("images").display()
                ))
                .hint("run from the repository root, or pass --recipes DIR"));
            }
            Ok(all)
        } else {
            Ok(named.to_vec())
        }
    }
}
