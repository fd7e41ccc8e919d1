//! `[[path]]` entries of recipes: directories, files from `recipes/files/`, symlinks,
//! with owners and modes.

use super::accounts::Accounts;
use super::{FixupError, FixupInput, put};
use crate::layer::tree::Tree;
use crate::recipe::PathKind;

/// The "package" of a directory a recipe's `[[path]]` sets: the cross-layer reconciliation
/// keeps its metadata instead of the lowest layer's.
pub const RECIPE_DIR: &str = "[[path]]";

pub fn build(input: &FixupInput, accounts: &Accounts, tree: &mut Tree) -> Result<(), FixupError> {
    for spec in input.recipe_paths {
        let err = |reason: String| FixupError::RecipePath {
            path: spec.path.clone(),
            reason,
        };
        let mode = spec
            .mode
            .as_deref()
            .map(|m| u32::from_str_radix(m, 8))
            .transpose()
            .map_err(|e| err(e.to_string()))?;
        let (uid, gid) = match &spec.owner {
            Some(owner) => accounts
                .owner(owner)
                .ok_or_else(|| err(format!("unknown owner {owner:?}")))?,
            None => (0, 0),
        };
        let mut node = match spec.kind {
            PathKind::Dir => input.dir(mode.unwrap_or(0o755)),
            PathKind::Symlink => input.symlink(spec.source.as_deref().unwrap_or("")),
            PathKind::File => {
                let rel = spec.source.as_deref().unwrap_or("");
                if rel.split('/').any(|p| p == "..") || rel.starts_with('/') {
                    return Err(err(format!(
                        "source {rel:?} must be a relative path under recipes/files/"
                    )));
                }
                let content = std::fs::File::open(input.files_dir.join(rel))
                    .and_then(|mut file| input.spill.with_writer(|w| w.copy(&mut file)))
                    .map_err(|e| err(format!("recipes/files/{rel}: {e}")))?;
                input.file_with(content, mode.unwrap_or(0o644))
            }
        };
        node.uid = uid;
        node.gid = gid;
        if spec.kind == PathKind::Dir {
            // Its owner and mode win over what the packages' layers below say.
            node.package = Some(RECIPE_DIR.to_string());
        }
        put(input, tree, &spec.path, node);
    }
    Ok(())
}
