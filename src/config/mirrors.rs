//! Where each ecosystem is downloaded from. No host name lives in the repository: a
//! mirror comes from, in order, `--mirror NAME=URL`, `CARBON_MIRROR_<NAME>`, the user
//! config file's `[mirrors]` table, and finally the host's own apt sources.
//!
//! A mirror value may list several URLs (comma or whitespace separated, or a TOML array):
//! the first is tried first and the rest are fallbacks.

use crate::deb822::Paragraphs;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The URLs of one named mirror and where that setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub name: String,
    pub urls: Vec<String>,
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "no mirror is configured for `{name}`: pass `--mirror {name}=URL`, set {env}=URL, or add `{name} = \"URL\"` under [mirrors] in {config}{apt_hint}"
    )]
    NotConfigured {
        name: String,
        env: String,
        config: String,
        apt_hint: &'static str,
    },
    #[error("--mirror {0:?}: expected NAME=URL")]
    BadFlag(String),
    #[error("config file {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("mirror `{name}` from {origin}: {url:?} is not an http(s) or file URL")]
    BadUrl {
        name: String,
        origin: String,
        url: String,
    },
}

/// Everything mirror lookup consults, captured once so lookups are pure.
#[derive(Clone, Debug, Default)]
pub struct MirrorSettings {
    flags: BTreeMap<String, Vec<String>>,
    env: BTreeMap<String, String>,
    config_path: Option<PathBuf>,
    config: BTreeMap<String, Vec<String>>,
    /// `cache = "HOST/REPOSITORY"` of the config file: the registry cache to read.
    config_cache: Option<String>,
    apt: BTreeMap<String, Vec<String>>,
}

/// `CARBON_MIRROR_DEBIAN_SECURITY` for `debian-security`.
pub fn env_var_name(mirror: &str) -> String {
    format!(
        "CARBON_MIRROR_{}",
        mirror.to_ascii_uppercase().replace('-', "_")
    )
}

/// The user config file: `$CARBON_CONFIG`, else `$XDG_CONFIG_HOME/carbon-store/config.toml`,
/// else `~/.config/carbon-store/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CARBON_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("carbon-store").join("config.toml"))
}

fn split_urls(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_string())
        .collect()
}

impl MirrorSettings {
    /// Reads the process environment, the user config file and the host's apt directory
    /// (`/etc/apt`, or `$CARBON_APT_DIR` to read another system's sources).
    pub fn from_host(flags: &[String]) -> Result<MirrorSettings, MirrorError> {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("CARBON_MIRROR_"))
            .collect();
        let apt_dir = std::env::var_os("CARBON_APT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/apt"));
        Self::load(flags, env, default_config_path(), &apt_dir)
    }

    /// Builds settings from explicit inputs (used by tests, and by `from_host`).
    pub fn load(
        flags: &[String],
        env: BTreeMap<String, String>,
        config_path: Option<PathBuf>,
        apt_dir: &Path,
    ) -> Result<MirrorSettings, MirrorError> {
        let mut settings = MirrorSettings {
            env,
            config_path: config_path.clone(),
            apt: apt_mirrors(apt_dir),
            ..Default::default()
        };
        for flag in flags {
            let (name, url) = flag
                .split_once('=')
                .ok_or_else(|| MirrorError::BadFlag(flag.clone()))?;
            if name.is_empty() || url.is_empty() {
                return Err(MirrorError::BadFlag(flag.clone()));
            }
            settings
                .flags
                .entry(name.to_string())
                .or_default()
                .extend(split_urls(url));
        }
        if let Some(path) = config_path.filter(|p| p.exists()) {
            (settings.config, settings.config_cache) = read_config(&path)?;
        }
        Ok(settings)
    }

    /// The registry cache the config file names, if any (`--cache` and `CARBON_CACHE`
    /// come first; the CLI reads those).
    pub fn config_cache(&self) -> Option<&str> {
        self.config_cache.as_deref()
    }

    /// The URLs set for a name and where they were set, unchecked: from the first place
    /// that sets it, `None` when nothing does.
    pub fn lookup(&self, name: &str) -> Option<(Vec<String>, String)> {
        let env = env_var_name(name);
        let found = if let Some(urls) = self.flags.get(name) {
            Some((urls.clone(), format!("--mirror {name}=")))
        } else if let Some(value) = self.env.get(&env).filter(|v| !v.trim().is_empty()) {
            Some((split_urls(value), env.clone()))
        } else if let Some(urls) = self.config.get(name) {
            Some((
                urls.clone(),
                self.config_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ))
        } else if name == "pypi" {
            host_pip_index().map(|url| (vec![url], "the host's pip configuration".to_string()))
        } else if name == "npm" {
            host_npm_registry().map(|url| (vec![url], "the host's npm configuration".to_string()))
        } else {
            self.apt
                .get(name)
                .map(|urls| (urls.clone(), "the host's apt sources".to_string()))
        };
        found.filter(|(urls, _)| !urls.is_empty())
    }

    /// The mirror for a name, from the first place that sets it.
    pub fn mirror(&self, name: &str) -> Result<Mirror, MirrorError> {
        let Some((urls, origin)) = self.lookup(name) else {
            return Err(MirrorError::NotConfigured {
                name: name.to_string(),
                env: env_var_name(name),
                config: self
                    .config_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/carbon-store/config.toml".into()),
                apt_hint: if name.starts_with("debian") {
                    " (the host's apt sources name no Debian archive to use)"
                } else {
                    ""
                },
            });
        };
        for url in &urls {
            if !(url.starts_with("http://")
                || url.starts_with("https://")
                || url.starts_with("file://"))
            {
                return Err(MirrorError::BadUrl {
                    name: name.to_string(),
                    origin,
                    url: url.clone(),
                });
            }
        }
        Ok(Mirror {
            name: name.to_string(),
            urls,
            origin,
        })
    }
}

