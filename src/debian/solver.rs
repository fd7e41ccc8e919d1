//! Chooses the exact set of Debian packages an image installs, the way
//! `apt-get install --no-install-recommends` would on the same index.
//!
//! The walk is apt's: every requested package is marked first; then, depth-first from
//! each request in order, a dependency group is left alone when something already chosen
//! satisfies it, otherwise its alternatives are tried in order (the real package first,
//! then providers by priority and name), skipping any choice that conflicts with what is
//! already chosen. Only candidates (the newest version in the merged suites) are
//! considered, as apt does. The result is deterministic: no decision depends on hash-map
//! order. A change to these rules bumps `recipe::plan::RESOLVER_RULES`, which makes every
//! lock stale.

use super::packages::{BinaryPackage, MultiArch, PackageIndex};
use super::relation::{self, ArchQualifier, Group, Relation, RelationError};
use super::version::Version;
use std::collections::HashMap;
use std::fmt::Write as _;

/// What one component asks for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub component: String,
    /// Relations as written in the recipe (`name` or `name (op version)`), in order.
    pub packages: Vec<String>,
    /// Also install every `Essential: yes` and `Priority: required` package.
    pub essential: bool,
    /// Also install `Recommends` of the packages this component brings in.
    pub recommends: bool,
}

/// Why a package is in the result: the first thing that needed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Requested,
    Essential,
    Depends { parent: String, relation: String },
    Recommends { parent: String, relation: String },
}

/// One chosen package.
#[derive(Clone, Debug)]
pub struct Selected {
    pub package: BinaryPackage,
    pub component: String,
    pub reason: Reason,
}

/// Why resolution failed, in words a recipe author can act on.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("component {component}: package {name:?} is not in the index for {arch}{hint}")]
    UnknownPackage {
        component: String,
        name: String,
        arch: String,
        hint: String,
    },
    #[error("cannot satisfy `{group}`, needed by {chain} ({arch}):\n{explanation}")]
    Unsatisfiable {
        group: String,
        chain: String,
        arch: String,
        explanation: String,
    },
    #[error("{0}")]
    Conflict(Box<ConflictReport>),
    #[error(
        "{needed_by} needs {name} {wanted}, but {name} {chosen} (pinned) was already chosen; update {name} too"
    )]
    AlreadyChosen {
        name: String,
        wanted: String,
        chosen: String,
        needed_by: String,
    },
    #[error("component {component}: {error} in {field} of {package}")]
    BadRelation {
        component: String,
        package: String,
        field: &'static str,
        error: RelationError,
    },
}

/// Two chosen packages that cannot be installed together, and why each was chosen.
#[derive(Debug, thiserror::Error)]
#[error("{a} {kind} {relation} ({arch}), but both are needed:\n  {a}: {why_a}\n  {b}: {why_b}")]
pub struct ConflictReport {
    pub a: String,
    pub b: String,
    pub kind: &'static str,
    pub relation: String,
    pub arch: String,
    pub why_a: String,
    pub why_b: String,
}

struct ConflictRule {
    owner: usize,
    kind: &'static str,
    relation: Relation,
}

struct Solver<'i> {
    index: &'i PackageIndex,
    arch: &'i str,
    /// Every candidate providing a name, with the provided version; sorted for determinism.
    providers: HashMap<String, Vec<(&'i BinaryPackage, Option<Version>)>>,
    selected: Vec<Selected>,
    /// The chosen packages as borrowed from the index, parallel to `selected`.
    chosen: Vec<&'i BinaryPackage>,
    by_name: HashMap<String, usize>,
    provided: HashMap<String, Vec<(usize, Option<Version>)>>,
    conflict_rules: Vec<ConflictRule>,
}

