#!/bin/sh
# Smoke test of the `base` image, run inside the container by the end-to-end suite:
#   docker run -e CARBON_SERVICES=postgres,redis,ssh,vnc,novnc,rdp -v tests/smoke:/smoke:ro \
#     carbon/base sh /smoke/base.sh
# Each check prints "ok: <what>"; any failing command stops the script (set -e, one
# command per line); the last line is "smoke base: passed".
set -eu
ok() { echo "ok: $*"; }
# The first line of a command's output; the command's failure stops the script.
first() { out=$("$@"); printf '%s\n' "$out" | head -1; }
work=$(mktemp -d)
cd "$work"

# Toolchains: versions and compiled hello worlds.
python3 --version
python -m pip check
# Debian's modules have byte-code in the image (checked-hash, PEP 552), and a start that
# may not write any (-B) uses it.
python3 -B -v -c 'import json' 2>&1 | grep -q 'json/__pycache__/__init__.cpython-3[0-9]*\.pyc matches' ||
    { echo "FAIL: the standard library has no usable byte-code"; exit 1; }
[ "$(python3 -c 'import json; print(open(json.__cached__, "rb").read(8)[4])')" = 3 ] ||
    { echo "FAIL: the standard library's byte-code is not checked-hash"; exit 1; }
ok python
# Node.js 24 from the npm registry, first on PATH, with npm, the AI CLIs and the JS tools.
node -e 'console.log("node", process.version, [1, 2, 3].map(x => x * 2).join(","))'
case "$(node --version)" in v24.*) ;; *) echo "FAIL: node is $(node --version), not 24.x"; exit 1 ;; esac
[ "$(command -v node)" = /opt/carbon/node/bin/node ] || { echo "FAIL: node on PATH is $(command -v node)"; exit 1; }
echo "npm $(npm --version)"
first claude --version
first codex --version
echo "gemini $(gemini --version)"
printf 'const greet = (who: string): string => "hello from " + who;\nconsole.log(greet("TypeScript"));\n' > hello.ts
tsc --outDir ts-out hello.ts
node ts-out/hello.js
echo "pnpm $(pnpm --version)"
echo "yarn $(yarn --version)"
# npm install of a local package, as carbon.
mkdir npm-dep npm-app
printf '{"name":"npm-dep","version":"1.0.0","main":"index.js"}\n' > npm-dep/package.json
printf 'module.exports = "hello from npm";\n' > npm-dep/index.js
printf '{"name":"npm-app","version":"1.0.0"}\n' > npm-app/package.json
chown -R carbon "$work"
runuser -u carbon -- env HOME=/home/carbon sh -c "cd $work/npm-app && npm install --offline --no-audit --no-fund ../npm-dep >/dev/null && node -e 'console.log(require(\"npm-dep\"))'"
ok node
printf '#include <stdio.h>\nint main(void) { puts("hello from C"); return 0; }\n' > hello.c
gcc -O2 -o hello-c hello.c
./hello-c
first cmake --version
ok c
printf 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello from Go") }\n' > hello.go
HOME=$work GOCACHE=$work/go-cache GOPATH=$work/go GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o hello-go hello.go
./hello-go
ok go
printf 'fn main() { println!("hello from Rust"); }\n' > hello.rs
rustc -O -o hello-rs hello.rs
./hello-rs
cargo --version
ok rust
printf 'public class Hello { public static void main(String[] a) { System.out.println("hello from Java " + Runtime.version().feature()); } }\n' > Hello.java
javac Hello.java
java -cp . Hello
ok java
# The JVM's default trust store (Debian links it to /etc/ssl/certs/java/cacerts, which the
# fixups write): TLS clients such as Maven need it. keytool checks the store's integrity
# hash with the standard password.
printf 'import javax.net.ssl.*;\npublic class Trust { public static void main(String[] a) throws Exception { TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()); f.init((java.security.KeyStore) null); int n = ((X509TrustManager) f.getTrustManagers()[0]).getAcceptedIssuers().length; System.out.println("java trusts " + n + " certificates"); System.exit(n >= 100 ? 0 : 1); } }\n' > Trust.java
javac Trust.java
java -cp . Trust
listing=$(keytool -list -cacerts -storepass changeit)
printf '%s\n' "$listing" | grep -q 'debian:digicert_global_root_g2.pem'
ok java trust store
[ "$(Rscript -e 'cat(sum(1:10))' 2>/dev/null)" = 55 ]
ok r
swift --version 2>&1 | grep -i 'swift version'
ok swift

