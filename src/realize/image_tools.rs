//! A small root file system made of some of an image's own Debian packages, to run the
//! image's own programs in — the tools dpkg triggers run (`glib-compile-schemas`,
//! `update-mime-database`, …).
//!
//! Why the image's own tools, of the image's arch: the caches they write must be what the
//! same tool writes inside the container (a test compares them), and some of them load
//! the image's own modules (`gdk-pixbuf-query-loaders` opens every pixbuf loader), which
//! only a program of the image's arch can do. An arm64 image built on an amd64 host
//! therefore runs its tools through the host's `binfmt_misc` handler for arm64
//! (qemu-user, registered with the `F` flag so that it works inside the sandbox).
//!
//! Only the packages a tool needs are written out: the tool's package and what it depends
//! on, read from the packages' own `Depends` and `Pre-Depends` (the first alternative the
//! image has, or a package of the image that `Provides` it). The root is written beneath
//! a scratch directory of the store without following any link the packages made
//! ([`Beneath`]), and the programs run in the [`Sandbox`]: no network, no view of the host,
//! only the stage writable.

use crate::deb822 as control;
use crate::debian::relation;
use crate::fixup::InstalledPackage;
use crate::layer::tar::EntryKind;
use crate::layer::tree::Tree;
use crate::sandbox::{Sandbox, SandboxError};
use crate::store::{ScratchDir, Store};
use crate::unpack::beneath::{Beneath, BeneathError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("writing the tools' root: {0}")]
    Root(#[from] BeneathError),
    #[error("making a scratch directory for the tools: {0}")]
    Scratch(std::io::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(
        "cannot run the image's {arch} program {program} on this host ({source}); an {arch} image's trigger caches are written by its own tools, which on another arch need qemu-user registered in binfmt_misc (Debian: qemu-user-binfmt or qemu-user-static)"
    )]
    ForeignArch {
        arch: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The Debian arch name of this host, where it can be one.
pub fn host_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("amd64"),
        "aarch64" => Some("arm64"),
        _ => None,
    }
}

/// `ENOEXEC`: "Exec format error", what `execve` returns for a program of an arch the
/// kernel (and no `binfmt_misc` handler) can run.
fn libc_enoexec() -> i32 {
    rustix::io::Errno::NOEXEC.raw_os_error()
}

/// The multiarch triplet of a Debian arch (`amd64` → `x86_64-linux-gnu`).
pub fn triplet(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    }
}

/// The file name of an arch's dynamic loader, in `/usr/lib/TRIPLET`.
fn loader(arch: &str) -> &'static str {
    match arch {
        "arm64" => "ld-linux-aarch64.so.1",
        _ => "ld-linux-x86-64.so.2",
    }
}

/// base-files' merged-/usr links, through which the programs' own paths
/// (`/lib64/ld-linux-x86-64.so.2`, `/lib/ld-linux-aarch64.so.1`) resolve.
const MERGED_USR_LINKS: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
    ("sbin", "usr/sbin"),
];

/// The packages `wanted` needs to run: themselves and every package they depend on,
/// transitively, among `installed`. Names not installed are left out.
pub fn closure(installed: &[InstalledPackage], wanted: &[&str]) -> BTreeSet<String> {
    let by_name: BTreeMap<&str, &InstalledPackage> =
        installed.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut providers: BTreeMap<String, &str> = BTreeMap::new();
    for p in installed {
        for group in field(p, "Provides") {
            for relation in group {
                providers.entry(relation.name).or_insert(&p.name);
            }
        }
    }
    let mut done = BTreeSet::new();
    let mut todo: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|n| by_name.contains_key(n))
        .collect();
    while let Some(name) = todo.pop() {
        if !done.insert(name.to_string()) {
            continue;
        }
        let package = by_name[name];
        for group in field(package, "Pre-Depends")
            .into_iter()
            .chain(field(package, "Depends"))
        {
            let chosen = group.iter().find_map(|r| {
                by_name
                    .get_key_value(r.name.as_str())
                    .map(|(n, _)| *n)
                    .or_else(|| providers.get(&r.name).copied())
            });
            if let Some(dependency) = chosen {
                todo.push(dependency);
            }
        }
    }
    done
}

/// A relation field of a package's control file (empty when absent or unreadable: the
/// package's own tooling accepted it, and a missing library only makes the tool fail).
fn field(package: &InstalledPackage, name: &str) -> Vec<relation::Group> {
    let Some(text) = package.member_text("control") else {
        return Vec::new();
    };
    let Ok(paragraphs) = control::parse(&text) else {
        return Vec::new();
    };
    paragraphs
        .first()
        .and_then(|p| p.get(name))
        .and_then(|value| relation::parse_field(value).ok())
        .unwrap_or_default()
}

