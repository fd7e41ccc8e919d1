//! `/etc/pam.d/common-*` as `pam-auth-update --package` writes them from the templates in
//! `/usr/share/pam/` and the profiles in `/usr/share/pam-configs/` (the ones marked
//! `Default: yes`, by priority), with its state in `/var/lib/pam/`; plus the files
//! libpam-modules' postinst creates.

use super::{FixupInput, put};
use crate::deb822::Paragraphs;
use crate::layer::tree::Tree;

const TYPES: &[&str] = &[
    "auth",
    "account",
    "password",
    "session",
    "session-noninteractive",
];

struct Profile {
    name: String,
    priority: i64,
    default: bool,
    fields: Vec<(String, String)>,
}

impl Profile {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.trim())
    }

    /// Lines of a field, each with surrounding whitespace removed.
    fn lines(&self, field: &str) -> Vec<String> {
        self.get(field)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Session-noninteractive-*` derive from `Session-*` unless interactive-only.
    fn typed(&self, uctype: &str, suffix: &str) -> Vec<String> {
        if uctype == "Session-noninteractive" {
            if self.get("Session-Interactive-Only") == Some("yes") {
                return Vec::new();
            }
            return self.lines(&format!("Session{suffix}"));
        }
        self.lines(&format!("{uctype}{suffix}"))
    }

    fn kind(&self, uctype: &str) -> Option<&str> {
        if uctype == "Session-noninteractive" {
            if self.get("Session-Interactive-Only") == Some("yes") {
                return None;
            }
            return self.get("Session-Type");
        }
        self.get(&format!("{uctype}-Type"))
    }
}

fn ucfirst(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// pam-auth-update's `merge_one_line` without local edits: `end` becomes the jump count.
fn merge_line(line: &str, count: usize) -> String {
    let mut rest = line;
    let control_end = if rest.starts_with('[') {
        rest.find(']').map(|i| i + 1).unwrap_or(rest.len())
    } else {
        rest.find(char::is_whitespace).unwrap_or(rest.len())
    };
    let control = &rest[..control_end];
    rest = &rest[control_end..];
    let sep_len = rest.len() - rest.trim_start().len();
    let sep = &rest[..sep_len];
    rest = rest.trim_start();
    let module_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let module = &rest[..module_end];
    let opts: Vec<&str> = rest[module_end..].split_whitespace().collect();
    let modline = format!("{control}{sep}{module}").replace("end", &count.to_string());
    format!("{modline} {}\n", opts.join(" "))
}

fn block(profiles: &[&Profile], uctype: &str, which: &str, ty: &str) -> String {
    let members: Vec<&&Profile> = profiles
        .iter()
        .filter(|p| p.kind(uctype) == Some(which))
        .collect();
    let lines_of = |i: usize, p: &Profile| {
        let initial = p.typed(uctype, "-Initial");
        if i == 0 && !initial.is_empty() {
            initial
        } else {
            p.typed(uctype, "")
        }
    };
    let mut count: usize = members
        .iter()
        .enumerate()
        .map(|(i, p)| lines_of(i, p).len())
        .sum();
    if which == "Additional" {
        count = count.saturating_sub(1);
    }
    let mut out = String::new();
    if which == "Primary" && count == 0 {
        out.push_str(&format!("{ty}\t[default=1]\t\t\tpam_permit.so\n"));
    }
    for (i, p) in members.iter().enumerate() {
        for line in lines_of(i, p) {
            out.push_str(&format!("{ty}\t{}", merge_line(&line, count)));
            count = count.saturating_sub(1);
        }
    }
    out
}

pub fn build(input: &FixupInput, tree: &mut Tree) {
    if input.has_package("libpam-modules") {
        put(
            input,
            tree,
            "etc/environment",
            input.file(Vec::new(), 0o644),
        );
        put(
            input,
            tree,
            "etc/security/opasswd",
            input.file(Vec::new(), 0o600),
        );
    }
    if !input.has_package("libpam-runtime") {
        return;
    }
    let prefix = "usr/share/pam-configs/";
    let mut profiles: Vec<Profile> = input
        .retained
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| {
            let text = String::from_utf8_lossy(v).into_owned();
            let p = Paragraphs::new(&text).next()?.ok()?;
            Some(Profile {
                name: k[prefix.len()..].to_string(),
                priority: p.get("Priority").and_then(|v| v.parse().ok()).unwrap_or(0),
                default: p.get("Default") == Some("yes"),
                fields: p
                    .fields()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
        })
        .collect();
    profiles.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    let enabled: Vec<&Profile> = profiles.iter().filter(|p| p.default).collect();
    for t in TYPES {
        let Some(template) = input.retained(&format!("usr/share/pam/common-{t}")) else {
            continue;
        };
        let template = String::from_utf8_lossy(template);
        let uctype = ucfirst(t);
        let ty = t.trim_end_matches("-noninteractive");
        let mut out = String::new();
        let mut state = 0;
        for line in template.split_inclusive('\n') {
            match state {
                1 if line.starts_with("# here's the fallback if no module succeeds") => state = 2,
                1 => continue,
                3 if line.starts_with("# end of pam-auth-update config") => state = 4,
                3 => continue,
                _ => {}
            }
            out.push_str(line);
            if state == 0
                && line.starts_with("# here are the per-package modules (the \"Primary\" block)")
            {
                out.push_str(&block(&enabled, &uctype, "Primary", ty));
                state = 1;
            } else if state == 2
                && line.starts_with(
                    "# and here are more per-package modules (the \"Additional\" block)",
                )
            {
                out.push_str(&block(&enabled, &uctype, "Additional", ty));
                state = 3;
            }
        }
        put(
            input,
            tree,
            &format!("etc/pam.d/common-{t}"),
            input.file(out, 0o644),
        );
        let mut saved = String::new();
        if !enabled.iter().any(|p| p.kind(&uctype) == Some("Primary")) {
            saved.push_str("Module: null\n[default=1]\t\t\tpam_permit.so\n");
        }
        for (i, p) in enabled
            .iter()
            .filter(|p| p.kind(&uctype).is_some())
            .enumerate()
        {
            let initial = p.typed(&uctype, "-Initial");
            let lines = if i == 0 && !initial.is_empty() {
                initial
            } else {
                p.typed(&uctype, "")
            };
            saved.push_str(&format!("Module: {}\n{}\n", p.name, lines.join("\n")));
        }
        put(
            input,
            tree,
            &format!("var/lib/pam/{t}"),
            input.file(saved, 0o644),
        );
    }
    let seen: String = profiles.iter().map(|p| format!("{}\n", p.name)).collect();
    put(input, tree, "var/lib/pam/seen", input.file(seen, 0o644));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_jump_counts_and_pam_auth_update_spacing() {
        assert_eq!(
            merge_line("[success=end default=ignore]\tpam_unix.so nullok", 1),
            "[success=1 default=ignore]\tpam_unix.so nullok\n"
        );
        assert_eq!(
            merge_line("required\tpam_unix.so", 0),
            "required\tpam_unix.so \n"
        );
    }
}