# Databases, started by carbon-entrypoint.
sql() { su postgres -c "psql -X -tA -c \"$1\""; }
sql "CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS postgis;" >/dev/null
got=$(sql "SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector, ST_Distance(ST_MakePoint(0,0), ST_MakePoint(3,4));")
echo "$got"
[ "$got" = '2|5' ]
ok postgresql pgvector postgis
[ "$(redis-cli -p 6379 ping)" = PONG ]
ok redis
[ "$(sqlite3 :memory: 'select 6*7;')" = 42 ]
ok sqlite

# Remote access: every server listens.
listening() { ss -ltn | awk '{print $4}' | grep -q ":$1\$"; }
for port in 2222 5901 6900 3389; do
    i=0
    until listening "$port"; do
        i=$((i + 1)); [ "$i" -lt 30 ] || { echo "FAIL: nothing listens on $port"; ss -ltn; exit 1; }
        sleep 1
    done
    ok "listening on $port"
done
# TigerVNC's commands under their usual names (its postinst's alternatives).
for cmd in vncserver vncpasswd Xvnc vncsession; do
    case $(readlink -f "$(command -v "$cmd")") in
        */tigervnc*|*/Xtigervnc) ;;
        *) echo "FAIL: $cmd is not TigerVNC's"; exit 1 ;;
    esac
done
ok "vncserver, vncpasswd, Xvnc, vncsession are TigerVNC's"

# The caches dpkg triggers write (carbon-store's trigger caches layer): each is what the
# trigger's own tool writes here, from the same files.
triplet=$(basename "$(dirname "$(ls -d /usr/lib/*-linux-gnu/glib-2.0)")")
mkdir "$work/schemas"
"/usr/lib/$triplet/glib-2.0/glib-compile-schemas" --targetdir="$work/schemas" /usr/share/glib-2.0/schemas
cmp "$work/schemas/gschemas.compiled" /usr/share/glib-2.0/schemas/gschemas.compiled
# GSettings programs find the schemas and the image's own defaults (an override file).
[ "$(GSETTINGS_BACKEND=memory gsettings get org.cinnamon.desktop.background primary-color)" = "'#1d4e6e'" ]
ok GSettings schemas
mkdir -p "$work/mime" && cp -r /usr/share/mime/packages "$work/mime/"
update-mime-database "$work/mime" >/dev/null 2>&1
diff -r -x packages "$work/mime" /usr/share/mime
ok shared MIME database
for theme in hicolor Adwaita gnome; do
    cp -r "/usr/share/icons/$theme" "$work/$theme" && rm "$work/$theme/icon-theme.cache"
    gtk-update-icon-cache --force --quiet "$work/$theme"
    cmp "$work/$theme/icon-theme.cache" "/usr/share/icons/$theme/icon-theme.cache"
done
ok icon theme caches
cp -r /usr/share/applications "$work/applications" && rm "$work/applications/mimeinfo.cache"
update-desktop-database "$work/applications"
cmp "$work/applications/mimeinfo.cache" /usr/share/applications/mimeinfo.cache
ok desktop files MIME cache
"/usr/lib/$triplet/gdk-pixbuf-2.0/gdk-pixbuf-query-loaders" > "$work/loaders.cache"
cmp "$work/loaders.cache" "/usr/lib/$triplet/gdk-pixbuf-2.0/2.10.0/loaders.cache"
grep -q '"image/svg+xml"' "$work/loaders.cache"
ok gdk-pixbuf loaders
cp -r "/usr/lib/$triplet/gio/modules" "$work/gio-modules" && rm "$work/gio-modules/giomodule.cache"
"/usr/lib/$triplet/glib-2.0/gio-querymodules" "$work/gio-modules"
cmp "$work/gio-modules/giomodule.cache" "/usr/lib/$triplet/gio/modules/giomodule.cache"
ok GIO modules
# The desktop session the entrypoint started on the VNC display is Cinnamon's.
pgrep -u carbon -f cinnamon-session >/dev/null
ok Cinnamon session
# Login shells get the image's environment.
[ "$(su - carbon -c 'command -v python3')" = /opt/carbon/python/bin/python3 ]
[ "$(su - carbon -c 'command -v node')" = /opt/carbon/node/bin/node ]
ok login shell PATH

# CLI tools.
git --version
first curl --version
jq --version
first rg --version
first gh --version
aws --version
first vim --version
tmux -V
first htop --version
az version --output tsv >/dev/null
ok cli tools
# The user carbon may sudo (asked as root: setuid does not work under qemu-user).
[ "$(id -u carbon)" = 1000 ]
sudo -l -U carbon | grep -q 'NOPASSWD: ALL'
ok "carbon (uid 1000) has sudo"
echo "smoke base: passed"
