//! What an image says about itself beside its contents: OCI annotations on its manifest
//! and index, and labels in its config.
//!
//! Four sources, each overriding the one before, key by key: the defaults every image
//! gets (`created` from the lock's `source-date-epoch`, `title`, `description`), what the
//! version control of the recipes says (`revision`, `source`, `version`), the recipes
//! (`[annotations]`, `[config] labels`), and the command line (`--annotation`,
//! `--label`). An empty value removes a key, so a build can leave out a default. Nothing
//! here reads a clock or the host: the same inputs give the same bytes.

use super::rfc3339;
use crate::recipe::ImagePlan;
use std::collections::BTreeMap;

pub const CREATED: &str = "org.opencontainers.image.created";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const SOURCE: &str = "org.opencontainers.image.source";

/// Annotations and labels given beside the recipes: from version control and from the
/// command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataOverrides {
    /// From the recipes' version control (`REVISION`, `SOURCE`, `VERSION`): below the
    /// recipes, so a recipe can say otherwise.
    pub vcs: BTreeMap<String, String>,
    /// `--annotation KEY=VALUE`, above everything.
    pub annotations: BTreeMap<String, String>,
    /// `--label KEY=VALUE`, above the recipes' labels.
    pub labels: BTreeMap<String, String>,
}

/// An image's final annotations and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl Metadata {
    /// The metadata of `plan` built from a lock of `source_date_epoch`.
    pub fn of(plan: &ImagePlan, source_date_epoch: u64, overrides: &MetadataOverrides) -> Self {
        let mut annotations = BTreeMap::from([
            (CREATED.to_string(), rfc3339(source_date_epoch)),
            (TITLE.to_string(), plan.name.clone()),
            (DESCRIPTION.to_string(), plan.description.clone()),
        ]);
        annotations.extend(overrides.vcs.clone());
        annotations.extend(plan.annotations.clone());
        annotations.extend(overrides.annotations.clone());
        annotations.retain(|_, v| !v.is_empty());
        let mut labels = plan.config.labels.clone();
        labels.extend(overrides.labels.clone());
        labels.retain(|_, v| !v.is_empty());
        Metadata {
            annotations,
            labels,
        }
    }
}

/// Parses `KEY=VALUE` (the value may be empty, the key may not).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_override_earlier_ones_and_empty_values_remove() {
        let mut plan = crate::recipe::ImagePlan::for_tests("base", "the base image");
        plan.annotations
            .insert(SOURCE.to_string(), "https://recipes.invalid/x".into());
        plan.config.labels.insert("team".into(), "infra".into());
        let overrides = MetadataOverrides {
            vcs: BTreeMap::from([
                (REVISION.to_string(), "abc".to_string()),
                (SOURCE.to_string(), "https://git.invalid/x".to_string()),
            ]),
            annotations: BTreeMap::from([(DESCRIPTION.to_string(), String::new())]),
            labels: BTreeMap::from([("team".to_string(), "data".to_string())]),
        };
        let m = Metadata::of(&plan, 1_795_252_544, &overrides);
        assert_eq!(
            m.annotations,
            BTreeMap::from([
                (CREATED.to_string(), "2026-11-21T09:15:44Z".to_string()),
                (REVISION.to_string(), "abc".to_string()),
                (SOURCE.to_string(), "https://recipes.invalid/x".to_string()),
                (TITLE.to_string(), "base".to_string()),
            ])
        );
        assert_eq!(m.labels["team"], "data");
    }

    #[test]
    fn pairs_need_a_key() {
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_pair("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_pair("=b").is_err() && parse_pair("ab").is_err());
    }
}
