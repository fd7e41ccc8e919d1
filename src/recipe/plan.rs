//! An image resolved from its recipes: the `from` chain flattened, components ordered
//! (`after` first), the Debian source and keyrings read, and a canonical hash of what
//! resolution reads of it.
//!
//! The hash is what makes a lock stale. It covers only the inputs of resolution (the
//! resolver's rules version, archs, suites, keyrings, Python indexes, each component's
//! package requests, in layer order):
//! a label, an environment variable, a file or a user added to a recipe changes the image
//! but not what is pinned, so it must not send a lock back to the resolver. It is taken
//! over the parsed model serialized as JSON with a fixed field order, so comments, key
//! order and formatting in the TOML files never change it either.

use super::{
    ComponentFile, DebianRequest, DebianSource, ImageConfig, NpmRequest, RecipeError, Recipes,
    SUPPORTED_ARCHS, SuiteSpec, suggest,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The version of the resolvers' rules, part of every lock's recipes hash: a change of
/// rules makes each lock stale, and `lock` re-resolves it keeping every pin that still
/// fits. 2: every Debian request of an image is marked before any dependency is chosen,
/// as apt does.
pub const RESOLVER_RULES: u32 = 2;

/// One component of an image, in layer order.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedComponent {
    pub name: String,
    pub recipe: ComponentFile,
}

/// Where an image's Python environment lives and which indexes feed it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PythonSettings {
    pub prefix: String,
    pub indexes: Vec<String>,
}

impl Default for PythonSettings {
    fn default() -> Self {
        PythonSettings {
            prefix: "/opt/carbon/python".into(),
            indexes: vec!["pypi".into()],
        }
    }
}

/// What one image is made of, ready to resolve.
#[derive(Clone, Debug, Serialize)]
pub struct ImagePlan {
    pub name: String,
    pub description: String,
    pub archs: Vec<String>,
    pub source: DebianSource,
    /// (path relative to the recipes directory, sha256 of its content)
    pub keyring_hashes: Vec<(String, String)>,
    pub config: ImageConfig,
    /// The recipes' OCI annotations, the `from` chain merged.
    pub annotations: BTreeMap<String, String>,
    /// Present when a component has Python requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonSettings>,
    pub components: Vec<PlannedComponent>,
    #[serde(skip)]
    pub keyring_bytes: Vec<(String, Vec<u8>)>,
}

/// What resolution reads of a plan, and nothing else (see the module comment).
#[derive(Serialize)]
struct ResolutionInputs<'a> {
    /// The resolver's own rules: a lock made by other rules would not be made again.
    resolver: u32,
    archs: &'a [String],
    suites: &'a [SuiteSpec],
    debian_components: &'a [String],
    keyrings: &'a [(String, String)],
    python_indexes: Option<&'a [String]>,
    components: Vec<ComponentRequests<'a>>,
}

/// One component's package requests. Its name is recorded on every lock line it pulls in.
#[derive(Serialize)]
struct ComponentRequests<'a> {
    name: &'a str,
    debian: Option<&'a DebianRequest>,
    python: Option<PythonRequests<'a>>,
    npm: Option<&'a NpmRequest>,
}

/// The part of a `[python]` table the resolver reads; the rest (record hashes, wheel tags,
/// site packages) is applied when the image is realized.
#[derive(Serialize)]
struct PythonRequests<'a> {
    requirements: &'a [String],
    constraints: &'a [String],
    exclude: &'a [String],
    build_from_source: &'a [String],
}