/// Resolves the requests as `apt-get install` does with them on one command line: every
/// requested package is marked first, then the dependencies of each are resolved in
/// request order, so a package requested later already satisfies an earlier package's
/// alternatives (`xterm` for `gnome-terminal | x-terminal-emulator`). A package belongs to
/// the first component, in layer order, whose requests reach it. The result is sorted by
/// package name.
pub fn resolve(
    index: &PackageIndex,
    arch: &str,
    requests: &[Request],
) -> Result<Vec<Selected>, ResolveError> {
    let mut solver = Solver::new(index, arch);
    let mut marked: Vec<(usize, &Request)> = Vec::new();
    for request in requests {
        for text in &request.packages {
            let relation = request_relation(request, text)?;
            if solver.satisfied(&relation) {
                continue;
            }
            let choice = solver
                .choose(std::slice::from_ref(&relation))
                .map_err(|explanation| solver.unchosen(request, &relation, explanation))?;
            marked.push((solver.mark(choice, request, Reason::Requested)?, request));
        }
        if request.essential {
            let mut essential: Vec<&BinaryPackage> = index
                .iter()
                .filter(|p| p.essential || p.priority == super::packages::Priority::Required)
                .collect();
            essential.sort_by(|a, b| a.name.cmp(&b.name));
            for package in essential {
                if !solver.by_name.contains_key(&package.name) {
                    marked.push((solver.mark(package, request, Reason::Essential)?, request));
                }
            }
        }
    }
    for (i, request) in marked {
        solver.install_dependencies(i, request)?;
    }
    solver.check_conflicts()?;
    solver.attribute(requests);
    let mut selected = solver.selected;
    selected.sort_by(|a, b| a.package.name.cmp(&b.package.name));
    Ok(selected)
}

fn request_relation(request: &Request, text: &str) -> Result<Relation, ResolveError> {
    relation::parse_relation(text).map_err(|error| ResolveError::BadRelation {
        component: request.component.clone(),
        package: text.to_string(),
        field: "debian.packages",
        error,
    })
}

impl<'i> Solver<'i> {
    fn new(index: &'i PackageIndex, arch: &'i str) -> Self {
        let mut providers: HashMap<String, Vec<(&'i BinaryPackage, Option<Version>)>> =
            HashMap::new();
        for package in index.iter() {
            if package.provides.is_empty() {
                continue;
            }
            // A malformed Provides in the archive only makes that package unusable as a provider.
            let Ok(groups) = relation::parse_field(&package.provides) else {
                continue;
            };
            for relation in groups.into_iter().flatten() {
                let version = relation.constraint.map(|(_, v)| v);
                providers
                    .entry(relation.name)
                    .or_default()
                    .push((package, version));
            }
        }
        for list in providers.values_mut() {
            list.sort_by(|a, b| {
                a.0.priority
                    .cmp(&b.0.priority)
                    .then_with(|| a.0.name.cmp(&b.0.name))
            });
        }
        Solver {
            index,
            arch,
            providers,
            selected: Vec::new(),
            chosen: Vec::new(),
            by_name: HashMap::new(),
            provided: HashMap::new(),
            conflict_rules: Vec::new(),
        }
    }

    /// Why a request could not be chosen: an unknown name, or what refused each option.
    fn unchosen(
        &self,
        request: &Request,
        relation: &Relation,
        explanation: String,
    ) -> ResolveError {
        if self.index.candidate(&relation.name).is_none()
            && !self.providers.contains_key(relation.name.as_str())
        {
            ResolveError::UnknownPackage {
                component: request.component.clone(),
                name: relation.name.clone(),
                arch: self.arch.to_string(),
                hint: String::new(),
            }
        } else {
            ResolveError::Unsatisfiable {
                group: relation.to_string(),
                chain: format!("component {}", request.component),
                arch: self.arch.to_string(),
                explanation,
            }
        }
    }

    fn arch_ok(&self, relation: &Relation, package: &BinaryPackage) -> bool {
        match &relation.arch {
            ArchQualifier::None | ArchQualifier::Native => true,
            ArchQualifier::Any => {
                package.multi_arch == MultiArch::Allowed
                    || package.architecture == "all" && package.multi_arch == MultiArch::Foreign
            }
            ArchQualifier::Arch(a) => a == self.arch || package.architecture == "all",
        }
    }

    /// Whether something already chosen satisfies the relation.
    fn satisfied(&self, relation: &Relation) -> bool {
        self.satisfier(relation).is_some()
    }

    /// The chosen package that satisfies the relation: the named one, else its first
    /// chosen provider.
    fn satisfier(&self, relation: &Relation) -> Option<usize> {
        if let Some(&i) = self.by_name.get(&relation.name) {
            let package = &self.selected[i].package;
            if relation.version_matches(Some(&package.version)) && self.arch_ok(relation, package) {
                return Some(i);
            }
        }
        self.provided.get(&relation.name).and_then(|list| {
            list.iter()
                .find(|(_, v)| relation.version_matches(v.as_ref()))
                .map(|&(i, _)| i)
        })
    }

    /// The first installable alternative of a group, or why there is none.
    fn choose(&self, group: &[Relation]) -> Result<&'i BinaryPackage, String> {
        let mut explanation = String::new();
        for relation in group {
            let mut options: Vec<&'i BinaryPackage> = Vec::new();
            // The candidate, then (for a pinned name) the newer version the pin displaced:
            // `lock --update NAME` moves a pin only when a dependency needs it.
            let reals = self
                .index
                .candidate(&relation.name)
                .into_iter()
                .chain(self.index.displaced(&relation.name));
            for real in reals {
                if !relation.version_matches(Some(&real.version)) {
                    let _ = writeln!(
                        explanation,
                        "  {relation}: the candidate is {} {}",
                        real.name, real.version
                    );
                } else if !self.arch_ok(relation, real) {
                    let _ = writeln!(
                        explanation,
                        "  {relation}: {} is not Multi-Arch: allowed",
                        real.name
                    );
                } else {
                    options.push(real);
                    break;
                }
            }
            if let Some(list) = self.providers.get(relation.name.as_str()) {
                for (package, version) in list {
                    if relation.version_matches(version.as_ref()) {
                        options.push(package);
                    } else if relation.constraint.is_some()
                        && self.index.candidate(&relation.name).is_none()
                    {
                        let _ = writeln!(
                            explanation,
                            "  {relation}: provided by {} without a matching version",
                            package.name
                        );
                    }
                }
            }
            if options.is_empty()
                && self.index.candidate(&relation.name).is_none()
                && !self.providers.contains_key(relation.name.as_str())
            {
                let _ = writeln!(
                    explanation,
                    "  {relation}: no package has this name or provides it"
                );
            }
            for option in options {
                match self.conflict_with_selected(option) {
                    None => return Ok(option),
                    Some(why) => {
                        let _ = writeln!(
                            explanation,
                            "  {relation}: {} {} {why}",
                            option.name, option.version
                        );
                    }
                }
            }
        }
        Err(explanation.trim_end().to_string())
    }

