//! The caches dpkg triggers write, written by the image's own tools: compiled GSettings
//! schemas, the shared MIME database, icon theme caches, the desktop files' MIME cache,
//! the gdk-pixbuf loaders cache and the GIO modules cache.
//!
//! Why: packages declare an interest in a directory (`/usr/share/glib-2.0/schemas`, …) and
//! dpkg runs their trigger after every package that ships there; carbon-store runs no
//! package script, so without this layer the caches are missing and GNOME-family programs
//! fail (Cinnamon aborts: "No GSettings schemas are installed") or degrade (no icons, no
//! file types). docs/triggers.md lists every interest of the suite and what becomes of it.
//!
//! How: one layer above the Debian layers, built from their contents. Each trigger whose
//! tool the image has and whose directory holds something copies that directory into the
//! stage, runs the tool on it in the sandbox ([`image_tools`]), and takes what it wrote.
//! The tools are deterministic for the same input (the e2e test compares each cache with
//! the one the tool writes inside the container). The layer is cached by the Debian side's
//! key, like the byte-code layer.

use super::derived_layer::Plan;
use super::image_tools::{self, Invocation, ToolError, ToolRoot};
use super::input_cache::InputKey;
use crate::fixup::InstalledPackage;
use crate::layer::content::Content;
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::store::{ScratchDir, Store};
use crate::unpack::beneath::{Beneath, BeneathError};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};

pub const COMMENT: &str = "caches of dpkg triggers: GSettings schemas, MIME, icons, desktop files, pixbuf loaders, GIO modules";

/// Bumped when the layer's contents change for the same packages.
const FORMAT: &str = "trigger caches 2";

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("{trigger}: {source}")]
    Tool {
        trigger: &'static str,
        source: ToolError,
    },
    #[error("{trigger}: staging its input: {source}")]
    Stage {
        trigger: &'static str,
        source: BeneathError,
    },
    #[error("making the stage: {0}")]
    Scratch(std::io::Error),
    #[error("recipe path {path}: {source}")]
    RecipeFile {
        path: String,
        source: std::io::Error,
    },
}

/// The layer's plan, keyed by the Debian side and the recipes' files among its inputs.
pub fn plan(
    store: &Store,
    debian_key: &str,
    recipe_inputs: &Tree,
    check: bool,
    blob_exists: impl Fn(&str) -> bool,
) -> Plan {
    let mut key = InputKey::new();
    key.add(FORMAT);
    key.add(debian_key);
    for (path, node) in &recipe_inputs.nodes {
        key.add(path);
        let mut hasher = sha2::Sha256::new();
        // Recipe files are read into memory when the tree is made: this cannot fail.
        std::io::copy(&mut node.content.reader(), &mut hasher).expect("content in memory");
        key.add(&hex::encode(hasher.finalize()));
    }
    Plan::new(store, Some(key.finish()), debian_key, check, blob_exists)
}

