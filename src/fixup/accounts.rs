//! Users and groups: base-passwd's master files (what its postinst copies), the recipe's
//! users with their fixed ids, and the shadow files `shadowconfig on` writes.

use super::{FixupError, FixupInput, put};
use crate::layer::tree::Tree;
use std::collections::BTreeMap;

/// The home of system users that have none (adduser(8)): named in passwd, never created.
const NO_HOME: &str = "/nonexistent";

/// Names to ids, for resolving `owner = "user:group"` in recipes.
#[derive(Debug, Default)]
pub struct Accounts {
    pub users: BTreeMap<String, (u32, u32)>,
    pub groups: BTreeMap<String, u32>,
}

impl Accounts {
    /// `"user:group"`, `"user"`, or numeric ids.
    pub fn owner(&self, spec: &str) -> Option<(u64, u64)> {
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        let uid = user
            .parse()
            .ok()
            .or_else(|| self.users.get(user).map(|u| u.0))?;
        let gid = if group.is_empty() {
            self.users
                .get(user)
                .map(|u| u.1)
                .or_else(|| user.parse().ok())?
        } else {
            group
                .parse()
                .ok()
                .or_else(|| self.groups.get(group).copied())?
        };
        Some((uid as u64, gid as u64))
    }
}

pub fn build(input: &FixupInput, tree: &mut Tree) -> Result<Accounts, FixupError> {
    let mut accounts = Accounts::default();
    let master = |name: &str| {
        input
            .retained(&format!("usr/share/base-passwd/{name}.master"))
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let (Some(passwd), Some(group)) = (master("passwd"), master("group")) else {
        if input.users.is_empty() {
            return Ok(accounts);
        }
        return Err(FixupError::User {
            name: input.users[0].name.clone(),
            reason: "recipe users need base-passwd in the image".into(),
        });
    };
    // `shadowconfig on` (passwd's postinst) moves the password fields to the shadow files.
    let shadowed = input.has_package("passwd");
    let shadow_field = |line: &str| -> String {
        let mut f: Vec<&str> = line.split(':').collect();
        if shadowed && f.len() > 1 {
            f[1] = "x";
        }
        f.join(":")
    };
    let mut passwd_lines: Vec<String> = passwd.lines().map(shadow_field).collect();
    let mut group_lines: Vec<String> = group.lines().map(shadow_field).collect();
    for line in &passwd_lines {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 {
            accounts.users.insert(
                f[0].into(),
                (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
            );
        }
    }
    for line in &group_lines {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 {
            accounts
                .groups
                .insert(f[0].into(), f[2].parse().unwrap_or(0));
        }
    }
    for user in input.users {
        if accounts.users.contains_key(&user.name) {
            return Err(FixupError::User {
                name: user.name.clone(),
                reason: "already defined by base-passwd".into(),
            });
        }
        if let Some((other, _)) = accounts.users.iter().find(|(_, ids)| ids.0 == user.uid) {
            return Err(FixupError::User {
                name: user.name.clone(),
                reason: format!("uid {} is taken by {other}", user.uid),
            });
        }
        let home = user
            .home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", user.name));
        let shell = user.shell.clone().unwrap_or_else(|| "/bin/sh".into());
        passwd_lines.push(format!(
            "{}:x:{}:{}::{}:{}",
            user.name, user.uid, user.gid, home, shell
        ));
        accounts
            .users
            .insert(user.name.clone(), (user.uid, user.gid));
        if !accounts.groups.values().any(|g| *g == user.gid) {
            group_lines.push(format!("{}:x:{}:", user.name, user.gid));
            accounts.groups.insert(user.name.clone(), user.gid);
        }
    }
    // Supplementary groups: append members to existing group lines.
    for user in input.users {
        for g in &user.groups {
            let Some(line) = group_lines
                .iter_mut()
                .find(|l| l.split(':').next() == Some(g.as_str()))
            else {
                return Err(FixupError::User {
                    name: user.name.clone(),
                    reason: format!("group {g} does not exist"),
                });
            };
            if !line.ends_with(':') {
                line.push(',');
            }
            line.push_str(&user.name);
        }
    }
    let days = input.source_date_epoch / 86_400;
    let shadow: String = passwd_lines
        .iter()
        .map(|l| {
            format!(
                "{}:*:{days}:0:99999:7:::\n",
                l.split(':').next().unwrap_or("")
            )
        })
        .collect();
    let gshadow: String = group_lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            format!("{}:*::{}\n", f[0], f.get(3).copied().unwrap_or(""))
        })
        .collect();
    let shadow_gid = accounts.groups.get("shadow").copied().unwrap_or(42) as u64;
    put(
        input,
        tree,
        "etc/passwd",
        input.file(lines(&passwd_lines), 0o644),
    );
    put(
        input,
        tree,
        "etc/group",
        input.file(lines(&group_lines), 0o644),
    );
    if input.has_package("passwd") {
        let mut node = input.file(shadow, 0o640);
        node.gid = shadow_gid;
        put(input, tree, "etc/shadow", node);
        let mut node = input.file(gshadow, 0o640);
        node.gid = shadow_gid;
        put(input, tree, "etc/gshadow", node);
    }
    for user in input.users {
        let home = user
            .home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", user.name));
        // adduser's rule: /nonexistent is the home of users that must have none, and is
        // never created.
        if home != NO_HOME && !input.exists(&home) {
            let mut node = input.dir(0o755);
            node.uid = user.uid as u64;
            node.gid = user.gid as u64;
            put(input, tree, &home, node);
        }
    }
    Ok(accounts)
}

fn lines(v: &[String]) -> String {
    let mut s = v.join("\n");
    s.push('\n');
    s
}