    /// Whether installing `package` would conflict with a chosen package, and how.
    fn conflict_with_selected(&self, package: &BinaryPackage) -> Option<String> {
        if self.by_name.contains_key(&package.name) {
            return None;
        }
        for rule in &self.conflict_rules {
            if self.relation_hits(&rule.relation, package) {
                let owner = &self.selected[rule.owner].package;
                return Some(format!(
                    "is refused by {} ({}: {})",
                    owner.name, rule.kind, rule.relation
                ));
            }
        }
        for (kind, field) in [
            ("Conflicts", &package.conflicts),
            ("Breaks", &package.breaks),
        ] {
            for relation in relation::parse_field(field)
                .unwrap_or_default()
                .into_iter()
                .flatten()
            {
                if let Some(&i) = self.by_name.get(&relation.name)
                    && relation.version_matches(Some(&self.selected[i].package.version))
                {
                    return Some(format!("{kind} {relation}, which is already chosen"));
                }
                if relation.constraint.is_none()
                    && let Some(list) = self.provided.get(&relation.name)
                    && let Some((i, _)) = list
                        .iter()
                        .find(|(i, _)| self.selected[*i].package.name != package.name)
                {
                    return Some(format!(
                        "{kind} {relation}, provided by chosen {}",
                        self.selected[*i].package.name
                    ));
                }
            }
        }
        None
    }

    /// Whether a Conflicts/Breaks relation hits a package (by name or, unversioned, by what it provides).
    fn relation_hits(&self, relation: &Relation, package: &BinaryPackage) -> bool {
        if relation.name == package.name {
            return relation.version_matches(Some(&package.version));
        }
        relation.constraint.is_none()
            && relation::parse_field(&package.provides)
                .unwrap_or_default()
                .iter()
                .flatten()
                .any(|p| p.name == relation.name)
    }

    fn parse(
        &self,
        request: &Request,
        package: &BinaryPackage,
        field: &'static str,
        text: &str,
    ) -> Result<Vec<Group>, ResolveError> {
        relation::parse_field(text).map_err(|error| ResolveError::BadRelation {
            component: request.component.clone(),
            package: format!("{} {}", package.name, package.version),
            field,
            error,
        })
    }

