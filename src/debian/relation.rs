//! Package relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`, `Breaks`).
//!
//! A field is a comma-separated list of groups; a group is `|`-separated alternatives;
//! an alternative is a name with an optional arch qualifier and version constraint.

use super::version::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;

/// A version operator as written in a relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn matches(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Eq => ordering == Ordering::Equal,
            Op::Ge => ordering != Ordering::Less,
            Op::Gt => ordering == Ordering::Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// The `:qualifier` after a package name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchQualifier {
    None,
    Any,
    Native,
    Arch(String),
}

/// One alternative: `name[:qual] [(op version)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub arch: ArchQualifier,
    pub constraint: Option<(Op, Version)>,
}

impl Relation {
    /// Whether a package (or a provided name) at `version` satisfies the version constraint.
    pub fn version_matches(&self, version: Option<&Version>) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some((op, wanted)), Some(have)) => op.matches(have.cmp(wanted)),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Arch(a) => write!(f, ":{a}")?,
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({} {})", op.as_str(), v)?;
        }
        Ok(())
    }
}

/// A group of alternatives, any one of which satisfies it.
pub type Group = Vec<Relation>;

/// A relation field that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RelationError {
    #[error("malformed relation {0:?}")]
    Malformed(String),
    #[error("unknown version operator {0:?}")]
    Operator(String),
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// Parses a whole relation field into groups of alternatives.
pub fn parse_field(text: &str) -> Result<Vec<Group>, RelationError> {
    let mut groups = Vec::new();
    for group_text in text.split(',') {
        if group_text.trim().is_empty() {
            continue;
        }
        let group = group_text
            .split('|')
            .map(parse_relation)
            .collect::<Result<Group, _>>()?;
        groups.push(group);
    }
    Ok(groups)
}

/// Parses one alternative. Architecture lists (`[amd64]`) and build profiles (`<!nocheck>`)
/// never appear in binary package fields; they are accepted and dropped.
pub fn parse_relation(text: &str) -> Result<Relation, RelationError> {
    let malformed = || RelationError::Malformed(text.trim().to_string());
    let mut rest = text.trim();
    for (open, close) in [('<', '>'), ('[', ']')] {
        while let Some(start) = rest.rfind(open) {
            if !rest[start..].contains(close)
                || rest[..start].contains('(') && !rest[..start].contains(')')
            {
                break;
            }
            rest = rest[..start].trim_end();
        }
    }
    let (name_part, constraint) = match rest.find('(') {
        Some(open) => {
            let close = rest.rfind(')').ok_or_else(malformed)?;
            if close < open || !rest[close + 1..].trim().is_empty() {
                return Err(malformed());
            }
            let inner = rest[open + 1..close].trim();
            let op_len = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(malformed)?;
            let op = match &inner[..op_len] {
                "<<" => Op::Lt,
                "<=" | "<" => Op::Le,
                "=" => Op::Eq,
                ">=" | ">" => Op::Ge,
                ">>" => Op::Gt,
                other => return Err(RelationError::Operator(other.to_string())),
            };
            let version = Version::parse(inner[op_len..].trim())?;
            (rest[..open].trim(), Some((op, version)))
        }
        None => (rest, None),
    };
    if name_part.is_empty() || name_part.contains(char::is_whitespace) {
        return Err(malformed());
    }
    let (name, arch) = match name_part.split_once(':') {
        Some((name, "any")) => (name, ArchQualifier::Any),
        Some((name, "native")) => (name, ArchQualifier::Native),
        Some((name, arch)) => (name, ArchQualifier::Arch(arch.to_string())),
        None => (name_part, ArchQualifier::None),
    };
    Ok(Relation {
        name: name.to_string(),
        arch,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_alternatives_and_constraints() {
        let groups =
            parse_field("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any,\n perl:native (<< 5.40~)").unwrap();
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[1].len(), 2);
        assert_eq!(groups[1][1].name, "debconf-2.0");
        assert_eq!(groups[2][0].arch, ArchQualifier::Any);
        let (op, v) = groups[3][0].constraint.as_ref().unwrap();
        assert_eq!((*op, v.as_str()), (Op::Lt, "5.40~"));
        assert_eq!(groups[3][0].to_string(), "perl:native (<< 5.40~)");
    }

    #[test]
    fn arch_lists_and_profiles_are_dropped() {
        let r = parse_relation("foo (>= 1) [amd64 arm64] <!nocheck>").unwrap();
        assert_eq!(r.name, "foo");
        assert!(r.constraint.is_some());
    }

    #[test]
    fn malformed_relations_are_errors() {
        assert!(parse_relation("foo (>= 1").is_err());
        assert!(parse_relation("foo (~= 1)").is_err());
        assert!(parse_relation("two words").is_err());
        assert!(parse_relation("foo (>= )").is_err());
    }

    #[test]
    fn version_matching() {
        let r = parse_relation("a (>= 2.0)").unwrap();
        assert!(r.version_matches(Some(&Version::parse("2.0").unwrap())));
        assert!(!r.version_matches(Some(&Version::parse("2.0~rc1").unwrap())));
        assert!(
            !r.version_matches(None),
            "an unversioned provide never satisfies a versioned dependency"
        );
    }
}