/// The files that recipes' `[[path]]` entries put where a trigger reads (a GSettings
/// override, say), read from `files_dir`: the tools see them with the packages' files.
pub fn recipe_inputs(
    paths: &[crate::recipe::PathSpec],
    files_dir: &std::path::Path,
) -> Result<Tree, TriggerError> {
    let mut tree = Tree::default();
    for spec in paths {
        let path = spec.path.trim_start_matches('/');
        let read_by_trigger = TRIGGERS.iter().any(|t| {
            ["amd64", "arm64"].iter().any(|arch| {
                let dir = t.dir.replace("{triplet}", image_tools::triplet(arch));
                path.strip_prefix(&dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        });
        let Some(source) = spec.source.as_deref() else {
            continue;
        };
        if !read_by_trigger || spec.kind != crate::recipe::PathKind::File {
            continue;
        }
        let source = crate::name::relative_path("recipe file", source).map_err(|e| {
            TriggerError::RecipeFile {
                path: spec.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
            }
        })?;
        let data =
            std::fs::read(files_dir.join(source)).map_err(|source| TriggerError::RecipeFile {
                path: spec.path.clone(),
                source,
            })?;
        tree.put(
            path,
            Node {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                content: data.into(),
                package: None,
            },
        );
    }
    Ok(tree)
}

/// The image's files as its Debian layers leave them (a higher layer's entry wins).
type View<'t> = BTreeMap<&'t str, &'t Node>;

/// One trigger: the tool it runs and the directory it reads.
struct Trigger {
    name: &'static str,
    /// The tool's path in the image (`{triplet}` replaced by the arch's).
    tool: &'static str,
    /// The directory whose contents are the tool's input, and whose cache it writes.
    dir: &'static str,
    /// Whether the tool loads the directory's files as modules (their packages' dependencies
    /// must then be in the root too).
    loads_modules: bool,
    /// How it is run and where its output goes.
    writes: Writes,
}

/// How a trigger's tool is run, and what of its output is kept.
enum Writes {
    /// Given the (staged) directory, it writes or rewrites files in it.
    IntoDirectory,
    /// Given each icon theme (a subdirectory with an `index.theme`), it writes the theme's
    /// `icon-theme.cache`, as `update-icon-caches` runs it.
    IconThemeCaches,
    /// It reads the directory `env` names and prints the cache, kept at `cache` (relative
    /// to the directory).
    Prints {
        env: &'static str,
        cache: &'static str,
    },
}

const TRIGGERS: &[Trigger] = &[
    Trigger {
        name: "GSettings schemas",
        tool: "usr/lib/{triplet}/glib-2.0/glib-compile-schemas",
        dir: "usr/share/glib-2.0/schemas",
        loads_modules: false,
        writes: Writes::IntoDirectory,
    },
    Trigger {
        name: "shared MIME database",
        tool: "usr/bin/update-mime-database",
        dir: "usr/share/mime",
        loads_modules: false,
        writes: Writes::IntoDirectory,
    },
    Trigger {
        name: "icon theme caches",
        tool: "usr/bin/gtk-update-icon-cache",
        dir: "usr/share/icons",
        loads_modules: false,
        writes: Writes::IconThemeCaches,
    },
    Trigger {
        name: "desktop files' MIME cache",
        tool: "usr/bin/update-desktop-database",
        dir: "usr/share/applications",
        loads_modules: false,
        writes: Writes::IntoDirectory,
    },
    Trigger {
        name: "gdk-pixbuf loaders",
        tool: "usr/lib/{triplet}/gdk-pixbuf-2.0/gdk-pixbuf-query-loaders",
        dir: "usr/lib/{triplet}/gdk-pixbuf-2.0/2.10.0/loaders",
        loads_modules: true,
        writes: Writes::Prints {
            env: "GDK_PIXBUF_MODULEDIR",
            cache: "../loaders.cache",
        },
    },
    Trigger {
        name: "GIO modules",
        tool: "usr/lib/{triplet}/glib-2.0/gio-querymodules",
        dir: "usr/lib/{triplet}/gio/modules",
        loads_modules: true,
        writes: Writes::IntoDirectory,
    },
];

/// A trigger made concrete for one arch, with the image's entries under its directory.
struct Active<'t> {
    trigger: &'static Trigger,
    tool: String,
    dir: String,
    entries: Vec<(&'t str, &'t Node)>,
}

/// The layer for Debian layers `trees` (with contents, bottom first) of `arch` and the
/// recipes' files among the triggers' inputs, or `None` when no trigger of the image has
/// anything to do.
pub fn build(
    trees: &[Tree],
    recipe_inputs: &Tree,
    infos: &[InstalledPackage],
    arch: &str,
    store: &Store,
) -> Result<Option<Tree>, TriggerError> {
    let mut view = View::new();
    for tree in trees.iter().chain([recipe_inputs]) {
        for (path, node) in &tree.nodes {
            view.insert(path, node);
        }
    }
    let triplet = image_tools::triplet(arch);
    let active: Vec<Active> = TRIGGERS
        .iter()
        .filter_map(|trigger| {
            let tool = trigger.tool.replace("{triplet}", triplet);
            let dir = trigger.dir.replace("{triplet}", triplet);
            view.get(tool.as_str())?;
            let entries = under(&view, &dir);
            let has_input = entries.iter().any(|(_, n)| n.kind != EntryKind::Dir);
            has_input.then_some(Active {
                trigger,
                tool,
                dir,
                entries,
            })
        })
        .collect();
    if active.is_empty() {
        return Ok(None);
    }
    // The root: the tools' packages and, for tools that load modules, the modules' ones.
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    for a in &active {
        wanted.extend(view[a.tool.as_str()].package.as_deref());
        if a.trigger.loads_modules {
            wanted.extend(a.entries.iter().filter_map(|(_, n)| n.package.as_deref()));
        }
    }
    let wanted: Vec<&str> = wanted.into_iter().collect();
    let packages = image_tools::closure(infos, &wanted);
    let root = ToolRoot::write(store, "triggers", arch, trees, &packages).map_err(|source| {
        TriggerError::Tool {
            trigger: "tools",
            source,
        }
    })?;
    let mut layer = Tree::default();
    for a in &active {
        run(a, &root, store, arch, &mut layer)?;
    }
    Ok((!layer.nodes.is_empty()).then_some(layer))
}

/// The entries of `view` below directory `dir` (not `dir` itself), with their paths.
fn under<'t>(view: &View<'t>, dir: &str) -> Vec<(&'t str, &'t Node)> {
    let prefix = format!("{dir}/");
    view.iter()
        .filter(|(p, _)| p.starts_with(&prefix))
        .map(|(p, n)| (*p, *n))
        .collect()
}

/// Runs one trigger: its directory copied into a stage, its tool run there, and every file
/// the tool added put into `layer` at the directory's place in the image.
fn run(
    active: &Active,
    root: &ToolRoot,
    store: &Store,
    arch: &str,
    layer: &mut Tree,
) -> Result<(), TriggerError> {
    let name = active.trigger.name;
    let tool_error = |source| TriggerError::Tool {
        trigger: name,
        source,
    };
    let stage_dir = store
        .scratch_dir(&format!(
            "triggers-{}-{arch}-{}",
            std::process::id(),
            active.trigger.tool.rsplit('/').next().unwrap_or_default()
        ))
        .map_err(TriggerError::Scratch)?;
    let staged = stage(active, &stage_dir).map_err(|source| TriggerError::Stage {
        trigger: name,
        source,
    })?;
    let dir = &active.dir;
    let tool = format!("/{}", active.tool);
    let written: Vec<(String, Vec<u8>)> = match &active.trigger.writes {
        Writes::IntoDirectory => {
            root.run(stage_dir.path(), &tool, |s| Invocation {
                args: vec![s.stage_dir().display().to_string()],
                env: Vec::new(),
            })
            .map_err(tool_error)?;
            written_by_tool(&stage_dir, &staged, dir)?
        }
        Writes::IconThemeCaches => {
            let mut caches = Vec::new();
            for theme in themes(active) {
                root.run(stage_dir.path(), &tool, |s| Invocation {
                    args: vec![
                        "--force".into(),
                        "--quiet".into(),
                        s.stage_inside(&theme).display().to_string(),
                    ],
                    env: Vec::new(),
                })
                .map_err(tool_error)?;
                let cache = format!("{theme}/icon-theme.cache");
                caches.push(read_back(&stage_dir, &cache, dir)?);
            }
            caches
        }
        // As the trigger runs it, on the image's own directory (the cache names each module
        // by its path in the image).
        Writes::Prints { env, cache } => {
            let out = root
                .run(stage_dir.path(), &tool, |s| Invocation {
                    args: Vec::new(),
                    env: vec![(env.to_string(), s.inside(dir).display().to_string())],
                })
                .map_err(tool_error)?;
            vec![(format!("{dir}/{cache}"), out)]
        }
    };
    let mtime = active
        .entries
        .iter()
        .map(|(_, n)| n.mtime)
        .max()
        .unwrap_or(0);
    for (path, data) in written {
        let path = normalize(&path);
        layer.put(
            &path,
            Node {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime,
                content: data.into(),
                package: None,
            },
        );
        let mut parent = path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            layer
                .nodes
                .entry(up.to_string())
                .or_insert_with(crate::python::install::wheel_dir);
            parent = up;
        }
    }
    Ok(())
}

