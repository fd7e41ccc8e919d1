//! An arch's npm layers: one per component with npm packages (the Node.js runtime in the
//! layer of the component that sets it), each layer's input key for
//! [`super::input_cache`], and building one layer's tree from the locked tarballs.

use crate::layer::content::Spill;
use crate::layer::tree::Tree;
use crate::lockfile::{Lockfile, NpmArtifact};
use crate::npm::install::{self, InstallError};
use crate::recipe::ImagePlan;
use crate::recipe::model::DeclaredScripts;
use crate::store::Store;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// The npm packages of one layer.
pub struct NpmGroup<'l> {
    pub comment: String,
    pub members: Vec<&'l NpmArtifact>,
    /// The layer's input key (see [`super::input_cache`]).
    pub key: String,
}

/// The npm layers of one arch.
pub struct NpmLayers<'l> {
    pub groups: Vec<NpmGroup<'l>>,
    /// npm's name of the arch (`x64`), for declared links.
    pub cpu: &'static str,
    /// Every package's place (`at`), for declared links.
    pub locations: BTreeSet<String>,
    /// Declared install scripts by package name.
    pub scripts: BTreeMap<String, DeclaredScripts>,
}

/// Plans the npm layers of `arch` (none when the lock has no npm packages for it).
pub fn plan<'l>(plan: &ImagePlan, lock: &'l Lockfile, arch: &str) -> NpmLayers<'l> {
    let packages = &lock.archs[arch].npm;
    let scripts: BTreeMap<String, DeclaredScripts> = plan
        .components
        .iter()
        .filter_map(|c| c.recipe.npm.as_ref())
        .flat_map(|n| n.scripts.iter())
        .map(|(name, d)| (name.clone(), d.clone()))
        .collect();
    let mut groups = Vec::new();
    for c in &plan.components {
        let members: Vec<&NpmArtifact> =
            packages.iter().filter(|p| p.component == c.name).collect();
        if members.is_empty() {
            continue;
        }
        // What a layer's bytes depend on: the prefix, the packages at their places and
        // what is declared for their scripts.
        let mut key = super::input_cache::InputKey::new();
        key.add("npm layer");
        key.add(arch);
        key.add(crate::npm::PREFIX);
        for p in &members {
            key.add(&p.name);
            key.add(&p.at);
            key.add(&p.integrity.to_string());
            if let Some(d) = scripts.get(&p.name) {
                key.add(&serde_json::to_string(d).expect("declarations serialize"));
            }
        }
        groups.push(NpmGroup {
            comment: format!("component {}: {} npm packages", c.name, members.len()),
            members,
            key: key.finish(),
        });
    }
    NpmLayers {
        groups,
        cpu: crate::npm::cpu_of(arch).unwrap_or(""),
        locations: packages.iter().map(|p| p.at.clone()).collect(),
        scripts,
    }
}

/// The `bin` field of an unpacked package, from its `package.json` in the tree.
fn bins_of(tree: &Tree, artifact: &NpmArtifact) -> Result<BTreeMap<String, String>, InstallError> {
    let path = format!(
        "{}/package.json",
        install::package_dir(crate::npm::PREFIX, artifact)
    );
    let Some(node) = tree.nodes.get(&path) else {
        return Ok(BTreeMap::new());
    };
    let bytes = node.content.to_vec()?;
    #[derive(serde::Deserialize)]
    struct PackageJson {
        name: String,
        #[serde(default)]
        bin: serde_json::Value,
    }
    let json: PackageJson = serde_json::from_slice(&bytes).map_err(|e| InstallError::Bad {
        package: artifact.name.clone(),
        reason: format!("package.json: {e}"),
    })?;
    Ok(crate::npm::registry::bins(&json.name, &json.bin))
}

/// Builds one npm layer: its tarballs unpacked in parallel (each into its own tree, merged
/// in lock order), then the commands linked and the declared scripts applied.
pub fn build(
    store: &Store,
    layers: &NpmLayers,
    group: &NpmGroup,
    spill: &Spill,
) -> Result<Tree, InstallError> {
    let prefix = crate::npm::PREFIX;
    let parts: Vec<Tree> = group
        .members
        .par_iter()
        .map(|p| {
            let mut part = Tree::default();
            install::unpack(store, prefix, p, &mut part, spill)?;
            Ok(part)
        })
        .collect::<Result<_, InstallError>>()?;
    let mut tree = Tree::default();
    for part in parts {
        for (path, node) in part.nodes {
            tree.nodes.entry(path).or_insert(node);
        }
    }
    for p in &group.members {
        let bins = bins_of(&tree, p)?;
        install::link_bins(&mut tree, prefix, p, &bins)?;
    }
    for p in &group.members {
        if let Some(declared) = layers.scripts.get(&p.name) {
            install::apply_declared(
                &mut tree,
                prefix,
                p,
                declared,
                layers.cpu,
                &layers.locations,
            )?;
        }
    }
    Ok(tree)
}
