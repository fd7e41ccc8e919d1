//! Runs a program taken from the packages being built — the image's own Python, which
//! compiles byte-code — as untrusted code.
//!
//! Why: the interpreter and everything it loads come from the archive; a hostile or broken
//! package could write anywhere the build user can. So the program runs in a private user,
//! mount and network namespace, with the unpacked root as its whole file system, read-only,
//! and one directory of it (the stage) writable: no network, no view of the host.
//!
//! How: in the child, before `exec`, `unshare(NEWUSER | NEWNS | NEWNET | NEWIPC)`, map the
//! caller's uid and gid to root inside, make every mount private, bind the root onto
//! itself and the stage onto its mount point, remount the root read-only (keeping the
//! flags the kernel locks: nosuid, nodev, noexec), then `pivot_root` into it and detach
//! the old root. Paths given to the program are then paths inside the root.
//!
//! Hosts that refuse unprivileged user namespaces (some container runtimes' seccomp
//! profiles) get [`SandboxError::Unavailable`]; `CARBON_BYTECODE_SANDBOX=off` runs the
//! program without the namespaces as a deliberate, documented choice (docs/security.md).

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns the sandbox off.
pub const SANDBOX_ENV: &str = "CARBON_BYTECODE_SANDBOX";

/// Where the stage is mounted inside the root.
pub const STAGE_IN_ROOT: &str = "/.stage";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "cannot run the image's interpreter in a sandbox here ({source}); it needs user namespaces"
    )]
    Unavailable { source: std::io::Error },
    #[error("preparing the sandbox at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A root to run programs in, and the one directory they may write.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    stage: PathBuf,
    confined: bool,
}

impl Sandbox {
    /// `root` holds the unpacked program; `stage` (outside it) is what it may write.
    /// Creates the stage's mount point inside the root.
    pub fn new(root: &Path, stage: &Path) -> Result<Sandbox, SandboxError> {
        let confined = std::env::var(SANDBOX_ENV).as_deref() != Ok("off");
        let point = root.join(STAGE_IN_ROOT.trim_start_matches('/'));
        std::fs::create_dir_all(&point).map_err(|source| SandboxError::Io {
            path: point.clone(),
            source,
        })?;
        Ok(Sandbox {
            root: root.to_path_buf(),
            stage: stage.to_path_buf(),
            confined,
        })
    }

    /// Whether programs run confined (the default).
    pub fn confined(&self) -> bool {
        self.confined
    }

    /// A path inside the root as the program sees it.
    pub fn inside(&self, in_root: &str) -> PathBuf {
        let rel = in_root.trim_start_matches('/');
        if self.confined {
            Path::new("/").join(rel)
        } else {
            self.root.join(rel)
        }
    }

    /// The stage as the program sees it (no trailing `/`: in-image paths are taken
    /// relative to it).
    pub fn stage_dir(&self) -> PathBuf {
        if self.confined {
            PathBuf::from(STAGE_IN_ROOT)
        } else {
            self.stage.clone()
        }
    }

    /// A path inside the stage as the program sees it.
    pub fn stage_inside(&self, rel: &str) -> PathBuf {
        self.stage_dir().join(rel)
    }

    /// A command for `program` (a path inside the root), set up to enter the sandbox. A
    /// host that refuses the namespaces makes spawning it fail; [`Sandbox::spawn_error`]
    /// words that.
    pub fn command(&self, program: &str) -> Result<Command, SandboxError> {
        let mut command = Command::new(self.inside(program));
        if !self.confined {
            return Ok(command);
        }
        let plan = Plan::new(&self.root, &self.stage)?;
        // SAFETY: the closure runs between fork and exec; it only makes system calls on
        // buffers prepared before the fork and allocates nothing.
        unsafe {
            command.pre_exec(move || plan.enter().map_err(std::io::Error::from));
        }
        Ok(command)
    }

    /// The error for a command of this sandbox that could not be spawned.
    pub fn spawn_error(&self, source: std::io::Error) -> SandboxError {
        if self.confined {
            SandboxError::Unavailable { source }
        } else {
            SandboxError::Io {
                path: self.root.clone(),
                source,
            }
        }
    }
}

/// Everything the child needs, as C strings made before the fork.
struct Plan {
    root: CString,
    stage: CString,
    stage_point: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    locked: MountFlags,
}