    /// Chooses a package and then its dependencies, depth-first.
    fn install(
        &mut self,
        package: &'i BinaryPackage,
        request: &Request,
        reason: Reason,
    ) -> Result<(), ResolveError> {
        if self.by_name.contains_key(&package.name) {
            return Ok(());
        }
        let index = self.mark(package, request, reason)?;
        self.install_dependencies(index, request)
    }

    /// Chooses a package without its dependencies (apt's `MarkInstall` without
    /// auto-install): what it provides satisfies others, what it refuses is refused.
    fn mark(
        &mut self,
        package: &'i BinaryPackage,
        request: &Request,
        reason: Reason,
    ) -> Result<usize, ResolveError> {
        let index = self.selected.len();
        self.chosen.push(package);
        self.selected.push(Selected {
            package: package.clone(),
            component: request.component.clone(),
            reason,
        });
        self.by_name.insert(package.name.clone(), index);
        for relation in self
            .parse(request, package, "Provides", &package.provides)?
            .into_iter()
            .flatten()
        {
            self.provided
                .entry(relation.name)
                .or_default()
                .push((index, relation.constraint.map(|(_, v)| v)));
        }
        for (kind, field) in [
            ("Conflicts", &package.conflicts),
            ("Breaks", &package.breaks),
        ] {
            for relation in self
                .parse(request, package, kind, field)?
                .into_iter()
                .flatten()
            {
                self.conflict_rules.push(ConflictRule {
                    owner: index,
                    kind,
                    relation,
                });
            }
        }
        Ok(index)
    }

    /// The dependency groups of a package: Pre-Depends and Depends, then Recommends
    /// (marked optional) when the component asks for them.
    fn dependency_groups(
        &self,
        request: &Request,
        package: &BinaryPackage,
    ) -> Result<Vec<(Group, bool)>, ResolveError> {
        let mut groups: Vec<(Group, bool)> = Vec::new();
        for (field, text) in [
            ("Pre-Depends", &package.pre_depends),
            ("Depends", &package.depends),
        ] {
            groups.extend(
                self.parse(request, package, field, text)?
                    .into_iter()
                    .map(|g| (g, false)),
            );
        }
        if request.recommends {
            groups.extend(
                self.parse(request, package, "Recommends", &package.recommends)?
                    .into_iter()
                    .map(|g| (g, true)),
            );
        }
        Ok(groups)
    }

