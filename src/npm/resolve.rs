//! npm's answer for a global install, by construction: which version of each package
//! (npm-pick-manifest's rule) and where it goes in `node_modules` (arborist's placement
//! with the `shallow` strategy that `npm install --global` uses: each top-level package
//! keeps its dependencies under its own `node_modules`, hoisted as high as that allows).
//!
//! The walk follows arborist's: a queue of placed packages ordered by depth then path;
//! each package's unresolved dependencies, in name order, are given the version npm
//! would pick and placed as high as possible without breaking what is already there.
//! Optional packages whose `os`, `cpu` or `libc` do not fit the arch, and optional packages
//! the recipes leave out, are dropped afterwards with what only they pulled in — as npm
//! records them in its lock and then skips them when installing.

use super::registry::{Manifest, Packument, Registry, RegistryError, string_list};
use super::spec::{Spec, SpecError, Wanted, parse_dependency, parse_request};
use crate::digest::Digest;
use nodejs_semver::{Range, Version};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("no version of {package} matches {spec:?} (needed by {by})")]
    NoVersion {
        package: String,
        spec: String,
        by: String,
    },
    #[error("{package} (needed by {by}) is not for {target}: its {field} is {allowed}")]
    Platform {
        package: String,
        by: String,
        target: String,
        field: &'static str,
        allowed: String,
    },
    #[error("{name}@{version} needs Node.js {range}, and the image's Node.js is {node}")]
    Engine {
        name: String,
        version: String,
        range: String,
        node: String,
    },
    #[error(
        "{name}@{version} runs install scripts; declare what they do under [npm.scripts.\"{name}\"] in component {component} (they are never run)"
    )]
    UndeclaredScripts {
        name: String,
        version: String,
        component: String,
    },
    #[error("{name} is left out by the recipes (omit), but {by} needs it and not optionally")]
    OmittedRequired { name: String, by: String },
    #[error("cannot place {name}@{version} for {by}: {location} already holds {existing}")]
    Conflict {
        name: String,
        version: String,
        by: String,
        location: String,
        existing: String,
    },
    #[error("{name}@{version} has no sha512 integrity in the registry (sha1 alone is refused)")]
    NoIntegrity { name: String, version: String },
    #[error("Node.js {wanted:?}: {reason}")]
    Runtime { wanted: String, reason: String },
}

/// The arch a tree is resolved for, in npm's terms.
#[derive(Clone, Debug)]
pub struct Target {
    pub os: &'static str,
    pub cpu: &'static str,
    pub libc: &'static str,
    pub node: Version,
}

/// One component's packages.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub component: String,
    pub packages: Vec<String>,
}

/// A package in its place.
#[derive(Clone, Debug)]
pub struct Placed {
    /// Where it goes under the global `lib` directory: `node_modules/a/node_modules/b`.
    pub location: String,
    /// The registry package (differs from the directory name for `npm:` aliases).
    pub package: String,
    pub version: String,
    pub integrity: Digest,
    pub tarball: String,
    pub component: String,
    pub manifest: Arc<Manifest>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Prod,
    Optional,
    Peer,
}

#[derive(Clone, Debug)]
struct Edge {
    spec: Spec,
    kind: Kind,
}

struct Node {
    location: String,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// `None` for the root (the global `lib` directory).
    manifest: Option<Arc<Manifest>>,
    component: String,
    edges: Vec<Edge>,
    /// The component each root edge came from (root only).
    edge_components: BTreeMap<String, String>,
}

const ROOT: usize = 0;

/// The versions an earlier lock pinned, by registry package: chosen again wherever they
/// still satisfy what asks for them, as npm keeps `package-lock.json`'s pins. A package
/// being updated is left out, so it resolves freely.
#[derive(Clone, Debug, Default)]
pub struct Kept(BTreeMap<String, Vec<String>>);

impl Kept {
    pub fn new(pins: impl IntoIterator<Item = (String, String)>) -> Kept {
        let mut kept = Kept::default();
        for (package, version) in pins {
            kept.0.entry(package).or_default().push(version);
        }
        kept
    }

