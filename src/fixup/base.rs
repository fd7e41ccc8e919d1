//! The files the scripts of base-files, libc-bin, login, debianutils, tzdata and netbase
//! write on first configuration.

use super::accounts::Accounts;
use super::{FixupInput, put};
use crate::layer::tree::Tree;

pub fn build(input: &FixupInput, accounts: &Accounts, tree: &mut Tree) {
    if input.has_package("base-files") {
        base_files(input, accounts, tree);
    }
    if let Some(ns) = input.retained("usr/share/libc-bin/nsswitch.conf") {
        put(
            input,
            tree,
            "etc/nsswitch.conf",
            input.file(ns.to_vec(), 0o644),
        );
    }
    if input.has_package("login") || input.has_package("passwd") {
        for f in ["etc/subuid", "etc/subgid"] {
            put(input, tree, f, input.file(Vec::new(), 0o644));
        }
    }
    if input.has_package("debianutils") {
        shells(input, tree);
    }
    if input.has_package("tzdata") && input.exists("usr/share/zoneinfo/Etc/UTC") {
        put(
            input,
            tree,
            "etc/localtime",
            input.symlink("/usr/share/zoneinfo/Etc/UTC"),
        );
        put(input, tree, "etc/timezone", input.file("Etc/UTC\n", 0o644));
    }
    if input.has_package("netbase") && !input.exists("etc/hosts") {
        put(input, tree, "etc/hosts", input.file("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n", 0o644));
    }
}

fn base_files(input: &FixupInput, accounts: &Accounts, tree: &mut Tree) {
    for (from, to) in [
        ("dot.profile", "root/.profile"),
        ("dot.bashrc", "root/.bashrc"),
        ("profile", "etc/profile"),
        ("motd", "etc/motd"),
    ] {
        if !input.exists(to)
            && let Some(data) = input.retained(&format!("usr/share/base-files/{from}"))
        {
            put(input, tree, to, input.file(data.to_vec(), 0o644));
        }
    }
    if input.exists("usr/share/info")
        && !input.exists("usr/share/info/dir")
        && let Some(data) = input.retained("usr/share/base-files/info.dir")
    {
        put(
            input,
            tree,
            "usr/share/info/dir",
            input.file(data.to_vec(), 0o644),
        );
    }
    if input.exists("etc/dpkg/origins/debian") && !input.exists("etc/dpkg/origins/default") {
        put(
            input,
            tree,
            "etc/dpkg/origins/default",
            input.symlink("debian"),
        );
    }
    for d in ["mnt", "srv", "opt", "etc/opt", "var/opt", "media"] {
        if !input.exists(d) {
            put(input, tree, d, input.dir(0o755));
        }
    }
    let mail_gid = accounts.groups.get("mail").copied().unwrap_or(8) as u64;
    if !input.exists("var/mail") {
        let mut node = input.dir(0o2775);
        node.gid = mail_gid;
        put(input, tree, "var/mail", node);
    }
    put(input, tree, "var/spool/mail", input.symlink("../mail"));
    put(input, tree, "run/lock", input.dir(0o1777));
    put(input, tree, "var/run", input.symlink("/run"));
    put(input, tree, "var/lock", input.symlink("/run/lock"));
    for d in [
        "usr/local",
        "usr/local/share",
        "usr/local/share/man",
        "usr/local/bin",
        "usr/local/games",
        "usr/local/lib",
        "usr/local/libexec",
        "usr/local/include",
        "usr/local/sbin",
        "usr/local/src",
        "usr/local/etc",
    ] {
        if !input.exists(d) {
            put(input, tree, d, input.dir(0o755));
        }
    }
    put(input, tree, "usr/local/man", input.symlink("share/man"));
    let utmp_gid = accounts.groups.get("utmp").copied().unwrap_or(43) as u64;
    for (f, mode) in [
        ("var/log/wtmp", 0o664),
        ("var/log/btmp", 0o660),
        ("var/log/lastlog", 0o664),
    ] {
        let mut node = input.file(Vec::new(), mode);
        node.gid = utmp_gid;
        put(input, tree, f, node);
    }
}

/// `/etc/shells` as `update-shells` writes it: the template's lines, then every shell of
/// the template and of `shells.d/*` (in C order), each followed by its real path when a
/// merged-/usr directory symlink leads there (`/bin/sh` → `/usr/bin/sh`); plus the state
/// file listing them.
fn shells(input: &FixupInput, tree: &mut Tree) {
    let Some(template) = input.retained("usr/share/debianutils/shells") else {
        return;
    };
    let template = String::from_utf8_lossy(template).into_owned();
    let mut sources = vec![template.clone()];
    let prefix = "usr/share/debianutils/shells.d/";
    for (_, content) in input
        .retained
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
    {
        sources.push(String::from_utf8_lossy(content).into_owned());
    }
    let mut shells: Vec<String> = Vec::new();
    for text in &sources {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").to_string();
            if line.is_empty() {
                continue;
            }
            let real = match line.split_once('/').map(|(_, r)| r.split_once('/')) {
                Some(Some((dir, rest))) if ["bin", "sbin"].contains(&dir) => {
                    format!("/usr/{dir}/{rest}")
                }
                _ => line.clone(),
            };
            for shell in [line, real] {
                if !shells.contains(&shell) {
                    shells.push(shell);
                }
            }
        }
    }
    let mut etc: String = template
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut state = String::new();
    for shell in &shells {
        etc.push_str(shell);
        etc.push('\n');
        state.push_str(shell);
        state.push('\n');
    }
    put(input, tree, "etc/shells", input.file(etc, 0o644));
    put(
        input,
        tree,
        "var/lib/shells.state",
        input.file(state, 0o644),
    );
}
