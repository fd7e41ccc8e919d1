//! Wheel file names and which wheels a target accepts (PEP 425 / 427 / 600).
//!
//! A target is one image arch with its interpreter: CPython `3.X`, Linux, glibc from the
//! image's `libc6`. It accepts `cp3X`, `abi3` (for `cp3Y`, Y ≤ X) and pure `py3`/`none`
//! wheels; `manylinux_2_N` up to its glibc (with the legacy `manylinux1`, `2010`, `2014`
//! aliases) for its machine; never musllinux or plain `linux_*`.

/// One `python-abi-platform` triple a wheel declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

/// A parsed wheel file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelName {
    pub name: String,
    pub version: String,
    pub tags: Vec<Tag>,
}

impl WheelName {
    pub fn parse(file: &str) -> Option<WheelName> {
        let stem = file.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return None;
        }
        let n = parts.len();
        let mut tags = Vec::new();
        for py in parts[n - 3].split('.') {
            for abi in parts[n - 2].split('.') {
                for plat in parts[n - 1].split('.') {
                    tags.push(Tag {
                        python: py.into(),
                        abi: abi.into(),
                        platform: plat.into(),
                    });
                }
            }
        }
        Some(WheelName {
            name: parts[0].into(),
            version: parts[1].into(),
            tags,
        })
    }
}

/// What one image arch's interpreter accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Python minor version, e.g. 13 for CPython 3.13.
    pub minor: u32,
    /// `x86_64` or `aarch64`.
    pub machine: String,
    /// glibc (major, minor), e.g. (2, 41).
    pub glibc: (u32, u32),
}

impl Target {
    /// The machine name wheels use for a Debian arch.
    pub fn machine_of(arch: &str) -> &'static str {
        match arch {
            "arm64" => "aarch64",
            _ => "x86_64",
        }
    }

    fn platform_score(&self, platform: &str) -> Option<u32> {
        if platform == "any" {
            return Some(0);
        }
        let (glibc, machine) = if let Some(rest) = platform.strip_prefix("manylinux_") {
            let mut it = rest.splitn(3, '_');
            let major: u32 = it.next()?.parse().ok()?;
            let minor: u32 = it.next()?.parse().ok()?;
            ((major, minor), it.next()?)
        } else if let Some(m) = platform.strip_prefix("manylinux2014_") {
            ((2, 17), m)
        } else if let Some(m) = platform.strip_prefix("manylinux2010_") {
            ((2, 12), m)
        } else if let Some(m) = platform.strip_prefix("manylinux1_") {
            ((2, 5), m)
        } else {
            return None;
        };
        (machine == self.machine && glibc <= self.glibc).then_some(1000 + glibc.1)
    }

    fn python_score(&self, tag: &Tag) -> Option<u32> {
        let cp = format!("cp3{}", self.minor);
        match (tag.python.as_str(), tag.abi.as_str()) {
            (p, a) if p == cp && a == cp => Some(300),
            (p, "abi3") if p.starts_with("cp3") => {
                let minor: u32 = p[3..].parse().ok()?;
                (minor <= self.minor).then_some(200 + minor)
            }
            (p, "none") if p == cp => Some(150),
            (p, "none") if p == "py3" || p == format!("py3{}", self.minor) => Some(100),
            _ => None,
        }
    }

    /// How well a wheel fits (higher is better), or `None` if the target cannot use it.
    pub fn score(&self, wheel: &WheelName) -> Option<u32> {
        wheel
            .tags
            .iter()
            .filter_map(|t| {
                Some(self.python_score(t)? * 10_000 + self.platform_score(&t.platform)?)
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(machine: &str) -> Target {
        Target {
            minor: 13,
            machine: machine.into(),
            glibc: (2, 41),
        }
    }

    #[test]
    fn parses_compressed_tag_sets() {
        let w = WheelName::parse(
            "numpy-2.4.6-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        )
        .unwrap();
        assert_eq!(
            (w.name.as_str(), w.version.as_str(), w.tags.len()),
            ("numpy", "2.4.6", 2)
        );
        assert!(WheelName::parse("numpy-2.4.6.tar.gz").is_none());
        assert_eq!(
            WheelName::parse("pkg-1.0-1build-py3-none-any.whl")
                .unwrap()
                .version,
            "1.0"
        );
    }

    #[test]
    fn accepts_what_the_interpreter_and_glibc_allow() {
        let x86 = target("x86_64");
        let ok = |f: &str| x86.score(&WheelName::parse(f).unwrap()).is_some();
        assert!(ok("a-1-py3-none-any.whl"));
        assert!(ok(
            "a-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(ok("a-1-cp39-abi3-manylinux_2_28_x86_64.whl"));
        assert!(
            !ok("a-1-cp313-cp313-manylinux_2_42_x86_64.whl"),
            "newer glibc than the image"
        );
        assert!(
            !ok("a-1-cp313-cp313-manylinux_2_17_aarch64.whl"),
            "other machine"
        );
        assert!(!ok("a-1-cp313-cp313-musllinux_1_2_x86_64.whl"));
        assert!(
            !ok("a-1-cp312-cp312-manylinux_2_17_x86_64.whl"),
            "other Python"
        );
        assert!(
            !ok("a-1-cp314-abi3-manylinux_2_17_x86_64.whl"),
            "abi3 for a newer Python"
        );
        assert!(!ok("a-1-py2-none-any.whl"));
        // A platform wheel for this interpreter beats abi3, which beats pure Python.
        let s = |f: &str| x86.score(&WheelName::parse(f).unwrap()).unwrap();
        assert!(
            s("a-1-cp313-cp313-manylinux_2_17_x86_64.whl")
                > s("a-1-cp38-abi3-manylinux_2_17_x86_64.whl")
        );
        assert!(s("a-1-cp38-abi3-manylinux_2_17_x86_64.whl") > s("a-1-py3-none-any.whl"));
    }
}
