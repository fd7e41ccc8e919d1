//! Alternatives (`awk`, `which`, `pager`, `java`, …) as `update-alternatives --install` in
//! the packages' postinst scripts declares them: the `/etc/alternatives` symlinks, the
//! links that point there, and `/var/lib/dpkg/alternatives/<name>` in dpkg's format.
//! Lines that use shell variables are skipped: their values are only known at run time.

use super::{FixupInput, put};
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Tree, merged_usr};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub link: String,
    pub path: String,
    pub priority: i64,
    /// slave name → (slave link, slave path)
    pub slaves: BTreeMap<String, (String, String)>,
}

/// Parses every complete `update-alternatives --install` command of a script.
pub fn parse_script(script: &str) -> Vec<(String, Choice)> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some(pos) = line.find("update-alternatives") else {
            continue;
        };
        let words: Vec<&str> = line[pos..].split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "--install") else {
            continue;
        };
        let args = &words[i + 1..];
        if args.len() < 4
            || args
                .iter()
                .take(4)
                .any(|w| w.contains('$') || w.contains('`'))
        {
            continue;
        }
        let Ok(priority) = args[3].parse::<i64>() else {
            continue;
        };
        let mut choice = Choice {
            link: args[0].into(),
            path: args[2].into(),
            priority,
            slaves: BTreeMap::new(),
        };
        let mut rest = &args[4..];
        let mut ok = true;
        while let Some(flag) = rest.first() {
            if *flag == "--slave" && rest.len() >= 4 {
                if rest[1..4]
                    .iter()
                    .any(|w| w.contains('$') || w.contains('`'))
                {
                    ok = false;
                    break;
                }
                choice
                    .slaves
                    .insert(rest[2].into(), (rest[1].into(), rest[3].into()));
                rest = &rest[4..];
            } else {
                break;
            }
        }
        if ok {
            out.push((args[1].to_string(), choice));
        }
    }
    out
}

pub fn build(input: &FixupInput, tree: &mut Tree) {
    let mut by_name: BTreeMap<String, Vec<Choice>> = BTreeMap::new();
    for package in input.packages {
        if let Some(script) = package.member_text("postinst") {
            for (name, choice) in parse_script(&script) {
                if input.exists(&image_path(&choice.path)) {
                    by_name.entry(name).or_default().push(choice);
                }
            }
        }
    }
    for (name, mut choices) in by_name {
        // Highest priority wins; ties go to the path that sorts first, for determinism.
        choices.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.path.cmp(&b.path))
        });
        choices.dedup_by(|a, b| a.path == b.path);
        let best = choices[0].clone();
        put(
            input,
            tree,
            &format!("etc/alternatives/{name}"),
            input.symlink(&best.path),
        );
        put(
            input,
            tree,
            &image_path(&best.link),
            input.symlink(&format!("/etc/alternatives/{name}")),
        );
        // Slave names across all choices, sorted (as update-alternatives keeps them).
        let mut slave_names: BTreeMap<String, String> = BTreeMap::new();
        for c in &choices {
            for (sname, (slink, _)) in &c.slaves {
                slave_names
                    .entry(sname.clone())
                    .or_insert_with(|| slink.clone());
            }
        }
        for (sname, (slink, spath)) in &best.slaves {
            if input.exists(&image_path(spath)) {
                put(
                    input,
                    tree,
                    &format!("etc/alternatives/{sname}"),
                    input.symlink(spath),
                );
                put(
                    input,
                    tree,
                    &image_path(slink),
                    input.symlink(&format!("/etc/alternatives/{sname}")),
                );
            }
        }
        let mut state = format!("auto\n{}\n", best.link);
        for (sname, slink) in &slave_names {
            state.push_str(&format!("{sname}\n{slink}\n"));
        }
        state.push('\n');
        for c in &choices {
            state.push_str(&format!("{}\n{}\n", c.path, c.priority));
            for sname in slave_names.keys() {
                state.push_str(c.slaves.get(sname).map(|s| s.1.as_str()).unwrap_or(""));
                state.push('\n');
            }
        }
        state.push('\n');
        put(
            input,
            tree,
            &format!("var/lib/dpkg/alternatives/{name}"),
            input.file(state, 0o644),
        );
    }
}

/// An absolute path as it sits in the image: no leading `/`, merged /usr applied.
fn image_path(p: &str) -> String {
    merged_usr(p.trim_start_matches('/'), &EntryKind::File)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_continued_lines_with_slaves_and_skips_variables() {
        let script = "if true; then\n        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n            --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\nupdate-alternatives --install /usr/bin/java java $jdk/bin/java 1711\n";
        let parsed = parse_script(script);
        assert_eq!(parsed.len(), 1);
        let (name, choice) = &parsed[0];
        assert_eq!(
            (name.as_str(), choice.path.as_str(), choice.priority),
            ("awk", "/usr/bin/mawk", 5)
        );
        assert_eq!(
            choice.slaves["nawk"],
            ("/usr/bin/nawk".to_string(), "/usr/bin/mawk".to_string())
        );
    }
}
