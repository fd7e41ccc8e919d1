//! What a package says of its licenses: the `License` fields of a machine-readable
//! `/usr/share/doc/PACKAGE/copyright` (DEP-5), and those names as an SPDX license
//! expression for the SBOMs.
//!
//! Why here: the copyright file is read once, while the package is unpacked, and only its
//! license names are kept (a few bytes per package, recorded with the Debian side), so an
//! SBOM costs nothing once the layers are cached. A free-form copyright file says nothing
//! a machine can trust, so it gives no license (`NOASSERTION`), never a guess.

use crate::deb822::Paragraphs;

/// Where a package's license names come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Licensing {
    /// No machine-readable copyright file.
    #[default]
    Unknown,
    /// The distinct `License` names of its copyright file, in the file's order.
    Declared(Vec<String>),
    /// Its documentation directory is a link to another package's (`libfoo-dev` →
    /// `libfoo1`): that package's licenses.
    SameAs(String),
}

/// The license names of a machine-readable copyright file; `None` for a free-form one.
pub fn declared_licenses(text: &str) -> Option<Vec<String>> {
    let mut paragraphs = Paragraphs::new(text);
    let header = paragraphs.next()?.ok()?;
    header.get("Format")?;
    let mut names: Vec<String> = Vec::new();
    let paragraphs = std::iter::once(Ok(header)).chain(paragraphs);
    for paragraph in paragraphs {
        let paragraph = paragraph.ok()?;
        if paragraph.get("Files").is_none() && paragraph.get("Format").is_none() {
            continue; // a stand-alone License paragraph: the text of a name used above
        }
        if let Some(license) = paragraph.get("License") {
            let name = license.lines().next().unwrap_or("").trim().to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// Debian's short names that differ from SPDX's identifiers; the rest of [`SPDX_IDS`] is
/// matched ignoring case.
const DEBIAN_NAMES: &[(&str, &str)] = &[
    ("expat", "MIT"),
    ("apache-2", "Apache-2.0"),
    ("artistic", "Artistic-1.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("boost", "BSL-1.0"),
    ("psf-2", "PSF-2.0"),
    ("zlib", "Zlib"),
    ("libpng", "Libpng"),
    ("cc0", "CC0-1.0"),
    ("mpl-2", "MPL-2.0"),
];

/// SPDX identifiers common in Debian copyright files, as SPDX spells them.
const SPDX_IDS: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-2.0",
    "Beerware",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "curl",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "HPND",
    "ICU",
    "IJG",
    "ISC",
    "Libpng",
    "libtiff",
    "LPPL-1.3c",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "NCSA",
    "OFL-1.1",
    "OLDAP-2.8",
    "OpenSSL",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "SGI-B-2.0",
    "Sleepycat",
    "TCL",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];

/// The GNU licenses, whose `-only` and `-or-later` forms SPDX spells out.
const GNU: &[(&str, &str)] = &[
    ("gpl-1", "GPL-1.0"),
    ("gpl-2", "GPL-2.0"),
    ("gpl-3", "GPL-3.0"),
    ("lgpl-2", "LGPL-2.0"),
    ("lgpl-2.1", "LGPL-2.1"),
    ("lgpl-3", "LGPL-3.0"),
    ("agpl-3", "AGPL-3.0"),
    ("gfdl-1.2", "GFDL-1.2"),
    ("gfdl-1.3", "GFDL-1.3"),
];

/// One Debian license name without operators as an SPDX identifier, when SPDX has it.
fn spdx_id(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (base, later) = match lower.strip_suffix('+') {
        Some(base) => (base, true),
        None => (lower.as_str(), false),
    };
    let base = base.strip_suffix(".0").unwrap_or(base);
    if let Some((_, spdx)) = GNU.iter().find(|(debian, _)| *debian == base) {
        return Some(format!(
            "{spdx}-{}",
            if later { "or-later" } else { "only" }
        ));
    }
    let known = DEBIAN_NAMES
        .iter()
        .find(|(debian, _)| *debian == base)
        .map(|(_, spdx)| spdx.to_string())
        .or_else(|| {
            SPDX_IDS
                .iter()
                .find(|id| id.eq_ignore_ascii_case(base) || id.eq_ignore_ascii_case(&lower))
                .map(|id| id.to_string())
        })?;
    // SPDX's `+` suffix is not accepted by SPDX's own validator: a non-GNU "or later"
    // stays a `LicenseRef-` of Debian's name.
    (!later).then_some(known)
}

/// `text` in the characters SPDX allows in identifiers (`[A-Za-z0-9.-]`), others as `-`.
pub fn spdx_idstring(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A name SPDX does not know, as a `LicenseRef-`.
pub fn license_ref(name: &str) -> String {
    format!("LicenseRef-{}", spdx_idstring(name))
}

/// An SPDX license expression for a package's license names (all apply: joined by `AND`),
/// and the names it had to write as `LicenseRef-` (identifier, Debian name).
pub fn spdx_expression(names: &[String]) -> (String, Vec<(String, String)>) {
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut terms: Vec<String> = Vec::new();
    for name in names {
        let term = one_name(name, &mut refs);
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    let expression = if terms.len() == 1 {
        terms.remove(0)
    } else {
        terms
            .iter()
            .map(|t| {
                if t.contains(' ') {
                    format!("({t})")
                } else {
                    t.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    (expression, refs)
}

/// `GPL-2+ or Artistic` → `GPL-2.0-or-later OR Artistic-1.0`. A `with … exception`
/// clause keeps its whole atom as a `LicenseRef-`: SPDX's exception list is not Debian's.
fn one_name(name: &str, refs: &mut Vec<(String, String)>) -> String {
    let words: Vec<&str> = name
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut atom: Vec<&str> = Vec::new();
    let mut flush = |atom: &mut Vec<&str>, out: &mut Vec<String>| {
        if atom.is_empty() {
            return;
        }
        let text = atom.join(" ");
        let id = (atom.len() == 1)
            .then(|| spdx_id(&text))
            .flatten()
            .unwrap_or_else(|| {
                let id = license_ref(&text);
                if !refs.iter().any(|(r, _)| *r == id) {
                    refs.push((id.clone(), text.clone()));
                }
                id
            });
        out.push(id);
        atom.clear();
    };
    for word in words {
        match word.to_ascii_lowercase().as_str() {
            op @ ("or" | "and") => {
                flush(&mut atom, &mut out);
                if !out.is_empty() && !out.last().is_some_and(|l| l == "OR" || l == "AND") {
                    out.push(op.to_ascii_uppercase());
                }
            }
            _ => atom.push(word),
        }
    }
    flush(&mut atom, &mut out);
    while out.last().is_some_and(|l| l == "OR" || l == "AND") {
        out.pop();
    }
    if out.is_empty() {
        let id = license_ref(name);
        refs.push((id.clone(), name.to_string()));
        return id;
    }
    // SPDX gives AND precedence over OR, as Debian's copyright format does.
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPYRIGHT: &str = "Format: https://example.invalid/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: GPL-2+
 This program is free software.

Files: lib/*
Copyright: 2021 Other
License: Expat or BSD-3-clause

Files: debian/*
Copyright: 2022 Packager
License: GPL-2+

License: Expat
 Permission is hereby granted.
";

    #[test]
    fn names_come_from_files_paragraphs_once_each() {
        assert_eq!(
            declared_licenses(COPYRIGHT).unwrap(),
            vec!["GPL-2+".to_string(), "Expat or BSD-3-clause".to_string()]
        );
        assert_eq!(
            declared_licenses("This package was debianized by someone.\n"),
            None
        );
    }

    #[test]
    fn expressions_use_spdx_ids_and_refs_for_the_rest() {
        let names = declared_licenses(COPYRIGHT).unwrap();
        let (expr, refs) = spdx_expression(&names);
        assert_eq!(expr, "GPL-2.0-or-later AND (MIT OR BSD-3-Clause)");
        assert!(refs.is_empty());
        let (expr, refs) = spdx_expression(&[
            "public-domain".into(),
            "GPL-3+ with GCC-exception-3.1 exception".into(),
            "LGPL-2.1".into(),
            "MPL-2.0+".into(),
        ]);
        assert_eq!(
            expr,
            "LicenseRef-public-domain AND LicenseRef-GPL-3--with-GCC-exception-3.1-exception AND LGPL-2.1-only AND LicenseRef-MPL-2.0-"
        );
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].1, "public-domain");
    }
}