/// Files staged for a tool: path relative to the trigger's directory, and bytes.
type Staged<'t> = BTreeMap<&'t str, &'t Content>;

/// Copies the trigger's directory into the stage (files, links and directories, paths
/// relative to the directory). Returns the staged files.
fn stage<'t>(active: &Active<'t>, stage_dir: &ScratchDir) -> Result<Staged<'t>, BeneathError> {
    let beneath = Beneath::create(stage_dir.path())?;
    let prefix = format!("{}/", active.dir);
    let mut staged = Staged::new();
    for (path, node) in &active.entries {
        let rel = &path[prefix.len()..];
        match &node.kind {
            EntryKind::Dir => beneath.create_dir_all(rel)?,
            EntryKind::File => {
                beneath.write_file(rel, node.content.reader(), 0o644)?;
                staged.insert(rel, &node.content);
            }
            EntryKind::Symlink(target) => beneath.symlink(rel, target)?,
            _ => {}
        }
    }
    Ok(staged)
}

/// The theme directories (relative to `usr/share/icons`) that have an `index.theme`.
fn themes(active: &Active) -> Vec<String> {
    let prefix = format!("{}/", active.dir);
    active
        .entries
        .iter()
        .filter_map(|(p, n)| {
            let theme = p[prefix.len()..].strip_suffix("/index.theme")?;
            (!theme.contains('/') && n.kind == EntryKind::File).then(|| theme.to_string())
        })
        .collect()
}