impl Plan {
    fn new(root: &Path, stage: &Path) -> Result<Plan, SandboxError> {
        let io = |path: &Path, source: std::io::Error| SandboxError::Io {
            path: path.to_path_buf(),
            source,
        };
        let root = std::path::absolute(root).map_err(|e| io(root, e))?;
        let stage = std::path::absolute(stage).map_err(|e| io(stage, e))?;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL");
        // Flags of the mount holding the root that a user namespace may not clear.
        let vfs = rustix::fs::statvfs(&root).map_err(|e| io(&root, e.into()))?;
        let keep = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        let locked = MountFlags::from_bits_truncate(vfs.f_flag.bits() as _) & keep;
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        Ok(Plan {
            stage_point: c(&root.join(STAGE_IN_ROOT.trim_start_matches('/'))),
            root: c(&root),
            stage: c(&stage),
            uid_map: format!("0 {uid} 1\n").into_bytes(),
            gid_map: format!("0 {gid} 1\n").into_bytes(),
            locked,
        })
    }

    /// Enters the sandbox: the calling process ends up in it (run in a forked child).
    fn enter(&self) -> rustix::io::Result<()> {
        // SAFETY: called in a single-threaded child (after fork); no descriptor tables
        // are unshared.
        unsafe {
            rustix::thread::unshare_unsafe(
                UnshareFlags::NEWUSER
                    | UnshareFlags::NEWNS
                    | UnshareFlags::NEWNET
                    | UnshareFlags::NEWIPC,
            )?
        };
        write_proc(c"/proc/self/setgroups", b"deny")?;
        write_proc(c"/proc/self/uid_map", &self.uid_map)?;
        write_proc(c"/proc/self/gid_map", &self.gid_map)?;
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        )?;
        rustix::mount::mount_bind_recursive(self.root.as_c_str(), self.root.as_c_str())?;
        rustix::mount::mount_bind(self.stage.as_c_str(), self.stage_point.as_c_str())?;
        rustix::mount::mount_remount(
            self.root.as_c_str(),
            MountFlags::BIND | MountFlags::RDONLY | self.locked,
            c"",
        )?;
        rustix::process::chdir(self.root.as_c_str())?;
        rustix::process::pivot_root(c".", c".")?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH)?;
        rustix::process::chdir(c"/")?;
        Ok(())
    }
}

fn write_proc(path: &std::ffi::CStr, bytes: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::open(path, rustix::fs::OFlags::WRONLY, rustix::fs::Mode::empty())?;
    let written = rustix::io::write(&fd, bytes)?;
    if written != bytes.len() {
        return Err(rustix::io::Errno::IO);
    }
    Ok(())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A root holding the host's dash and the two files it needs, as an image's unpacked
    /// interpreter would hold Python.
    fn dash_root(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        for (from, to) in [
            ("/bin/dash", "usr/bin/dash"),
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ),
        ] {
            let dest = root.join(to);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(from, &dest).unwrap();
        }
        root
    }

    #[test]
    fn a_program_sees_only_its_root_read_only_and_writes_only_its_stage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dash_root(dir.path());
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let host_file = dir.path().join("host-file");
        let sandbox = Sandbox::new(&root, &stage).unwrap();
        assert!(sandbox.confined());
        let script = format!(
            "echo ok > /.stage/out; echo pwned > /pwned; echo pwned > {host}; \
             test -e {host} && echo host-visible > /.stage/host; \
             test -e /proc/self && echo proc-visible > /.stage/proc; true",
            host = host_file.display()
        );
        let status = sandbox
            .command("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .unwrap()
            .args([
                "--library-path",
                "/usr/lib/x86_64-linux-gnu",
                "/usr/bin/dash",
                "-c",
            ])
            .arg(&script)
            .env_clear()
            .status()
            .map_err(|e| sandbox.spawn_error(e))
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(stage.join("out")).unwrap(), b"ok\n");
        assert!(!root.join("pwned").exists(), "the root was writable");
        assert!(!host_file.exists(), "the host was writable");
        assert!(
            !stage.join("host").exists(),
            "the host's files were visible"
        );
        assert!(!stage.join("proc").exists(), "the host's /proc was visible");
    }
}