impl ImagePlan {
    /// `sha256:<hex>` of what resolution reads of this image's recipes: a lock made from
    /// other values is stale.
    pub fn resolution_hash(&self) -> String {
        let inputs = ResolutionInputs {
            resolver: RESOLVER_RULES,
            archs: &self.archs,
            suites: &self.source.suite,
            debian_components: &self.source.components,
            keyrings: &self.keyring_hashes,
            python_indexes: self.python.as_ref().map(|p| p.indexes.as_slice()),
            components: self
                .components
                .iter()
                .map(|c| ComponentRequests {
                    name: &c.name,
                    debian: c.recipe.debian.as_ref(),
                    python: c.recipe.python.as_ref().map(|p| PythonRequests {
                        requirements: &p.requirements,
                        constraints: &p.constraints,
                        exclude: &p.exclude,
                        build_from_source: &p.build_from_source,
                    }),
                    npm: c.recipe.npm.as_ref(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&inputs).expect("resolution inputs serialize");
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    /// `sha256:<hex>` of the whole plan, config and realize-time options included: what,
    /// beside the lock and the shipped files, a realized image depends on.
    pub fn content_hash(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("plans serialize");
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }
}

#[cfg(test)]
impl ImagePlan {
    /// A plan of no component on one arch, for tests of what reads a plan.
    pub fn for_tests(name: &str, description: &str) -> ImagePlan {
        ImagePlan {
            name: name.into(),
            description: description.into(),
            archs: vec!["amd64".into()],
            source: DebianSource {
                name: "test".into(),
                description: String::new(),
                components: vec!["main".into()],
                keyrings: Vec::new(),
                suite: Vec::new(),
            },
            keyring_hashes: Vec::new(),
            config: ImageConfig::default(),
            annotations: BTreeMap::new(),
            python: None,
            components: Vec::new(),
            keyring_bytes: Vec::new(),
        }
    }
}

pub(super) fn plan(recipes: &Recipes, name: &str) -> Result<ImagePlan, RecipeError> {
    // Walk the `from` chain, root first.
    let mut chain = Vec::new();
    let mut seen = BTreeSet::new();
    let mut next = Some(name.to_string());
    while let Some(current) = next {
        if !seen.insert(current.clone()) {
            let mut names: Vec<String> =
                chain.iter().map(|(n, _): &(String, _)| n.clone()).collect();
            names.push(current);
            return Err(RecipeError::Cycle {
                what: "image `from`",
                chain: names.join(" → "),
            });
        }
        let (_, image) = recipes
            .images
            .get(&current)
            .ok_or_else(|| RecipeError::UnknownImage {
                name: current.clone(),
                dir: recipes.dir.join("images"),
                hint: suggest(&current, recipes.images.keys()),
            })?;
        next = image.image.from.clone();
        chain.push((current, image));
    }
    chain.reverse();

    let mut archs: Option<Vec<String>> = None;
    let mut source_name: Option<String> = None;
    let mut config = ImageConfig::default();
    let mut annotations = BTreeMap::new();
    let mut python = PythonSettings::default();
    let mut wanted: Vec<(String, String)> = Vec::new(); // (component, which image asked)
    for (image_name, image) in &chain {
        if let Some(a) = &image.image.archs {
            archs = Some(a.clone());
        }
        if let Some(s) = &image.image.debian_source {
            source_name = Some(s.clone());
        }
        for c in &image.image.components {
            wanted.push((c.clone(), image_name.clone()));
        }
        merge_config(&mut config, &image.config);
        annotations.extend(image.annotations.clone());
        if let Some(p) = &image.python {
            if let Some(prefix) = &p.prefix {
                python.prefix = prefix.clone();
            }
            if let Some(indexes) = &p.indexes {
                python.indexes = indexes.clone();
            }
        }
    }
    let (_, top) = chain.last().expect("chain holds the image itself");

    let archs = archs
        .filter(|a| !a.is_empty())
        .ok_or_else(|| RecipeError::NoArchs {
            image: name.to_string(),
        })?;
    for arch in &archs {
        if !SUPPORTED_ARCHS.contains(&arch.as_str()) {
            return Err(RecipeError::BadArch {
                image: name.to_string(),
                arch: arch.clone(),
            });
        }
    }
    let source_name = source_name.ok_or_else(|| RecipeError::NoSource {
        image: name.to_string(),
    })?;
    let (source_path, source) =
        recipes
            .sources
            .get(&source_name)
            .ok_or_else(|| RecipeError::UnknownSource {
                image: name.to_string(),
                name: source_name.clone(),
                dir: recipes.dir.join("sources"),
            })?;

    let components = order_components(recipes, &wanted)?;

    let mut keyring_hashes = Vec::new();
    let mut keyring_bytes = Vec::new();
    for rel in &source.debian_source.keyrings {
        let path = recipes.dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|e| RecipeError::Invalid {
            path: source_path.clone(),
            message: format!("keyring {rel}: {e}"),
        })?;
        keyring_hashes.push((rel.clone(), hex::encode(Sha256::digest(&bytes))));
        keyring_bytes.push((rel.clone(), bytes));
    }

    Ok(ImagePlan {
        name: name.to_string(),
        description: top.image.description.clone(),
        archs,
        source: source.debian_source.clone(),
        keyring_hashes,
        python: components
            .iter()
            .any(|c| c.recipe.python.is_some())
            .then_some(python),
        config,
        annotations,
        components,
        keyring_bytes,
    })
}

fn merge_config(into: &mut ImageConfig, from: &ImageConfig) {
    if from.user.is_some() {
        into.user = from.user.clone();
    }
    if from.workdir.is_some() {
        into.workdir = from.workdir.clone();
    }
    if from.entrypoint.is_some() {
        into.entrypoint = from.entrypoint.clone();
    }
    if from.cmd.is_some() {
        into.cmd = from.cmd.clone();
    }
    if from.exposed_ports.is_some() {
        into.exposed_ports = from.exposed_ports.clone();
    }
    into.env.extend(from.env.clone());
    into.labels.extend(from.labels.clone());
}

/// Orders components so that each comes after those it names in `after` (which are pulled
/// in if the image does not list them), otherwise keeping the listed order.
fn order_components(
    recipes: &Recipes,
    wanted: &[(String, String)],
) -> Result<Vec<PlannedComponent>, RecipeError> {
    let mut out: Vec<PlannedComponent> = Vec::new();
    let mut placed = BTreeSet::new();
    let mut visiting: Vec<String> = Vec::new();

    fn visit(
        recipes: &Recipes,
        name: &str,
        context: &str,
        out: &mut Vec<PlannedComponent>,
        placed: &mut BTreeSet<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), RecipeError> {
        if placed.contains(name) {
            return Ok(());
        }
        if visiting.iter().any(|v| v == name) {
            visiting.push(name.to_string());
            return Err(RecipeError::Cycle {
                what: "component `after`",
                chain: visiting.join(" → "),
            });
        }
        let (_, recipe) =
            recipes
                .components
                .get(name)
                .ok_or_else(|| RecipeError::UnknownComponent {
                    context: context.to_string(),
                    name: name.to_string(),
                    dir: recipes.dir.join("components"),
                    hint: suggest(name, recipes.components.keys()),
                })?;
        visiting.push(name.to_string());
        for before in &recipe.component.after {
            visit(
                recipes,
                before,
                &format!("component {name} (after)"),
                out,
                placed,
                visiting,
            )?;
        }
        visiting.pop();
        placed.insert(name.to_string());
        out.push(PlannedComponent {
            name: name.to_string(),
            recipe: recipe.clone(),
        });
        Ok(())
    }

    for (name, image) in wanted {
        visit(
            recipes,
            name,
            &format!("image {image}"),
            &mut out,
            &mut placed,
            &mut visiting,
        )?;
    }
    Ok(out)
}