/// The index pip on this host would use: `PIP_INDEX_URL`, `index-url` in pip's
/// configuration files, or pip's own default index, asked of the host's pip itself so that
/// no index host is named here. Worked out once per process (asking pip takes ~0.1 s).
fn host_pip_index() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("PIP_INDEX_URL")
                && !url.trim().is_empty()
            {
                return Some(url.trim().trim_end_matches('/').to_string());
            }
            pip_config_index(&pip_config_files()).or_else(pip_default_index)
        })
        .clone()
}

/// The registry npm on this host would use: `npm_config_registry`, else asked of the
/// host's npm itself (`npm config get registry`, which reads every npmrc and npm's own
/// default) so that no registry host is named here. Worked out once per process.
fn host_npm_registry() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            for var in ["npm_config_registry", "NPM_CONFIG_REGISTRY"] {
                if let Ok(url) = std::env::var(var)
                    && url.trim().starts_with("http")
                {
                    return Some(url.trim().trim_end_matches('/').to_string());
                }
            }
            let out = std::process::Command::new("npm")
                .args(["config", "get", "registry"])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && text.starts_with("http"))
                .then(|| text.trim_end_matches('/').to_string())
        })
        .clone()
}

/// pip's configuration files, lowest precedence first (as pip's `iter_config_files`):
/// global, user (unless `PIP_CONFIG_FILE` names an existing file), site, `PIP_CONFIG_FILE`.
fn pip_config_files() -> Vec<PathBuf> {
    let env_file = std::env::var_os("PIP_CONFIG_FILE").map(PathBuf::from);
    if env_file.as_deref() == Some(Path::new("/dev/null")) {
        return Vec::new();
    }
    let mut files = Vec::new();
    let xdg_dirs = std::env::var("XDG_CONFIG_DIRS").unwrap_or_else(|_| "/etc/xdg".into());
    for dir in xdg_dirs.split(':').filter(|d| !d.is_empty()) {
        files.push(Path::new(dir).join("pip/pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    if !env_file.as_ref().is_some_and(|f| f.exists())
        && let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
    {
        files.push(home.join(".pip/pip.conf"));
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        files.push(config.join("pip/pip.conf"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        files.push(Path::new(&venv).join("pip.conf"));
    }
    files.extend(env_file);
    files
}

/// `index-url` from pip's INI files: the last file setting it wins, and in a file the
/// `[install]` section over `[global]`.
fn pip_config_index(files: &[PathBuf]) -> Option<String> {
    let mut found = None;
    for file in files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let (mut global, mut install, mut section) = (None, None, String::new());
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                continue;
            };
            if key.trim().replace('_', "-") != "index-url" {
                continue;
            }
            let value = value.split_whitespace().next().unwrap_or("");
            let value = Some(value.trim_end_matches('/').to_string());
            match section.as_str() {
                "global" => global = value,
                "install" => install = value,
                _ => {}
            }
        }
        if let Some(url) = install.or(global).filter(|u| u.starts_with("http")) {
            found = Some(url);
        }
    }
    found
}

/// pip's built-in default index, from the host's pip.
fn pip_default_index() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && text.starts_with("http"))
        .then(|| text.trim_end_matches('/').to_string())
}

