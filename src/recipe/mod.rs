//! Recipes: loading and validating the TOML files, resolving an image (its `from`
//! chain, component order, Debian source) into a plan, and hashing that plan.

pub mod model;
mod plan;

pub use model::*;
pub use plan::{ImagePlan, PlannedComponent, PythonSettings};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A recipe problem, naming the file (and, for TOML errors, the line and key).
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path}: the recipe is named {name:?} but the file is {stem:?}.toml; rename one so they agree"
    )]
    NameMismatch {
        path: PathBuf,
        name: String,
        stem: String,
    },
    #[error("no image named {name:?} in {dir}{hint}")]
    UnknownImage {
        name: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("{context}: no component named {name:?} (looked in {dir}){hint}")]
    UnknownComponent {
        context: String,
        name: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("image {image}: no Debian source named {name:?} in {dir}")]
    UnknownSource {
        image: String,
        name: String,
        dir: PathBuf,
    },
    #[error(
        "image {image} has no Debian source: set `debian-source` in [image] or inherit one with `from`"
    )]
    NoSource { image: String },
    #[error("image {image} has no archs: set `archs = [\"amd64\", \"arm64\"]` in [image]")]
    NoArchs { image: String },
    #[error("image {image}: unsupported arch {arch:?} (supported: amd64, arm64)")]
    BadArch { image: String, arch: String },
    #[error("cycle in {what}: {chain}")]
    Cycle { what: &'static str, chain: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Every recipe under a recipes directory.
#[derive(Debug, Clone)]
pub struct Recipes {
    pub dir: PathBuf,
    pub components: BTreeMap<String, (PathBuf, ComponentFile)>,
    pub images: BTreeMap<String, (PathBuf, ImageFile)>,
    pub sources: BTreeMap<String, (PathBuf, SourceFile)>,
}

/// The archs carbon-store builds.
pub const SUPPORTED_ARCHS: &[&str] = &["amd64", "arm64"];

/// An arch as users write it — Debian's (`amd64`), the kernel's (`x86_64`, `aarch64`) or
/// an OCI platform (`linux/amd64`, `linux/arm64/v8`) — as Debian's name.
pub fn arch_named(text: &str) -> Result<String, String> {
    let arch = match text.trim().to_ascii_lowercase().as_str() {
        "amd64" | "x86_64" | "x86-64" | "linux/amd64" => "amd64",
        "arm64" | "aarch64" | "linux/arm64" | "linux/arm64/v8" => "arm64",
        _ => {
            return Err(format!(
                "{text:?} is not an arch carbon-store builds: amd64 (x86_64, linux/amd64) or arm64 (aarch64, linux/arm64)"
            ));
        }
    };
    Ok(arch.to_string())
}

fn load_dir<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name_of: impl Fn(&T) -> &str,
) -> Result<BTreeMap<String, (PathBuf, T)>, RecipeError> {
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(RecipeError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = fs::read_to_string(&path).map_err(|source| RecipeError::Io {
            path: path.clone(),
            source,
        })?;
        let value: T = toml::from_str(&text).map_err(|e| RecipeError::Parse {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let name = name_of(&value).to_string();
        if name != stem {
            return Err(RecipeError::NameMismatch { path, name, stem });
        }
        out.insert(name, (path, value));
    }
    Ok(out)
}

/// "did you mean `x`?" for the closest known name.
pub(crate) fn suggest<'a>(wanted: &str, known: impl Iterator<Item = &'a String>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for name in known {
        let d = edit_distance(wanted, name);
        if d <= 3 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, name));
        }
    }
    best.map(|(_, n)| format!("; did you mean {n:?}?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Recipes {
    /// Loads `components/`, `images/` and `sources/` under `dir`.
    pub fn load(dir: &Path) -> Result<Recipes, RecipeError> {
        let recipes = Recipes {
            dir: dir.to_path_buf(),
            components: load_dir(&dir.join("components"), |c: &ComponentFile| {
                &c.component.name
            })?,
            images: load_dir(&dir.join("images"), |i: &ImageFile| &i.image.name)?,
            sources: load_dir(&dir.join("sources"), |s: &SourceFile| &s.debian_source.name)?,
        };
        recipes.validate()?;
        Ok(recipes)
    }

    fn validate(&self) -> Result<(), RecipeError> {
        // Image names become output and lockfile names.
        for (name, (path, _)) in &self.images {
            crate::name::image_name("image name", name).map_err(|e| RecipeError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        for (path, component) in self.components.values() {
            for user in &component.user {
                if user.name.is_empty() || user.name.contains(':') {
                    return Err(RecipeError::Invalid {
                        path: path.clone(),
                        message: format!("user name {:?} is not valid", user.name),
                    });
                }
            }
            for p in &component.path {
                if !p.path.starts_with('/') || p.path.split('/').any(|s| s == "..") {
                    return Err(RecipeError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "path {:?} must be absolute and must not contain `..`",
                            p.path
                        ),
                    });
                }
                if let Some(mode) = &p.mode
                    && (u32::from_str_radix(mode, 8).is_err() || mode.len() > 4)
                {
                    return Err(RecipeError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "mode {mode:?} of {} is not an octal mode such as \"0755\"",
                            p.path
                        ),
                    });
                }
                if p.kind != PathKind::Dir && p.source.is_none() {
                    return Err(RecipeError::Invalid {
                        path: path.clone(),
                        message: format!("{} needs `source`", p.path),
                    });
                }
            }
        }
        for (path, source) in self.sources.values() {
            let s = &source.debian_source;
            if s.suite.is_empty() || s.components.is_empty() || s.keyrings.is_empty() {
                return Err(RecipeError::Invalid {
                    path: path.clone(),
                    message: "a Debian source needs at least one suite, component and keyring"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Image names, sorted.
    pub fn image_names(&self) -> Vec<String> {
        self.images.keys().cloned().collect()
    }

    /// Resolves an image into its plan: inherited settings, ordered components, source.
    pub fn plan(&self, name: &str) -> Result<ImagePlan, RecipeError> {
        plan::plan(self, name)
    }
}
