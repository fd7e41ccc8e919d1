//! Alternatives (`awk`, `which`, `pager`, `java`, …) as `update-alternatives --install` in
//! the packages' postinst scripts declares them: the `/etc/alternatives` symlinks, the
//! links that point there, and `/var/lib/dpkg/alternatives/<name>` in dpkg's format.
//! Plain variables and simple `for` loops are expanded (`parse_with_variables`); lines
//! whose values are only known at run time are skipped.

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

/// Expands `$name` and `${name}` with `vars` (longest names first), a few rounds deep.
fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for _ in 0..4 {
        let before = out.clone();
        for (name, value) in vars {
            out = out
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        if out == before {
            break;
        }
    }
    out
}

/// A `for VAR in …; do … done` loop of a maintainer script.
struct ShellLoop {
    var: String,
    /// The words iterated over: literal ones, or `$name` of a plain assignment.
    words: Vec<String>,
    /// Per-iteration `NAME=`echo $VAR | sed -e 's/FROM/TO/'`` assignments.
    derived: Vec<(String, String, String)>,
}

impl ShellLoop {
    /// `for tiger in tigervncserver Xtigervnc; do` or `for i in $jre_tools; do`.
    fn parse(line: &str) -> Option<ShellLoop> {
        let rest = line.strip_prefix("for ")?;
        let (var, list) = rest.split_once(" in ")?;
        let list = list.split(';').next()?.trim();
        let words: Vec<String> = list.split_whitespace().map(str::to_string).collect();
        let literal = words
            .iter()
            .all(|w| !w.contains(['$', '`', '*', '"', '\'']));
        let one_variable = words.len() == 1 && words[0].starts_with('$');
        (is_name(var) && !words.is_empty() && (literal || one_variable)).then(|| ShellLoop {
            var: var.to_string(),
            words,
            derived: Vec::new(),
        })
    }

    /// `notiger=`echo $tiger | sed -e 's/tiger//'`;` (tigervnc's scripts).
    fn parse_derived(&self, line: &str) -> Option<(String, String, String)> {
        let (name, value) = line.trim_end_matches(';').split_once('=')?;
        let value = value.strip_prefix('`')?.strip_suffix('`')?;
        let (echo, sed) = value.split_once('|')?;
        if echo.trim() != format!("echo ${}", self.var) {
            return None;
        }
        let script = sed.trim().strip_prefix("sed -e ")?.trim_matches('\'');
        let mut parts = script.strip_prefix("s/")?.split('/');
        let (from, to) = (parts.next()?, parts.next()?);
        let plain = |t: &str| !t.contains(['.', '*', '[', '^', '$', '\\', '&']);
        (is_name(name) && parts.next() == Some("") && plain(from) && plain(to))
            .then(|| (name.to_string(), from.to_string(), to.to_string()))
    }

    /// The words, a `$name` list looked up in the script's plain assignments.
    fn words(&self, globals: &[(String, String)]) -> Vec<String> {
        match self.words[0].strip_prefix('$') {
            Some(list) => globals
                .iter()
                .find(|(n, _)| n == list)
                .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            None => self.words.clone(),
        }
    }