/// Mirror URLs by name.
type MirrorUrls = BTreeMap<String, Vec<String>>;

/// The config file's mirrors and registry cache.
fn read_config(path: &Path) -> Result<(MirrorUrls, Option<String>), MirrorError> {
    let bad = |reason: String| MirrorError::BadConfig {
        path: path.to_path_buf(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    let mut cache = None;
    for (key, value) in &table {
        if key == "cache" {
            cache = Some(
                value
                    .as_str()
                    .ok_or_else(|| bad("`cache` must be a string, HOST[:PORT]/REPOSITORY".into()))?
                    .to_string(),
            );
            continue;
        }
        if key != "mirrors" {
            return Err(bad(format!(
                "unknown table or key `{key}` (expected [mirrors] or cache)"
            )));
        }
        let mirrors = value
            .as_table()
            .ok_or_else(|| bad("`mirrors` must be a table".into()))?;
        for (name, v) in mirrors {
            let urls = match v {
                toml::Value::String(s) => split_urls(s),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(|s| s.trim_end_matches('/').to_string()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        bad(format!(
                            "mirrors.{name} must be a string or an array of strings"
                        ))
                    })?,
                _ => {
                    return Err(bad(format!(
                        "mirrors.{name} must be a string or an array of strings"
                    )));
                }
            };
            out.insert(name.clone(), urls);
        }
    }
    Ok((out, cache))
}

/// One `deb` source of the host's apt configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AptSource {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: String,
}

const DEBIAN_CODENAMES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "stable",
    "oldstable",
    "testing",
    "unstable",
];

/// Finds the Debian archive (`debian`) and security archive (`debian-security`) among the
/// host's apt sources: deb822 `sources.list.d/*.sources` and one-line `sources.list(.d/*.list)`.
fn apt_mirrors(apt_dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut sources = Vec::new();
    let mut files = vec![apt_dir.join("sources.list")];
    if let Ok(entries) = fs::read_dir(apt_dir.join("sources.list.d")) {
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        files.extend(names);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => sources.extend(parse_deb822_sources(&text)),
            Some("list") => sources.extend(parse_one_line_sources(&text)),
            _ => {}
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for source in sources {
        if !source.components.iter().any(|c| c == "main") {
            continue;
        }
        let is_debian = |suite: &str| {
            let base = suite.split(['-', '/']).next().unwrap_or(suite);
            DEBIAN_CODENAMES.contains(&base)
        };
        if !source.suites.iter().any(|s| is_debian(s))
            && !source.signed_by.contains("debian-archive-keyring")
        {
            continue;
        }
        let name = if source
            .suites
            .iter()
            .all(|s| s.ends_with("-security") || s.ends_with("/updates"))
        {
            "debian-security"
        } else {
            "debian"
        };
        let urls = out.entry(name.to_string()).or_default();
        let uri = source.uri.trim_end_matches('/').to_string();
        if !urls.contains(&uri) {
            urls.push(uri);
        }
    }
    out
}

fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for paragraph in Paragraphs::new(text).flatten() {
        let types = paragraph.get("Types").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb") || paragraph.get("Enabled") == Some("no") {
            continue;
        }
        let words = |f: &str| -> Vec<String> {
            paragraph
                .get(f)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        for uri in words("URIs") {
            out.push(AptSource {
                uri,
                suites: words("Suites"),
                components: words("Components"),
                signed_by: paragraph.get("Signed-By").unwrap_or("").to_string(),
            });
        }
    }
    out
}

fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = match line.strip_prefix("deb ") {
            Some(r) => r.trim(),
            None => continue,
        };
        let mut signed_by = String::new();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            let options = &rest[1..end];
            if let Some(sb) = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
            {
                signed_by = sb.to_string();
            }
            rest = rest[end + 1..].trim();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apt_dir(sources: &str, list: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        fs::write(dir.path().join("sources.list.d/debian.sources"), sources).unwrap();
        fs::write(dir.path().join("sources.list"), list).unwrap();
        dir
    }

    const SOURCES: &str = "Types: deb\nURIs: http://archive.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://archive.invalid/debian-security/\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: https://vendor.invalid/apt\nSuites: nodistro\nComponents: main\n";

    #[test]
    fn host_apt_sources_give_debian_and_security() {
        let dir = apt_dir(SOURCES, "");
        let s = MirrorSettings::load(&[], BTreeMap::new(), None, dir.path()).unwrap();
        assert_eq!(
            s.mirror("debian").unwrap().urls,
            vec!["http://archive.invalid/debian"]
        );
        assert_eq!(
            s.mirror("debian-security").unwrap().urls,
            vec!["http://archive.invalid/debian-security"]
        );
    }

    #[test]
    fn one_line_sources_are_read() {
        let dir = apt_dir(
            "",
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.invalid/debian trixie main\n# deb http://x.invalid/ sid main\n",
        );
        let s = MirrorSettings::load(&[], BTreeMap::new(), None, dir.path()).unwrap();
        assert_eq!(
            s.mirror("debian").unwrap().urls,
            vec!["http://m.invalid/debian"]
        );
    }

    #[test]
    fn precedence_is_flag_env_config_apt() {
        let dir = apt_dir(SOURCES, "");
        let config = dir.path().join("config.toml");
        fs::write(
            &config,
            "[mirrors]\ndebian = [\"http://config.invalid/d\"]\n",
        )
        .unwrap();
        let env: BTreeMap<_, _> = [(
            "CARBON_MIRROR_DEBIAN".to_string(),
            "http://env.invalid/d, http://env2.invalid/d".to_string(),
        )]
        .into();
        let s =
            MirrorSettings::load(&[], BTreeMap::new(), Some(config.clone()), dir.path()).unwrap();
        assert_eq!(
            s.mirror("debian").unwrap().urls,
            vec!["http://config.invalid/d"]
        );
        let s = MirrorSettings::load(&[], env.clone(), Some(config.clone()), dir.path()).unwrap();
        assert_eq!(
            s.mirror("debian").unwrap().urls,
            vec!["http://env.invalid/d", "http://env2.invalid/d"]
        );
        let s = MirrorSettings::load(
            &["debian=http://flag.invalid/d".into()],
            env,
            Some(config),
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.mirror("debian").unwrap().origin, "--mirror debian=");
    }

    #[test]
    fn the_config_file_may_name_a_registry_cache() {
        let dir = apt_dir(SOURCES, "");
        let config = dir.path().join("config.toml");
        fs::write(&config, "cache = \"10.0.0.7:5000/ci/cache\"\n[mirrors]\n").unwrap();
        let s =
            MirrorSettings::load(&[], BTreeMap::new(), Some(config.clone()), dir.path()).unwrap();
        assert_eq!(s.config_cache(), Some("10.0.0.7:5000/ci/cache"));
        fs::write(&config, "cache = 5\n").unwrap();
        let e = MirrorSettings::load(&[], BTreeMap::new(), Some(config), dir.path()).unwrap_err();
        assert!(e.to_string().contains("`cache` must be a string"), "{e}");
    }

    #[test]
    fn missing_mirror_says_what_to_set() {
        let dir = apt_dir("", "");
        let s = MirrorSettings::load(&[], BTreeMap::new(), None, dir.path()).unwrap();
        let err = s.mirror("elsewhere").unwrap_err().to_string();
        assert!(
            err.contains("CARBON_MIRROR_ELSEWHERE") && err.contains("--mirror elsewhere=URL"),
            "{err}"
        );
        assert!(
            MirrorSettings::load(&["nourl".into()], BTreeMap::new(), None, dir.path()).is_err()
        );
    }

    #[test]
    fn pip_index_url_comes_from_the_last_config_file_setting_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let global = write(
            "global.conf",
            "[global]\nindex-url = https://one.invalid/simple/\n",
        );
        let user = write(
            "user.conf",
            "# comment\n[global]\ntimeout = 60\nindex_url=https://two.invalid/simple\n[install]\nindex-url = https://three.invalid/simple\n",
        );
        let other = write("other.conf", "[global]\ncert = /etc/ssl/x.pem\n");
        let missing = dir.path().join("missing.conf");
        assert_eq!(
            pip_config_index(&[global.clone(), missing.clone()]),
            Some("https://one.invalid/simple".into())
        );
        assert_eq!(
            pip_config_index(&[global.clone(), user, other.clone()]),
            Some("https://three.invalid/simple".into()),
            "a later file wins, [install] over [global]"
        );
        assert_eq!(pip_config_index(&[other, missing]), None);
    }
}
