//! A layer derived from the Debian layers' contents — the byte-code of Debian's Python
//! modules, the caches dpkg triggers would write — and cached by an input key.
//!
//! Why one module: such a layer must be decided on *before* the Debian side is read, since
//! a cache hit for both the Debian side and every derived layer lets a realize skip reading
//! the `.deb` files altogether; a miss of any derived layer makes the Debian layers be read
//! with their contents. The decision, the reuse and the recording are the same for every
//! such layer; only what builds it differs.

use super::input_cache;
use crate::layer::tree::Tree;
use crate::store::Store;

/// What a realize does about one derived layer.
pub enum Plan {
    /// Nothing to derive for this image, or its inputs gave no layer before.
    Nothing,
    /// Built before from the same inputs: its tree without contents and its diff id.
    Reused(Tree, input_cache::Prebuilt),
    /// To build from the Debian layers' contents, then record under `key` (inputs that
    /// give no layer are recorded as derived from the Debian side's record, `debian_key`).
    Build { key: String, debian_key: String },
}

impl Plan {
    /// The plan for inputs `key` (`None`: nothing to derive) of the Debian side whose
    /// record is `debian_key`. `--check` always builds.
    pub fn new(
        store: &Store,
        key: Option<String>,
        debian_key: &str,
        check: bool,
        blob_exists: impl Fn(&str) -> bool,
    ) -> Plan {
        let Some(key) = key else {
            return Plan::Nothing;
        };
        let build = |key| Plan::Build {
            key,
            debian_key: debian_key.to_string(),
        };
        if check {
            return build(key);
        }
        match input_cache::lookup_recorded(store, &key, blob_exists) {
            Some(input_cache::Recorded::NoLayer) => Plan::Nothing,
            Some(input_cache::Recorded::Layer(tree, prebuilt)) => Plan::Reused(tree, prebuilt),
            None => build(key),
        }
    }

    /// Whether the Debian layers must be read with their contents.
    pub fn needs_contents(&self) -> bool {
        matches!(self, Plan::Build { .. })
    }

    /// Runs `build` when the plan is to build; otherwise builds nothing.
    pub fn build<E>(
        &self,
        build: impl FnOnce() -> Result<Option<Tree>, E>,
    ) -> Result<Option<Tree>, E> {
        match self {
            Plan::Build { .. } => build(),
            _ => Ok(None),
        }
    }

    /// The layer that goes into the image, given what [`Plan::build`] made. Inputs that
    /// gave no layer are recorded as such (except by `--check`, which records nothing).
    pub fn layer(
        self,
        built: Option<Tree>,
        store: &Store,
        check: bool,
    ) -> Result<Option<Layer>, crate::store::StoreError> {
        Ok(match (self, built) {
            (Plan::Nothing, _) => None,
            (Plan::Reused(tree, prebuilt), _) => Some(Layer {
                tree,
                prebuilt: Some(prebuilt),
                record_under: None,
            }),
            (Plan::Build { key, .. }, Some(tree)) => Some(Layer {
                tree,
                prebuilt: None,
                record_under: (!check).then_some(key),
            }),
            (Plan::Build { key, debian_key }, None) => {
                if !check {
                    input_cache::save_none(store, &key, &debian_key)?;
                }
                None
            }
        })
    }
}

/// A derived layer of an image.
pub struct Layer {
    pub tree: Tree,
    /// Its diff id and record, when reused.
    pub prebuilt: Option<input_cache::Prebuilt>,
    /// The key to record it under once written, when freshly built.
    pub record_under: Option<String>,
}
