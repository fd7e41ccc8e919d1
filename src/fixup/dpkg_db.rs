//! The dpkg database, so that `dpkg --audit` is silent, `apt-get check` passes and apt
//! can install, upgrade and remove packages on top of the image: `status` (control fields
//! in dpkg's order, `Status: install ok installed`, `Conffiles`), `info/` (format, lists,
//! md5sums, conffiles, triggers, scripts…), `triggers/`, and the empty state files.

use super::{FixupInput, InstalledPackage, put};
use crate::deb822::Paragraphs;
use crate::layer::tree::Tree;
use std::collections::BTreeMap;

/// dpkg's own field order in `status`; other fields follow in control-file order.
const FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Maintainer",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
];

/// Control members copied into `info/` (besides the generated `.list`).
const INFO_MEMBERS: &[&str] = &[
    "md5sums",
    "conffiles",
    "triggers",
    "shlibs",
    "symbols",
    "templates",
    "config",
    "preinst",
    "postinst",
    "prerm",
    "postrm",
];

/// One package's paragraph for `status`.
pub fn status_paragraph(package: &InstalledPackage) -> String {
    let control = package.member_text("control").unwrap_or_default();
    let mut fields: Vec<(String, String)> = Paragraphs::new(&control)
        .next()
        .and_then(Result::ok)
        .map(|p| {
            p.fields()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    fields.push(("Status".into(), " install ok installed".into()));
    if !package.conffiles.is_empty() {
        let mut value = String::new();
        for (path, md5) in &package.conffiles {
            value.push_str(&format!("\n {path} {md5}"));
        }
        fields.push(("Conffiles".into(), value));
    }
    let rank = |name: &str| {
        FIELD_ORDER
            .iter()
            .position(|f| f.eq_ignore_ascii_case(name))
            .unwrap_or(FIELD_ORDER.len())
    };
    fields.sort_by_key(|(n, _)| rank(n)); // stable: unknown fields keep their order
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(&name);
        out.push(':');
        out.push_str(value.trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

pub fn build(input: &FixupInput, tree: &mut Tree) {
    let db = "var/lib/dpkg";
    let mut status = String::new();
    let mut file_triggers: Vec<String> = Vec::new();
    let mut named_triggers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in input.packages {
        status.push_str(&status_paragraph(package));
        status.push('\n');
        let info = package.info_name();
        let mut list = package.list.join("\n");
        list.push('\n');
        put(
            input,
            tree,
            &format!("{db}/info/{info}.list"),
            input.file(list, 0o644),
        );
        for member in INFO_MEMBERS {
            if let Some(data) = package.control.get(*member) {
                let executable = matches!(
                    *member,
                    "config" | "preinst" | "postinst" | "prerm" | "postrm"
                );
                put(
                    input,
                    tree,
                    &format!("{db}/info/{info}.{member}"),
                    input.file(data.clone(), if executable { 0o755 } else { 0o644 }),
                );
            }
        }
        if let Some(triggers) = package.member_text("triggers") {
            for line in triggers.lines() {
                let mut words = line.split_whitespace();
                let (Some(directive), Some(name)) = (words.next(), words.next()) else {
                    continue;
                };
                let who = match directive {
                    "interest" | "interest-await" => package.name.clone(),
                    "interest-noawait" => format!("{}/noawait", package.name),
                    _ => continue,
                };
                if name.starts_with('/') {
                    file_triggers.push(format!("{name} {who}"));
                } else {
                    named_triggers
                        .entry(name.to_string())
                        .or_default()
                        .push(who);
                }
            }
        }
    }
    put(
        input,
        tree,
        &format!("{db}/status"),
        input.file(status, 0o644),
    );
    put(
        input,
        tree,
        &format!("{db}/info/format"),
        input.file("1\n", 0o644),
    );
    file_triggers.sort();
    let file: String = file_triggers.iter().map(|l| format!("{l}\n")).collect();
    put(
        input,
        tree,
        &format!("{db}/triggers/File"),
        input.file(file, 0o644),
    );
    put(
        input,
        tree,
        &format!("{db}/triggers/Unincorp"),
        input.file(Vec::new(), 0o644),
    );
    for (name, mut who) in named_triggers {
        who.sort();
        let text: String = who.iter().map(|w| format!("{w}\n")).collect();
        put(
            input,
            tree,
            &format!("{db}/triggers/{name}"),
            input.file(text, 0o644),
        );
    }
    for f in ["available", "diversions", "statoverride"] {
        put(
            input,
            tree,
            &format!("{db}/{f}"),
            input.file(Vec::new(), 0o644),
        );
    }
    put(
        input,
        tree,
        &format!("{db}/arch"),
        input.file(format!("{}\n", input.arch), 0o644),
    );
    put(input, tree, &format!("{db}/updates"), input.dir(0o755));
    put(input, tree, &format!("{db}/alternatives"), input.dir(0o755));
    put(input, tree, &format!("{db}/triggers"), input.dir(0o755));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_dpkg_field_order_and_keeps_values() {
        let control = "Package: dash\nVersion: 0.5.12-12\nArchitecture: amd64\nEssential: yes\nDepends: debianutils (>= 5.6-0.1)\nPre-Depends: libc6 (>= 2.38)\nDescription: POSIX-compliant shell\n The Debian Almquist Shell.\n .\n More.\nX-Custom: kept\nPriority: required\n";
        let p = InstalledPackage {
            name: "dash".into(),
            control: [("control".to_string(), control.as_bytes().to_vec())].into(),
            conffiles: vec![("/etc/x".into(), "0123".into())],
            ..Default::default()
        };
        assert_eq!(
            status_paragraph(&p),
            "Package: dash\nEssential: yes\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: 0.5.12-12\nDepends: debianutils (>= 5.6-0.1)\nPre-Depends: libc6 (>= 2.38)\nConffiles:\n /etc/x 0123\nDescription: POSIX-compliant shell\n The Debian Almquist Shell.\n .\n More.\nX-Custom: kept\n"
        );
    }
}
