//! The CLI's error: a message, an optional hint saying what to do next, an exit code.

use super::exit;
use carbon_store::config::mirrors::MirrorError;
use carbon_store::debian::index::DebianIndexError;
use carbon_store::debian::signature::SignatureError;
use carbon_store::download::FetchLockError;
use carbon_store::lock::LockError;
use carbon_store::recipe::RecipeError;
use carbon_store::store::StoreError;

pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            hint: None,
            code: exit::FAILURE,
        }
    }
    /// An exit code that is itself the answer (`lock diff --exit-code`): nothing printed.
    pub fn exit_only(code: i32) -> CliError {
        CliError {
            code,
            ..CliError::new("")
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
    pub fn code(mut self, code: i32) -> CliError {
        self.code = code;
        self
    }
}

fn store_hint(e: &StoreError) -> Option<&'static str> {
    if e.is_disk_full() {
        Some(
            "the disk is full: free space or point --store at a larger disk; nothing partial was left in the store",
        )
    } else {
        None
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let hint = store_hint(&e);
        let mut c = CliError::new(e.to_string());
        c.hint = hint.map(str::to_string);
        c
    }
}

impl From<RecipeError> for CliError {
    fn from(e: RecipeError) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<MirrorError> for CliError {
    fn from(e: MirrorError) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<LockError> for CliError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Missing { .. } | LockError::Stale { .. } | LockError::Malformed { .. } | LockError::MissingArch { .. } | LockError::WrongImage { .. } => {
                CliError::new(e.to_string()).code(exit::LOCK_CHECK)
            }
            LockError::Store(s) => s.into(),
            LockError::Index(DebianIndexError::OfflineNoRelease { .. }) => CliError::new(e.to_string()).code(exit::OFFLINE_MISSING),
            LockError::Index(DebianIndexError::Fetch(carbon_store::fetch::FetchError::Offline { .. })) => {
                CliError::new(e.to_string()).code(exit::OFFLINE_MISSING)
            }
            LockError::Npm { ref error, .. } if error.is_offline_missing() => CliError::new(e.to_string()).code(exit::OFFLINE_MISSING).hint(
                "locking npm packages reads the npm registry's metadata, which no bundle or registry cache carries (a lock does not pin it): lock where the registry is reachable; realize and fetch need only the lock",
            ),
            LockError::Index(DebianIndexError::Signature(SignatureError::NoValidSignature { altered: true, .. })) => {
                CliError::new(e.to_string()).hint(
                    "the mirror serves an InRelease that was changed after the archive signed it: use another mirror (--mirror debian=URL); nothing from this one was kept",
                )
            }
            LockError::Index(DebianIndexError::Signature(_)) => CliError::new(e.to_string())
                .hint("the archive signature could not be verified: check the mirror URL, or update the keyrings under recipes/keys/"),
            other => CliError::new(other.to_string()),
        }
    }
}

impl From<FetchLockError> for CliError {
    fn from(e: FetchLockError) -> Self {
        match e {
            FetchLockError::OfflineMissing { .. } => CliError::new(e.to_string()).code(exit::OFFLINE_MISSING),
            FetchLockError::Failed { .. } => CliError::new(e.to_string())
                .hint("check the mirror (--mirror, CARBON_MIRROR_*); downloads already verified stay in the store, so re-running resumes"),
            other => CliError::new(other.to_string()),
        }
    }
}