    /// The highest kept version of the packument's package that `wanted` allows (any kept
    /// version for a tag: a tag that moved does not move a pin).
    fn choose(&self, packument: &Packument, wanted: &Wanted) -> Option<Manifest> {
        self.0
            .get(&packument.name)?
            .iter()
            .filter_map(|s| Version::parse(s).ok().map(|v| (v, s)))
            .filter(|(v, _)| match wanted {
                Wanted::Range(range) => range.satisfies(v),
                Wanted::Tag(_) => true,
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .and_then(|(_, s)| packument.manifest(s))
    }
}

/// Picks a version: a kept pin that `wanted` allows; otherwise as npm-pick-manifest does,
/// the `latest` tag when it satisfies the range (and is neither deprecated nor refused by
/// its engines), else the highest version in the range, preferring versions that are not
/// deprecated and whose engines accept `node`.
pub fn pick(
    packument: &Packument,
    wanted: &Wanted,
    node: &Version,
    kept: &Kept,
) -> Option<Manifest> {
    if let Some(m) = kept.choose(packument, wanted) {
        return Some(m);
    }
    let engine_ok = |m: &Manifest| {
        m.node_engine()
            .and_then(|r| Range::parse(r).ok())
            .is_none_or(|r| r.satisfies(node))
    };
    let range = match wanted {
        Wanted::Tag(tag) => {
            return packument
                .dist_tags
                .get(tag)
                .and_then(|v| packument.manifest(v));
        }
        Wanted::Range(range) => range,
    };
    if let Some(latest) = packument
        .dist_tags
        .get("latest")
        .filter(|v| Version::parse(v).is_ok_and(|v| range.satisfies(&v)))
        .and_then(|v| packument.manifest(v))
        && engine_ok(&latest)
        && !latest.is_deprecated()
    {
        return Some(latest);
    }
    packument
        .versions()
        .filter_map(|s| Version::parse(s).ok().map(|v| (v, s)))
        .filter(|(v, _)| range.satisfies(v))
        .filter_map(|(v, s)| packument.manifest(s).map(|m| (v, m)))
        .max_by(|(va, a), (vb, b)| {
            let key = |m: &Manifest| {
                let (engine, fresh) = (engine_ok(m), !m.is_deprecated());
                (engine && fresh, engine, fresh)
            };
            key(a).cmp(&key(b)).then(va.cmp(vb))
        })
        .map(|(_, m)| m)
}

/// Whether `value` passes an `os`/`cpu`/`libc` list (`!x` excludes x; an empty list
/// allows everything), as npm-install-checks decides.
fn allowed(value: &str, list: &[String]) -> bool {
    if list.is_empty() {
        return true;
    }
    if list.iter().any(|e| e.strip_prefix('!') == Some(value)) {
        return false;
    }
    let positives: Vec<&String> = list.iter().filter(|e| !e.starts_with('!')).collect();
    positives.is_empty() || positives.iter().any(|e| *e == value)
}

/// The first platform field of `m` that rules out `target`, with its list.
fn platform_misfit(m: &Manifest, target: &Target) -> Option<(&'static str, Vec<String>)> {
    let os = string_list(&m.os);
    let cpu = string_list(&m.cpu);
    let libc = string_list(&m.libc);
    if !allowed(target.os, &os) {
        return Some(("os", os));
    }
    if !allowed(target.cpu, &cpu) {
        return Some(("cpu", cpu));
    }
    if !allowed(target.libc, &libc) {
        return Some(("libc", libc));
    }
    None
}

fn satisfies(m: &Manifest, spec: &Spec, packument_tags: Option<&BTreeMap<String, String>>) -> bool {
    if m.name != spec.package {
        return false;
    }
    match &spec.wanted {
        Wanted::Range(r) => Version::parse(&m.version).is_ok_and(|v| r.satisfies(&v)),
        Wanted::Tag(t) => packument_tags.and_then(|tags| tags.get(t)) == Some(&m.version),
    }
}

struct Tree<'r, 'f> {
    registry: &'r Registry<'f>,
    target: &'r Target,
    nodes: Vec<Node>,
}

impl Tree<'_, '_> {
    fn depth(&self, i: usize) -> usize {
        self.nodes[i].location.matches("node_modules").count()
    }

    /// The node an edge named `name` from `from` reaches (Node's module resolution).
    fn resolve(&self, from: usize, name: &str) -> Option<usize> {
        let mut at = Some(from);
        while let Some(i) = at {
            if let Some(&c) = self.nodes[i].children.get(name) {
                return Some(c);
            }
            at = self.nodes[i].parent;
        }
        None
    }

    fn node_satisfies(&self, node: usize, spec: &Spec) -> bool {
        let Some(m) = &self.nodes[node].manifest else {
            return false;
        };
        let packument = match &spec.wanted {
            Wanted::Tag(_) => self.registry.packument(&spec.package).ok(),
            Wanted::Range(_) => None,
        };
        satisfies(m, spec, packument.as_ref().map(|p| &p.dist_tags))
    }

    fn is_descendant(&self, node: usize, of: usize) -> bool {
        let mut at = Some(node);
        while let Some(i) = at {
            if i == of {
                return true;
            }
            at = self.nodes[i].parent;
        }
        false
    }

    /// Whether putting `new` at `target` (which holds no `name`) would take the place of
    /// what some package below `target` (or `target` itself) relies on.
    fn shadows(&self, target: usize, from: usize, name: &str, new: &Manifest) -> bool {
        if target == from {
            return false;
        }
        let ok = |spec: &Spec| satisfies(new, spec, None) || matches!(spec.wanted, Wanted::Tag(_));
        if let Some(e) = self.nodes[target]
            .edges
            .iter()
            .find(|e| e.spec.name == name)
            && !ok(&e.spec)
        {
            return true;
        }
        let Some(current) = self.nodes[target]
            .parent
            .and_then(|p| self.resolve(p, name))
        else {
            return false;
        };
        (0..self.nodes.len())
            .filter(|&d| d != target && self.is_descendant(d, target))
            .flat_map(|d| self.nodes[d].edges.iter().map(move |e| (d, e)))
            .filter(|(d, e)| e.spec.name == name && self.resolve(*d, name) == Some(current))
            .any(|(_, e)| self.node_satisfies(current, &e.spec) && !ok(&e.spec))
    }

    fn label(&self, i: usize) -> String {
        match &self.nodes[i].manifest {
            Some(m) => format!("{}@{}", m.name, m.version),
            None => format!("component {}", self.nodes[i].component),
        }
    }

    /// Places `manifest` for `edge` of `from`; the node now satisfying the edge.
    fn place(
        &mut self,
        from: usize,
        edge: &Edge,
        manifest: &Manifest,
        component: &str,
    ) -> Result<usize, ResolveError> {
        let name = &edge.spec.name;
        let start = match edge.kind {
            Kind::Peer => self.nodes[from].parent.unwrap_or(from),
            _ => from,
        };
        let mut chosen: Option<Result<usize, usize>> = None; // Ok(existing) | Err(target)
        let mut conflict = None;
        let mut t = start;
        loop {
            match self.nodes[t].children.get(name) {
                Some(&existing) => {
                    if self.nodes[existing]
                        .manifest
                        .as_ref()
                        .is_some_and(|m| m.version == manifest.version && m.name == manifest.name)
                    {
                        chosen = Some(Ok(existing));
                    } else {
                        conflict = Some(existing);
                    }
                    break;
                }
                None => {
                    if self.shadows(t, from, name, manifest) {
                        break;
                    }
                    chosen = Some(Err(t));
                }
            }
            // `shallow`: nothing but the requested packages goes to the top.
            if t == ROOT || self.nodes[t].parent == Some(ROOT) {
                break;
            }
            t = self.nodes[t].parent.expect("only the root has no parent");
        }
        match chosen {
            Some(Ok(existing)) => Ok(existing),
            Some(Err(target)) => Ok(self.add(target, manifest, component, name)),
            None => {
                let existing = conflict.map(|c| self.label(c)).unwrap_or_default();
                Err(ResolveError::Conflict {
                    name: name.clone(),
                    version: manifest.version.clone(),
                    by: self.label(from),
                    location: self.nodes[start].location.clone(),
                    existing,
                })
            }
        }
    }

    fn add(&mut self, parent: usize, manifest: &Manifest, component: &str, name: &str) -> usize {
        let location = if parent == ROOT {
            format!("node_modules/{name}")
        } else {
            format!("{}/node_modules/{name}", self.nodes[parent].location)
        };
        let bundled: BTreeSet<String> = manifest.bundled().into_iter().collect();
        let mut edges: BTreeMap<String, Edge> = BTreeMap::new();
        let mut add_edges = |deps: &BTreeMap<String, String>, kind: Kind| {
            for (dep, spec) in deps {
                if bundled.contains(dep) {
                    continue;
                }
                if kind == Kind::Peer
                    && manifest
                        .peer_dependencies_meta
                        .get(dep)
                        .is_some_and(|m| m.optional)
                {
                    continue;
                }
                // A spec npm cannot take from the registry makes the package unusable;
                // it is reported when the edge is followed.
                let spec = parse_dependency(dep, spec).unwrap_or_else(|_| Spec {
                    name: dep.clone(),
                    package: dep.clone(),
                    wanted: Wanted::Tag(format!("unsupported spec {spec:?}")),
                    raw: spec.clone(),
                });
                edges.insert(dep.clone(), Edge { spec, kind });
            }
        };
        add_edges(&manifest.peer_dependencies, Kind::Peer);
        add_edges(&manifest.dependencies, Kind::Prod);
        add_edges(&manifest.optional_dependencies, Kind::Optional);
        let i = self.nodes.len();
        self.nodes.push(Node {
            location,
            parent: Some(parent),
            children: BTreeMap::new(),
            manifest: Some(Arc::new(manifest.clone())),
            component: component.to_string(),
            edges: edges.into_values().collect(),
            edge_components: BTreeMap::new(),
        });
        self.nodes[parent].children.insert(name.to_string(), i);
        i
    }

    /// Fetches the packuments of `specs` in parallel (errors surface when used).
    fn prefetch<'s>(&self, specs: impl Iterator<Item = &'s Spec>) {
        let names: BTreeSet<&str> = specs.map(|s| s.package.as_str()).collect();
        names.into_par_iter().for_each(|n| {
            let _ = self.registry.packument(n);
        });
    }
}

/// Resolves the requests of an image's components for one target. `omit`: packages the
/// recipes leave out (they must only be wanted optionally); `kept`: an earlier lock's pins.
pub fn resolve(
    registry: &Registry,
    target: &Target,
    requests: &[Request],
    omit: &BTreeSet<String>,
    kept: &Kept,
) -> Result<Vec<Placed>, ResolveError> {
    let mut root = Node {
        location: String::new(),
        parent: None,
        children: BTreeMap::new(),
        manifest: None,
        component: String::new(),
        edges: Vec::new(),
        edge_components: BTreeMap::new(),
    };
    let mut by_name: BTreeMap<String, Edge> = BTreeMap::new();
    for request in requests {
        for p in &request.packages {
            let spec = parse_request(p)?;
            if by_name.contains_key(&spec.name) {
                continue;
            }
            root.edge_components
                .insert(spec.name.clone(), request.component.clone());
            by_name.insert(
                spec.name.clone(),
                Edge {
                    spec,
                    kind: Kind::Prod,
                },
            );
        }
    }
    root.edges = by_name.into_values().collect();
    let mut tree = Tree {
        registry,
        target,
        nodes: vec![root],
    };
    let mut queue = vec![ROOT];
    while !queue.is_empty() {
        queue.sort_by(|&a, &b| {
            (tree.depth(a), &tree.nodes[a].location).cmp(&(tree.depth(b), &tree.nodes[b].location))
        });
        let from = queue.remove(0);
        let edges = tree.nodes[from].edges.clone();
        tree.prefetch(edges.iter().map(|e| &e.spec));
        for edge in &edges {
            if tree
                .resolve(from, &edge.spec.name)
                .is_some_and(|n| tree.node_satisfies(n, &edge.spec))
            {
                continue;
            }
            if omit.contains(&edge.spec.name) {
                continue;
            }
            let by = tree.label(from);
            let packument = match registry.packument(&edge.spec.package) {
                Ok(p) => p,
                Err(_) if edge.kind == Kind::Optional => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(manifest) = pick(&packument, &edge.spec.wanted, &target.node, kept) else {
                if edge.kind == Kind::Optional {
                    continue;
                }
                return Err(ResolveError::NoVersion {
                    package: edge.spec.package.clone(),
                    spec: edge.spec.raw.clone(),
                    by,
                });
            };
            let component = match from {
                ROOT => tree.nodes[ROOT].edge_components[&edge.spec.name].clone(),
                _ => tree.nodes[from].component.clone(),
            };
            let before = tree.nodes.len();
            let placed = tree.place(from, edge, &manifest, &component)?;
            if placed >= before {
                queue.push(placed);
            }
        }
    }
    prune(&tree, omit)
}

/// The installed set: every package reachable from the requests through edges that are
/// not dropped (an optional package that does not fit the target or is omitted), with
/// engines, scripts and integrity checked.
fn prune(tree: &Tree, omit: &BTreeSet<String>) -> Result<Vec<Placed>, ResolveError> {
    let target = tree.target;
    let mut keep = vec![false; tree.nodes.len()];
    let mut stack = vec![ROOT];
    keep[ROOT] = true;
    while let Some(i) = stack.pop() {
        for edge in &tree.nodes[i].edges {
            let Some(n) = tree.resolve(i, &edge.spec.name) else {
                // Unplaced: left out by the recipes, or optional and unavailable.
                if edge.kind != Kind::Optional && omit.contains(&edge.spec.name) {
                    return Err(ResolveError::OmittedRequired {
                        name: edge.spec.name.clone(),
                        by: tree.label(i),
                    });
                }
                continue;
            };
            let m = tree.nodes[n].manifest.as_ref().expect("not the root");
            let dropped = if omit.contains(&edge.spec.name) {
                Some(None)
            } else {
                platform_misfit(m, target).map(Some)
            };
            match (dropped, edge.kind) {
                (None, _) => {}
                (Some(_), Kind::Optional) => continue,
                (Some(None), _) => {
                    return Err(ResolveError::OmittedRequired {
                        name: edge.spec.name.clone(),
                        by: tree.label(i),
                    });
                }
                (Some(Some((field, allowed))), _) => {
                    return Err(ResolveError::Platform {
                        package: format!("{}@{}", m.name, m.version),
                        by: tree.label(i),
                        target: format!("{}-{} ({})", target.os, target.cpu, target.libc),
                        field,
                        allowed: format!("{allowed:?}"),
                    });
                }
            }
            if !keep[n] {
                keep[n] = true;
                stack.push(n);
            }
        }
    }
    let mut out = Vec::new();
    for (_, node) in tree
        .nodes
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| keep[*i])
    {
        let m = node.manifest.clone().expect("not the root");
        if let Some(range) = m.node_engine()
            && Range::parse(range).is_ok_and(|r| !r.satisfies(&target.node))
        {
            return Err(ResolveError::Engine {
                name: m.name.clone(),
                version: m.version.clone(),
                range: range.to_string(),
                node: target.node.to_string(),
            });
        }
        let integrity = integrity_of(&m)?;
        out.push(Placed {
            location: node.location.clone(),
            package: m.name.clone(),
            version: m.version.clone(),
            integrity,
            tarball: m.dist.tarball.clone(),
            component: node.component.clone(),
            manifest: m,
        });
    }
    out.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(out)
}

/// A package's sha512, from its `integrity` (a package offering only sha1 is refused).
pub fn integrity_of(m: &Manifest) -> Result<Digest, ResolveError> {
    m.dist
        .integrity
        .as_deref()
        .and_then(|s| Digest::from_sri(s).ok())
        .ok_or_else(|| ResolveError::NoIntegrity {
            name: m.name.clone(),
            version: m.version.clone(),
        })
}

/// The Node.js runtime for `wanted` (a major version): the kept build while it is of that
/// major, else the newest build of that major in the registry's official builds for the
/// arch.
pub fn runtime(packument: &Packument, wanted: &str, kept: &Kept) -> Result<Manifest, ResolveError> {
    let bad = |reason: String| ResolveError::Runtime {
        wanted: wanted.to_string(),
        reason,
    };
    let major: u64 = wanted
        .parse()
        .map_err(|_| bad("expected a major version such as \"24\"".into()))?;
    let of_major = Range::parse(format!("{major}.x")).expect("a major is a range");
    if let Some(m) = kept.choose(packument, &Wanted::Range(of_major)) {
        return Ok(m);
    }
    packument
        .versions()
        .filter_map(|s| Version::parse(s).ok().map(|v| (v, s)))
        .filter(|(v, _)| v.major() == major && !v.is_prerelease())
        .max_by(|a, b| a.0.cmp(&b.0))
        .and_then(|(_, s)| packument.manifest(s))
        .ok_or_else(|| bad(format!("{} has no {major}.x build", packument.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Fetcher;
    use serde_json::{Value, json};

    /// A registry in a directory: one packument file per package.
    struct Fixture(tempfile::TempDir);

    impl Fixture {
        fn new() -> Fixture {
            Fixture(tempfile::tempdir().unwrap())
        }

        fn url(&self) -> String {
            format!("file://{}", self.0.path().display())
        }

        /// `versions`: (version, extra manifest fields); `latest` is the highest listed.
        fn publish(&self, name: &str, versions: &[(&str, Value)]) {
            let mut map = serde_json::Map::new();
            for (v, extra) in versions {
                let mut m = json!({
                    "name": name,
                    "version": v,
                    "dist": {
                        "tarball": format!("{}/{name}/-/x-{v}.tgz", self.url()),
                        "integrity": format!("sha512-{}", "A".repeat(86) + "=="),
                    }
                });
                for (k, val) in extra.as_object().unwrap() {
                    m[k] = val.clone();
                }
                map.insert(v.to_string(), m);
            }
            let latest = versions.last().unwrap().0;
            let doc = json!({"name": name, "dist-tags": {"latest": latest}, "versions": map});
            let file = self.0.path().join(name.replacen('/', "%2f", 1));
            std::fs::write(file, doc.to_string()).unwrap();
        }

        fn resolve(
            &self,
            packages: &[&str],
            cpu: &'static str,
        ) -> Result<Vec<(String, String)>, ResolveError> {
            self.resolve_keeping(packages, cpu, &Kept::default())
        }

        fn resolve_keeping(
            &self,
            packages: &[&str],
            cpu: &'static str,
            kept: &Kept,
        ) -> Result<Vec<(String, String)>, ResolveError> {
            let fetcher = Fetcher::new(false);
            let registry = Registry::new(&fetcher, vec![self.url()]);
            let target = Target {
                os: "linux",
                cpu,
                libc: "glibc",
                node: Version::parse("24.1.0").unwrap(),
            };
            let request = Request {
                component: "c".into(),
                packages: packages.iter().map(|s| s.to_string()).collect(),
            };
            let omit = ["left-out".to_string()].into();
            Ok(resolve(&registry, &target, &[request], &omit, kept)?
                .into_iter()
                .map(|p| (p.location, p.version))
                .collect())
        }
    }

    fn placed(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn dependencies_stay_under_their_top_level_package_hoisted_as_high_as_they_fit() {
        let f = Fixture::new();
        f.publish(
            "a",
            &[("1.0.0", json!({"dependencies": {"b": "^1", "c": "^1"}}))],
        );
        f.publish(
            "b",
            &[
                ("1.0.0", json!({})),
                ("1.2.0", json!({})),
                ("2.0.0", json!({})),
            ],
        );
        f.publish("c", &[("1.0.0", json!({"dependencies": {"b": "^2"}}))]);
        f.publish("d", &[("1.0.0", json!({"dependencies": {"b": "^1"}}))]);
        let got = f.resolve(&["a", "d"], "x64").unwrap();
        assert_eq!(
            got,
            placed(&[
                ("node_modules/a", "1.0.0"),
                ("node_modules/a/node_modules/b", "1.2.0"),
                ("node_modules/a/node_modules/c", "1.0.0"),
                ("node_modules/a/node_modules/c/node_modules/b", "2.0.0"),
                ("node_modules/d", "1.0.0"),
                ("node_modules/d/node_modules/b", "1.2.0"),
            ])
        );
    }

    #[test]
    fn optional_packages_for_other_platforms_are_dropped_and_required_ones_refused() {
        let f = Fixture::new();
        f.publish(
            "tool",
            &[(
                "1.0.0",
                json!({"optionalDependencies": {
                    "tool-linux-x64": "1.0.0", "tool-linux-arm64": "1.0.0",
                    "tool-linux-x64-musl": "1.0.0", "tool-win32-x64": "1.0.0",
                    "left-out": "1.0.0", "missing-everywhere": "1.0.0"}}),
            )],
        );
        f.publish(
            "tool-linux-x64",
            &[(
                "1.0.0",
                json!({"os": ["linux"], "cpu": ["x64"], "libc": ["glibc"]}),
            )],
        );
        f.publish(
            "tool-linux-arm64",
            &[("1.0.0", json!({"os": "linux", "cpu": "arm64"}))],
        );
        f.publish(
            "tool-linux-x64-musl",
            &[(
                "1.0.0",
                json!({"os": ["linux"], "cpu": ["x64"], "libc": ["musl"]}),
            )],
        );
        f.publish(
            "tool-win32-x64",
            &[("1.0.0", json!({"os": ["win32"], "cpu": ["x64"]}))],
        );
        f.publish("left-out", &[("1.0.0", json!({"hasInstallScript": true}))]);
        let got = f.resolve(&["tool"], "arm64").unwrap();
        assert_eq!(
            got,
            placed(&[
                ("node_modules/tool", "1.0.0"),
                ("node_modules/tool/node_modules/tool-linux-arm64", "1.0.0"),
            ])
        );
        f.publish(
            "needs-win",
            &[("1.0.0", json!({"dependencies": {"tool-win32-x64": "1"}}))],
        );
        let err = f.resolve(&["needs-win"], "x64").unwrap_err().to_string();
        assert!(
            err.contains("is not for linux-x64 (glibc): its os is [\"win32\"]"),
            "{err}"
        );
        f.publish(
            "needs-left-out",
            &[("1.0.0", json!({"dependencies": {"left-out": "1"}}))],
        );
        let err = f
            .resolve(&["needs-left-out"], "x64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("left out by the recipes"), "{err}");
    }

    #[test]
    fn versions_are_picked_as_npm_picks_them() {
        let f = Fixture::new();
        // `latest` (1.0.0, listed last) wins when the range allows it, even over higher
        // versions; otherwise the highest version that is neither deprecated nor refusing
        // this Node, and never a prerelease the range does not name.
        f.publish(
            "p",
            &[
                ("1.1.0", json!({})),
                ("1.2.0", json!({"engines": {"node": ">=26"}})),
                ("1.3.0", json!({"deprecated": "broken"})),
                ("2.0.0-rc.1", json!({})),
                ("1.0.0", json!({})),
            ],
        );
        assert_eq!(
            f.resolve(&["p@^1"], "x64").unwrap(),
            placed(&[("node_modules/p", "1.0.0")])
        );
        assert_eq!(
            f.resolve(&["p@>=1.1"], "x64").unwrap(),
            placed(&[("node_modules/p", "1.1.0")])
        );
        assert_eq!(
            f.resolve(&["p@latest"], "x64").unwrap(),
            placed(&[("node_modules/p", "1.0.0")])
        );
        // The only version in range refuses this Node: an error, not a silent install.
        let err = f.resolve(&["p@~1.2"], "x64").unwrap_err().to_string();
        assert!(err.contains("needs Node.js >=26"), "{err}");
        assert!(f.resolve(&["p@^3"], "x64").is_err());
        // An alias installs another package under its own name.
        f.publish(
            "q",
            &[("1.0.0", json!({"dependencies": {"p-one": "npm:p@1.0.0"}}))],
        );
        assert_eq!(
            f.resolve(&["q"], "x64").unwrap(),
            placed(&[
                ("node_modules/q", "1.0.0"),
                ("node_modules/q/node_modules/p-one", "1.0.0")
            ])
        );
    }

    #[test]
    fn peers_are_installed_beside_the_package_and_bundled_ones_not_at_all() {
        let f = Fixture::new();
        f.publish(
            "app",
            &[("1.0.0", json!({"dependencies": {"plugin": "1"}}))],
        );
        f.publish(
            "plugin",
            &[(
                "1.0.0",
                json!({"peerDependencies": {"host": "^2", "opt": "1"},
                               "peerDependenciesMeta": {"opt": {"optional": true}}}),
            )],
        );
        f.publish("host", &[("2.0.0", json!({}))]);
        f.publish(
            "bundler",
            &[(
                "1.0.0",
                json!({"dependencies": {"inside": "1"}, "bundleDependencies": ["inside"]}),
            )],
        );
        assert_eq!(
            f.resolve(&["app", "bundler"], "x64").unwrap(),
            placed(&[
                ("node_modules/app", "1.0.0"),
                ("node_modules/app/node_modules/host", "2.0.0"),
                ("node_modules/app/node_modules/plugin", "1.0.0"),
                ("node_modules/bundler", "1.0.0"),
            ])
        );
    }

    #[test]
    fn kept_versions_are_chosen_while_they_satisfy_what_asks_for_them() {
        let f = Fixture::new();
        f.publish("a", &[("1.0.0", json!({"dependencies": {"b": "^1"}}))]);
        f.publish(
            "b",
            &[
                ("1.0.0", json!({})),
                ("1.1.0", json!({})),
                ("1.2.0", json!({})),
            ],
        );
        f.publish("t", &[("1.0.0", json!({})), ("2.0.0", json!({}))]);
        let kept = |pins: &[(&str, &str)]| {
            Kept::new(pins.iter().map(|(p, v)| (p.to_string(), v.to_string())))
        };
        // b's pin holds in ^1; t's pin holds for the `latest` tag, which moved to 2.0.0.
        let got = f
            .resolve_keeping(&["a", "t"], "x64", &kept(&[("b", "1.1.0"), ("t", "1.0.0")]))
            .unwrap();
        assert_eq!(
            got,
            placed(&[
                ("node_modules/a", "1.0.0"),
                ("node_modules/a/node_modules/b", "1.1.0"),
                ("node_modules/t", "1.0.0"),
            ])
        );
        // A pin the range no longer allows is not taken: the highest in range is.
        let got = f
            .resolve_keeping(&["a", "t@^2"], "x64", &kept(&[("t", "1.0.0")]))
            .unwrap();
        assert_eq!(got[2], ("node_modules/t".to_string(), "2.0.0".to_string()));
        assert_eq!(got[1].1, "1.2.0");
    }
}