    /// Satisfies each dependency group of a chosen package that nothing chosen satisfies
    /// yet, with its first installable alternative.
    fn install_dependencies(
        &mut self,
        index: usize,
        request: &Request,
    ) -> Result<(), ResolveError> {
        let package = self.chosen[index];
        for (group, optional) in self.dependency_groups(request, package)? {
            if group.iter().any(|r| self.satisfied(r)) {
                continue;
            }
            let text = group
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" | ");
            match self.choose(&group) {
                Ok(choice)
                    if self
                        .by_name
                        .get(&choice.name)
                        .is_some_and(|&i| self.selected[i].package.version != choice.version) =>
                {
                    // Only possible with pins: a pinned version was chosen earlier and a
                    // dependency now needs the newer one.
                    return Err(ResolveError::AlreadyChosen {
                        name: choice.name.clone(),
                        wanted: choice.version.to_string(),
                        chosen: self.selected[self.by_name[&choice.name]]
                            .package
                            .version
                            .to_string(),
                        needed_by: format!("{} {}", package.name, package.version),
                    });
                }
                Ok(choice) => {
                    let reason = if optional {
                        Reason::Recommends {
                            parent: package.name.clone(),
                            relation: text,
                        }
                    } else {
                        Reason::Depends {
                            parent: package.name.clone(),
                            relation: text,
                        }
                    };
                    self.install(choice, request, reason)?;
                }
                Err(_) if optional => {}
                Err(explanation) => {
                    return Err(ResolveError::Unsatisfiable {
                        group: text,
                        chain: self.chain(index),
                        arch: self.arch.to_string(),
                        explanation,
                    });
                }
            }
        }
        Ok(())
    }

    /// "b 1.0 (Depends of a) ← a 2.0 (requested by component x)".
    fn chain(&self, mut index: usize) -> String {
        let mut parts = Vec::new();
        for _ in 0..64 {
            let s = &self.selected[index];
            let name = format!("{} {}", s.package.name, s.package.version);
            match &s.reason {
                Reason::Requested => {
                    parts.push(format!("{name} (requested by component {})", s.component));
                    break;
                }
                Reason::Essential => {
                    parts.push(format!("{name} (essential, component {})", s.component));
                    break;
                }
                Reason::Depends { parent, .. } | Reason::Recommends { parent, .. } => {
                    parts.push(name);
                    match self.by_name.get(parent) {
                        Some(&p) => index = p,
                        None => break,
                    }
                }
            }
        }
        parts.join(" ← ")
    }

    /// Gives each chosen package to the first component, in layer order, whose requests
    /// reach it through the chosen packages' dependencies, so that a layer holds what its
    /// component needs and nothing an earlier layer already has.
    fn attribute(&mut self, requests: &[Request]) {
        let mut owner: Vec<Option<usize>> = vec![None; self.selected.len()];
        for (c, request) in requests.iter().enumerate() {
            let mut stack: Vec<usize> = Vec::new();
            for text in &request.packages {
                if let Ok(relation) = relation::parse_relation(text) {
                    stack.extend(self.satisfier(&relation));
                }
            }
            if request.essential {
                stack.extend(
                    self.selected
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.reason == Reason::Essential)
                        .map(|(i, _)| i),
                );
            }
            stack.reverse();
            while let Some(i) = stack.pop() {
                if owner[i].is_some() {
                    continue;
                }
                owner[i] = Some(c);
                let groups = self
                    .dependency_groups(request, self.chosen[i])
                    .unwrap_or_default();
                let next: Vec<usize> = groups
                    .iter()
                    .filter_map(|(group, _)| group.iter().find_map(|r| self.satisfier(r)))
                    .collect();
                stack.extend(next.into_iter().rev());
            }
        }
        for (selected, owner) in self.selected.iter_mut().zip(owner) {
            if let Some(c) = owner {
                selected.component = requests[c].component.clone();
            }
        }
    }

    fn check_conflicts(&self) -> Result<(), ResolveError> {
        for rule in &self.conflict_rules {
            let owner = &self.selected[rule.owner].package;
            for (i, other) in self.selected.iter().enumerate() {
                if i == rule.owner || other.package.name == owner.name {
                    continue;
                }
                if self.relation_hits(&rule.relation, &other.package) {
                    return Err(ResolveError::Conflict(Box::new(ConflictReport {
                        a: owner.name.clone(),
                        b: other.package.name.clone(),
                        kind: if rule.kind == "Conflicts" {
                            "conflicts with"
                        } else {
                            "breaks"
                        },
                        relation: rule.relation.to_string(),
                        arch: self.arch.to_string(),
                        why_a: self.chain(rule.owner),
                        why_b: self.chain(i),
                    })));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::packages::{PackageIndex, parse_packages};

    /// Builds an index from short stanzas: `name version [Field: value]...` separated by `;`.
    fn index(spec: &str) -> PackageIndex {
        let mut text = String::new();
        for (n, entry) in spec.trim().split('\n').enumerate() {
            let mut parts = entry.trim().split(';');
            let head: Vec<&str> = parts.next().unwrap().split_whitespace().collect();
            text.push_str(&format!(
                "Package: {}\nVersion: {}\nArchitecture: amd64\nFilename: pool/{}.deb\nSize: {}\nSHA256: {:064x}\n",
                head[0], head[1], head[0], n + 1, n
            ));
            for field in parts {
                text.push_str(field.trim());
                text.push('\n');
            }
            text.push('\n');
        }
        PackageIndex::build(vec![parse_packages(&text, "test", 0).unwrap()])
    }

    fn request(packages: &[&str]) -> Vec<Request> {
        vec![Request {
            component: "c".into(),
            packages: packages.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }]
    }

    fn names(result: &[Selected]) -> Vec<String> {
        result
            .iter()
            .map(|s| format!("{}={}", s.package.name, s.package.version))
            .collect()
    }

    #[test]
    fn alternatives_are_tried_in_order_and_satisfied_ones_are_kept() {
        let idx = index(
            "app 1; Depends: usrmerge | usr-is-merged
             usrmerge 1; Depends: perl
             perl 1
             usr-is-merged 1",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["app"])).unwrap()),
            ["app=1", "perl=1", "usrmerge=1"]
        );
        // Asking for usr-is-merged first satisfies the group: no usrmerge, no perl.
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["usr-is-merged", "app"])).unwrap()),
            ["app=1", "usr-is-merged=1"]
        );
    }

    #[test]
    fn every_request_is_marked_before_any_dependency_is_chosen() {
        // apt-get install desktop xterm: xterm, asked for later, provides the terminal
        // the desktop needs, so gnome-terminal and its dependencies stay out.
        let idx = index(
            "desktop 1; Depends: gnome-terminal | x-terminal-emulator, shell
             gnome-terminal 1; Provides: x-terminal-emulator; Depends: vte
             vte 1
             xterm 1; Provides: x-terminal-emulator; Depends: libxaw
             libxaw 1
             shell 1
             htop 1",
        );
        let requests = vec![
            Request {
                component: "desktop".into(),
                packages: vec!["desktop".into()],
                ..Default::default()
            },
            Request {
                component: "terminals".into(),
                packages: vec!["xterm".into(), "shell".into(), "htop".into()],
                ..Default::default()
            },
        ];
        let result = resolve(&idx, "amd64", &requests).unwrap();
        let owner: Vec<String> = result
            .iter()
            .map(|s| format!("{}:{}", s.package.name, s.component))
            .collect();
        // What the later component asks for but `desktop` reaches first (`shell`, and
        // xterm as its terminal) belongs to the earlier layer, as it would had `desktop`
        // chosen it itself.
        assert_eq!(
            owner,
            [
                "desktop:desktop",
                "htop:terminals",
                "libxaw:desktop",
                "shell:desktop",
                "xterm:desktop"
            ]
        );
    }

    #[test]
    fn versioned_dependencies_skip_alternatives_that_are_too_old() {
        let idx = index(
            "app 1; Depends: libfoo (>= 2) | libfoo-compat
             libfoo 1.5
             libfoo-compat 1",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["app"])).unwrap()),
            ["app=1", "libfoo-compat=1"]
        );
    }

    #[test]
    fn virtual_packages_and_versioned_provides() {
        let idx = index(
            "app 1; Depends: mail-transport-agent, awk, libjs (>= 3)
             postfix 3; Priority: optional; Provides: mail-transport-agent
             exim4 4; Priority: standard; Provides: mail-transport-agent
             mawk 1.3; Priority: required; Provides: awk
             libjs-old 1; Provides: libjs (= 2)
             libjs-new 1; Provides: libjs (= 3)",
        );
        let got = names(&resolve(&idx, "amd64", &request(&["app"])).unwrap());
        // exim4 wins by priority; libjs-old's provided version is too old.
        assert_eq!(got, ["app=1", "exim4=4", "libjs-new=1", "mawk=1.3"]);
    }

    #[test]
    fn an_unversioned_provide_never_satisfies_a_versioned_dependency() {
        let idx = index(
            "app 1; Depends: virt (>= 1)
             prov 1; Provides: virt",
        );
        let err = resolve(&idx, "amd64", &request(&["app"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot satisfy `virt (>= 1)`")
                && err.contains("app 1 (requested by component c)"),
            "{err}"
        );
    }

    #[test]
    fn cycles_terminate() {
        let idx = index(
            "a 1; Depends: b
             b 1; Pre-Depends: c
             c 1; Depends: a",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["a"])).unwrap()),
            ["a=1", "b=1", "c=1"]
        );
    }

    #[test]
    fn conflicting_alternatives_are_skipped() {
        let idx = index(
            "app 1; Depends: base, impl-a | impl-b
             base 1; Conflicts: impl-a
             impl-a 1
             impl-b 1",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["app"])).unwrap()),
            ["app=1", "base=1", "impl-b=1"]
        );
    }

    #[test]
    fn unavoidable_conflicts_are_explained_with_both_chains() {
        let idx = index(
            "one 1; Depends: liba
             two 1; Depends: libb
             liba 1; Breaks: libb (<< 2)
             libb 1",
        );
        let err = resolve(&idx, "amd64", &request(&["one", "two"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot satisfy `libb`, needed by two 1 (requested by component c)"),
            "{err}"
        );
        assert!(
            err.contains("libb: libb 1 is refused by liba (Breaks: libb (<< 2))"),
            "{err}"
        );
    }

    #[test]
    fn a_later_dependency_conflicting_with_an_earlier_choice_is_explained() {
        let idx = index(
            "one 1; Depends: x
             x 1
             two 1; Depends: y
             y 1; Conflicts: x",
        );
        let err = resolve(&idx, "amd64", &request(&["one", "two"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y: y 1 Conflicts x, which is already chosen"),
            "{err}"
        );
    }

    #[test]
    fn essential_packages_conflicting_with_requests_fail_the_final_check() {
        // The essential set is installed as a whole, not chosen among alternatives, so
        // only the final pairwise check can catch this.
        let idx = index(
            "sysv 1; Essential: yes; Conflicts: systemd-sysv
             systemd-sysv 1",
        );
        let requests = vec![Request {
            component: "base".into(),
            packages: vec!["systemd-sysv".into()],
            essential: true,
            recommends: false,
        }];
        let err = resolve(&idx, "amd64", &requests).unwrap_err().to_string();
        assert!(
            err.starts_with("sysv conflicts with systemd-sysv (amd64)"),
            "{err}"
        );
        assert!(
            err.contains("sysv: sysv 1 (essential, component base)"),
            "{err}"
        );
        assert!(
            err.contains("systemd-sysv: systemd-sysv 1 (requested by component base)"),
            "{err}"
        );
    }

    #[test]
    fn a_package_conflicting_with_what_it_provides_is_fine() {
        let idx = index("mawk 1; Provides: awk; Conflicts: awk; Replaces: awk");
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["mawk"])).unwrap()),
            ["mawk=1"]
        );
    }

    #[test]
    fn any_qualifier_needs_multi_arch_allowed() {
        let idx = index(
            "app 1; Depends: python3:any
             python3 3.13; Multi-Arch: allowed
             tool 1; Depends: libx:any
             libx 1",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["app"])).unwrap()),
            ["app=1", "python3=3.13"]
        );
        let err = resolve(&idx, "amd64", &request(&["tool"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not Multi-Arch: allowed"), "{err}");
    }

    #[test]
    fn essential_set_and_component_ownership() {
        let idx = index(
            "libc6 2.41; Priority: required
             dash 0.5; Essential: yes; Depends: libc6
             bash 5; Priority: important; Depends: libc6
             vim 9; Depends: libc6, vim-runtime
             vim-runtime 9",
        );
        let requests = vec![
            Request {
                component: "base".into(),
                packages: vec![],
                essential: true,
                recommends: false,
            },
            Request {
                component: "editors".into(),
                packages: vec!["vim".into()],
                essential: false,
                recommends: false,
            },
        ];
        let result = resolve(&idx, "amd64", &requests).unwrap();
        let owner: Vec<(String, String)> = result
            .iter()
            .map(|s| (s.package.name.clone(), s.component.clone()))
            .collect();
        assert_eq!(
            owner,
            [
                ("dash", "base"),
                ("libc6", "base"),
                ("vim", "editors"),
                ("vim-runtime", "editors")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn recommends_only_when_asked_and_never_fatal() {
        let idx = index(
            "app 1; Recommends: helper, missing-thing
             helper 1",
        );
        assert_eq!(
            names(&resolve(&idx, "amd64", &request(&["app"])).unwrap()),
            ["app=1"]
        );
        let with = vec![Request {
            component: "c".into(),
            packages: vec!["app".into()],
            essential: false,
            recommends: true,
        }];
        assert_eq!(
            names(&resolve(&idx, "amd64", &with).unwrap()),
            ["app=1", "helper=1"]
        );
    }

    #[test]
    fn unknown_packages_name_the_component() {
        let idx = index("a 1");
        let err = resolve(&idx, "amd64", &request(&["nope"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("component c") && err.contains("\"nope\""),
            "{err}"
        );
    }

    #[test]
    fn result_does_not_depend_on_index_order() {
        let spec = "app 1; Depends: virt, a | b
             p2 1; Provides: virt
             p1 1; Provides: virt
             a 1
             b 1";
        let reversed: Vec<&str> = spec.split('\n').rev().collect();
        let one = names(&resolve(&index(spec), "amd64", &request(&["app"])).unwrap());
        let two =
            names(&resolve(&index(&reversed.join("\n")), "amd64", &request(&["app"])).unwrap());
        assert_eq!(one, two);
        assert_eq!(one, ["a=1", "app=1", "p1=1"]);
    }
}