/// A program's arguments and environment (beyond `LC_ALL=C.UTF-8`).
#[derive(Default)]
pub struct Invocation {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A root holding some of an image's packages, ready to run their programs.
pub struct ToolRoot {
    root: ScratchDir,
    arch: String,
}

impl ToolRoot {
    /// Writes the files that `packages` put into `trees` (bottom first; a higher layer's
    /// file replaces a lower one's) beneath a new scratch directory of `store`.
    pub fn write(
        store: &Store,
        name: &str,
        arch: &str,
        trees: &[Tree],
        packages: &BTreeSet<String>,
    ) -> Result<ToolRoot, ToolError> {
        let root = store
            .scratch_dir(&format!("tools-{}-{name}", std::process::id()))
            .map_err(ToolError::Scratch)?;
        let beneath = Beneath::create(root.path())?;
        for (link, target) in MERGED_USR_LINKS {
            beneath.symlink(link, target)?;
        }
        for tree in trees {
            for (path, node) in &tree.nodes {
                let ours = node.package.as_ref().is_some_and(|p| packages.contains(p));
                if !ours || MERGED_USR_LINKS.iter().any(|(l, _)| l == path) {
                    continue;
                }
                match &node.kind {
                    EntryKind::Dir => beneath.create_dir_all(path)?,
                    EntryKind::File => {
                        beneath.replace_file(path, node.content.reader(), node.mode)?
                    }
                    EntryKind::Hardlink(target) => {
                        let holder = tree.nodes.get(target).map(|t| &t.content);
                        let content = holder.cloned().unwrap_or_default();
                        beneath.replace_file(path, content.reader(), node.mode)?
                    }
                    EntryKind::Symlink(target) => beneath.replace_symlink(path, target)?,
                    _ => {}
                }
            }
        }
        Ok(ToolRoot {
            root,
            arch: arch.to_string(),
        })
    }

    /// Runs `program` (a path inside the root) in the sandbox, `stage` writable, with the
    /// arguments and environment variables `invocation` gives (it gets the sandbox, to name
    /// paths as the program sees them). Returns what it printed on standard output; a
    /// non-zero exit is an error with its stderr.
    pub fn run(
        &self,
        stage: &Path,
        program: &str,
        invocation: impl FnOnce(&Sandbox) -> Invocation,
    ) -> Result<Vec<u8>, ToolError> {
        let sandbox = Sandbox::new(self.root.path(), stage)?;
        // Through the image's own loader, so that neither the host's loader nor its
        // libraries play a part, also when the sandbox is off.
        let triplet = triplet(&self.arch);
        let library_path = [format!("/usr/lib/{triplet}"), "/usr/lib".to_string()]
            .map(|p| sandbox.inside(&p).display().to_string())
            .join(":");
        let mut command = sandbox.command(&format!("/usr/lib/{triplet}/{}", loader(&self.arch)))?;
        let invocation = invocation(&sandbox);
        command
            .arg("--library-path")
            .arg(library_path)
            .arg(sandbox.inside(program))
            .args(invocation.args)
            .env_clear()
            .envs(invocation.env)
            .env("LC_ALL", "C.UTF-8")
            .env("PKGSYSTEM_ENABLE_FSYNC", "0")
            .stdin(std::process::Stdio::null());
        // A program of another arch that the kernel cannot run fails with ENOEXEC; any
        // other failure to start is the sandbox's.
        let output = command.output().map_err(|source| {
            let foreign = host_arch() != Some(self.arch.as_str());
            if foreign && source.raw_os_error() == Some(libc_enoexec()) {
                ToolError::ForeignArch {
                    arch: self.arch.clone(),
                    program: program.to_string(),
                    source,
                }
            } else {
                ToolError::Sandbox(sandbox.spawn_error(source))
            }
        })?;
        if !output.status.success() {
            return Err(ToolError::Failed {
                program: program.to_string(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        // Paths it printed are paths in the image, also when it ran outside the sandbox.
        let mut stdout = output.stdout;
        if !sandbox.confined() {
            let host_root = self.root.path().display().to_string();
            stdout = String::from_utf8_lossy(&stdout)
                .replace(&host_root, "")
                .into_bytes();
        }
        Ok(stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, fields: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            architecture: "amd64".into(),
            multi_arch_same: false,
            control: [(
                "control".to_string(),
                format!("Package: {name}\nVersion: 1\n{fields}").into_bytes(),
            )]
            .into(),
            list: Vec::new(),
            conffiles: Vec::new(),
            licenses: Default::default(),
        }
    }

    #[test]
    fn the_closure_follows_depends_pre_depends_alternatives_and_provides() {
        let installed = [
            package(
                "tool",
                "Depends: libfoo (>= 1), missing | libbar, virtual-x\nPre-Depends: libc6\n",
            ),
            package("libfoo", "Depends: libc6\n"),
            package("libbar", ""),
            package("libc6", ""),
            package("provider", "Provides: virtual-x (= 1)\n"),
            package("unrelated", "Depends: libfoo\n"),
        ];
        let got = closure(&installed, &["tool", "not-installed"]);
        let want: BTreeSet<String> = ["tool", "libfoo", "libbar", "libc6", "provider"]
            .map(String::from)
            .into();
        assert_eq!(got, want);
    }
}