/// Every file in the stage that the tool added or rewrote with other bytes (a package may
/// ship a stale cache), as image paths under `dir`, in path order.
fn written_by_tool(
    stage_dir: &ScratchDir,
    staged: &Staged,
    dir: &str,
) -> Result<Vec<(String, Vec<u8>)>, TriggerError> {
    let mut out = Vec::new();
    let mut todo = vec![String::new()];
    let io = |source: std::io::Error| TriggerError::Scratch(source);
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(stage_dir.path().join(&rel)).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                todo.push(child);
            } else if kind.is_file() {
                let (path, data) = read_back(stage_dir, &child, dir)?;
                let unchanged = match staged.get(child.as_str()) {
                    Some(content) => content.equals(&data).map_err(io)?,
                    None => false,
                };
                if !unchanged {
                    out.push((path, data));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The stage's file `rel` as an image path under `dir`, with its bytes.
fn read_back(
    stage_dir: &ScratchDir,
    rel: &str,
    dir: &str,
) -> Result<(String, Vec<u8>), TriggerError> {
    let data = std::fs::read(stage_dir.path().join(rel)).map_err(TriggerError::Scratch)?;
    Ok((format!("{dir}/{rel}"), data))
}

/// `a/b/../c` → `a/c`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{PathKind, PathSpec};

    fn spec(path: &str, source: &str) -> PathSpec {
        PathSpec {
            path: path.into(),
            kind: PathKind::File,
            owner: None,
            mode: None,
            source: Some(source.into()),
        }
    }

    #[test]
    fn recipe_files_under_a_trigger_directory_are_its_inputs_and_nothing_else_is() {
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("override"), b"[org.x]\nk=1\n").unwrap();
        std::fs::write(files.path().join("other"), b"x").unwrap();
        let paths = [
            spec(
                "/usr/share/glib-2.0/schemas/90_x.gschema.override",
                "override",
            ),
            spec("/usr/share/glib-2.0/schemas-old/x", "other"),
            spec("/usr/lib/aarch64-linux-gnu/gio/modules/x.so", "other"),
            spec("/etc/profile.d/carbon.sh", "other"),
        ];
        let tree = recipe_inputs(&paths, files.path()).unwrap();
        let got: Vec<&str> = tree.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            got,
            [
                "usr/lib/aarch64-linux-gnu/gio/modules/x.so",
                "usr/share/glib-2.0/schemas/90_x.gschema.override"
            ]
        );
        assert_eq!(
            tree.nodes["usr/share/glib-2.0/schemas/90_x.gschema.override"]
                .content
                .to_vec()
                .unwrap(),
            b"[org.x]\nk=1\n"
        );
    }

    #[test]
    fn a_recipe_file_outside_the_files_directory_is_refused() {
        let files = tempfile::tempdir().unwrap();
        let paths = [spec(
            "/usr/share/applications/x.desktop",
            "../../etc/passwd",
        )];
        let err = recipe_inputs(&paths, files.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("/usr/share/applications/x.desktop"),
            "{err}"
        );
    }

    #[test]
    fn cache_paths_leave_the_loader_directory_upwards_only_by_name() {
        assert_eq!(
            normalize("usr/lib/x/gdk-pixbuf-2.0/2.10.0/loaders/../loaders.cache"),
            "usr/lib/x/gdk-pixbuf-2.0/2.10.0/loaders.cache"
        );
    }
}