    /// The loop variable and the derived ones, for one word.
    fn bindings(&self, word: &str) -> Vec<(String, String)> {
        let mut vars = vec![(self.var.clone(), word.to_string())];
        for (name, from, to) in &self.derived {
            vars.push((name.clone(), word.replacen(from.as_str(), to, 1)));
        }
        vars
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `update-alternatives --install` commands written with the script's plain variable
/// assignments (`DIR=…`, `basedir=…`, `jre_tools='java keytool …'`, `slave1="--slave …"`)
/// substituted, and inside `for` loops once per word: OpenJDK's `for i in $tools; do …
/// /usr/bin/$i $i $basedir/bin/$i …` and tigervnc's `for tiger in tigervncpasswd; do
/// notiger=`echo $tiger | sed -e 's/tiger//'`; … $bindir/$notiger …`. Slaves whose file
/// `exists` does not know are left out, as the script's own `[ -e … ]` checks do.
pub fn parse_with_variables(script: &str, exists: &dyn Fn(&str) -> bool) -> Vec<(String, Choice)> {
    let joined = script.replace("\\\n", " ");
    let mut globals: Vec<(String, String)> = Vec::new();
    let mut shell_loop: Option<ShellLoop> = None;
    let mut out = Vec::new();
    let assignment = |line: &str| -> Option<(String, String)> {
        let (name, value) = line.trim().split_once('=')?;
        if !is_name(name) {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
        (!value.contains('`') && !value.contains("$(")).then(|| {
            (
                name.to_string(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
    };
    let mut emit = |command: &str, vars: &mut Vec<(String, String)>| {
        vars.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
        for (name, mut choice) in parse_script(&expand(command, vars)) {
            choice.slaves.retain(|_, (_, path)| exists(path));
            out.push((name, choice));
        }
    };
    for line in joined.lines() {
        let trimmed = line.trim();
        if let Some(parsed) = ShellLoop::parse(trimmed) {
            shell_loop = Some(parsed);
            continue;
        }
        if trimmed == "done" {
            shell_loop = None;
            continue;
        }
        if let Some(current) = &mut shell_loop
            && let Some(derived) = current.parse_derived(trimmed)
        {
            current.derived.push(derived);
            continue;
        }
        if let Some((name, value)) = assignment(trimmed) {
            if !globals.iter().any(|(n, _)| *n == name) {
                globals.push((name, value));
            }
            continue;
        }
        let install_with_variables = trimmed.contains("update-alternatives")
            && trimmed.contains("--install")
            && trimmed.contains('$');
        if !install_with_variables {
            continue;
        }
        let in_loop = shell_loop
            .as_ref()
            .filter(|l| trimmed.contains(&format!("${}", l.var)));
        let Some(current) = in_loop else {
            // Plain script variables only (e.g. postgis: `$DIR/postgis.control`).
            emit(trimmed, &mut globals.clone());
            continue;
        };
        for word in current.words(&globals) {
            let mut vars = globals.clone();
            vars.extend(current.bindings(&word));
            emit(trimmed, &mut vars);
        }
    }
    out
}

pub fn build(input: &FixupInput, tree: &mut Tree) {
    let mut by_name: BTreeMap<String, Vec<Choice>> = BTreeMap::new();
    for package in input.packages {
        if let Some(script) = package.member_text("postinst") {
            let exists = |path: &str| input.exists(&image_path(path));
            let mut choices = parse_script(&script);
            choices.extend(parse_with_variables(&script, &exists));
            for (name, choice) in choices {
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

    #[test]
    fn expands_openjdk_tool_loops_per_tool_with_existing_man_pages_only() {
        let script = "basedir=/usr/lib/jvm/java-21-openjdk-amd64\nmandir=$basedir/man\npriority=2111\nsrcext=1.gz\ndstext=1.gz\njre_tools='java keytool'\nif [ -n \"$multiarch\" ]; then\n    priority=$(expr $priority - 1)\nfi\n    for i in $jre_tools; do\n\tunset slave1 slave2 || true\n        if [ -e $mandir/man1/$i.$srcext ]; then\n\t    slave1=\"--slave \\\n\t\t/usr/share/man/man1/$i.$dstext \\\n                $i.$dstext \\\n                $mandir/man1/$i.$srcext\"\n\tfi\n        update-alternatives \\\n            --install \\\n            /usr/bin/$i \\\n            $i \\\n            $basedir/bin/$i \\\n            $priority \\\n\t    $slave1 $slave2\n    done\n";
        let exists = |p: &str| p == "/usr/lib/jvm/java-21-openjdk-amd64/man/man1/java.1.gz";
        let parsed = parse_with_variables(script, &exists);
        let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["java", "keytool"]);
        let java = &parsed[0].1;
        assert_eq!(
            (java.link.as_str(), java.path.as_str(), java.priority),
            (
                "/usr/bin/java",
                "/usr/lib/jvm/java-21-openjdk-amd64/bin/java",
                2111
            )
        );
        assert_eq!(
            java.slaves["java.1.gz"],
            (
                "/usr/share/man/man1/java.1.gz".to_string(),
                "/usr/lib/jvm/java-21-openjdk-amd64/man/man1/java.1.gz".to_string()
            )
        );
        assert!(
            parsed[1].1.slaves.is_empty(),
            "keytool has no man page here"
        );
    }

    #[test]
    fn expands_tigervnc_loops_with_names_derived_by_sed() {
        let script = "#!/bin/sh\nset -e\n\nif [ \"$1\" = \"configure\" ]; then\n  bindir=/usr/bin\n  sbindir=/usr/sbin\n  mandir=/usr/share/man\n\n  for tiger in tigervncserver Xtigervnc; do\n    notiger=`echo $tiger | sed -e 's/tiger//'`;\n    update-alternatives --install $bindir/$notiger $notiger $bindir/$tiger 80 \\\n      --slave $mandir/man1/$notiger.1.gz $notiger.1.gz $mandir/man1/$tiger.1.gz\n  done\n  for tiger in tigervncsession; do\n    notiger=`echo $tiger | sed -e 's/tiger//'`;\n    update-alternatives --install $sbindir/$notiger $notiger $sbindir/$tiger 80 \\\n      --slave $mandir/man8/$notiger.8.gz $notiger.8.gz $mandir/man8/$tiger.8.gz\n  done\nfi\n";
        let parsed = parse_with_variables(script, &|p| p.ends_with("/man1/tigervncserver.1.gz"));
        let got: Vec<(&str, &str, &str, usize)> = parsed
            .iter()
            .map(|(n, c)| (n.as_str(), c.link.as_str(), c.path.as_str(), c.slaves.len()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "vncserver",
                    "/usr/bin/vncserver",
                    "/usr/bin/tigervncserver",
                    1
                ),
                ("Xvnc", "/usr/bin/Xvnc", "/usr/bin/Xtigervnc", 0),
                (
                    "vncsession",
                    "/usr/sbin/vncsession",
                    "/usr/sbin/tigervncsession",
                    0
                )
            ]
        );
        assert_eq!(
            parsed[0].1.slaves["vncserver.1.gz"],
            (
                "/usr/share/man/man1/vncserver.1.gz".to_string(),
                "/usr/share/man/man1/tigervncserver.1.gz".to_string()
            )
        );
        assert_eq!(parsed[0].1.priority, 80);
    }

    #[test]
    fn expands_plain_script_variables_in_install_commands() {
        let script = "MAJOR_VERSION=\"3\"\nPGVERSION=\"17\"\nDIR=\"/usr/share/postgresql/$PGVERSION/extension\"\n    update-alternatives \\\n    --install $DIR/postgis.control postgresql-$PGVERSION-postgis.control $DIR/postgis-$MAJOR_VERSION.control ${MAJOR_VERSION}0 \\\n      --slave $DIR/postgis_raster.control postgresql-$PGVERSION-postgis_raster.control $DIR/postgis_raster-$MAJOR_VERSION.control\n";
        let parsed = parse_with_variables(script, &|_| true);
        assert_eq!(parsed.len(), 1);
        let (name, choice) = &parsed[0];
        assert_eq!(name, "postgresql-17-postgis.control");
        assert_eq!(
            (choice.link.as_str(), choice.path.as_str(), choice.priority),
            (
                "/usr/share/postgresql/17/extension/postgis.control",
                "/usr/share/postgresql/17/extension/postgis-3.control",
                30
            )
        );
        assert_eq!(choice.slaves.len(), 1);
    }
}
