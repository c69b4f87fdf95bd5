#!/usr/bin/env bash
# Build the Debian package custode_VERSION_amd64.deb (Debian 12 "bookworm") from
# packaging/debian/, and check it with lintian.
#
# Usage: bash scripts/build-deb.sh [--out DIR] [--version DEBVERSION] [--no-lintian]
#   --out DIR       where the .deb goes (default: dist/ in the checkout)
#   --version V     the package's version (default: custode.agent.__version__, which
#                   pyproject.toml reads); a test build may bump it, e.g. 0.1.0+test1
#   --no-lintian    skip the lintian check
# Needs (checked, with the apt-get line to install what is missing): python3.11 with
# venv (python3-venv), dpkg-dev, lintian, and PyPI for Custode's dependencies.
# scripts/test-deb.sh installs them, builds, and tests the package in a clean root.
#
# How: a hand-rolled `dpkg-deb --build` of a staged tree, not dh-virtualenv.
#   - The venv is made by Debian's own /usr/bin/python3.11 (`-m venv`, so its
#     python is a symlink to the system interpreter the package depends on) in the
#     staging tree, then Custode's wheel is built from a copy of the sources and
#     pip-installed into it with its dependencies; the staging path is then
#     rewritten to /opt/custode/venv in the scripts, activate and pyvenv.cfg, and
#     the build fails if any trace of it is left.
#   - dh-virtualenv (bookworm: 1.2.2) would need a debian/ directory at the root
#     of a source tree and a full dpkg-buildpackage/debhelper run (a source
#     package, build-dependencies, a clean tree): more machinery and time for the
#     same result, and the checkout is shared with other work (a build writes
#     build/ and *.egg-info into it). What debhelper would have generated is
#     written out instead and kept in packaging/debian/: the maintainer scripts
#     (dh_installsystemd's for bookworm, plus the system user, the state dir and
#     the byte-compilation dh_python3 does), conffiles, md5sums, and the shared
#     library dependencies, computed by dpkg-shlibdeps as dh_shlibdeps would.
#   - Generated at build time from the built custode, so they never drift: the
#     man page and the bash/zsh completions (from the parser), the conffile
#     (config/reference.yaml, every key at its default, with agent.data_dir set
#     to /var/lib/custode, checked with `custode config check`), the systemd unit
#     (packaging/linux/custode.service with the installed paths).
#   - When .venv exists, its versions of Custode's dependencies are used as pip
#     constraints, so the package carries the versions the test suite ran with.
set -euo pipefail
umask 022
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DEB_SRC="$REPO/packaging/debian"

say() { printf '== deb build: [%3ss] %s\n' "$SECONDS" "$*"; }
die() { echo "== deb build: ERROR: $*" >&2; exit 1; }

out="$REPO/dist"
deb_version=""
run_lintian=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --version) deb_version="$2"; shift 2 ;;
        --no-lintian) run_lintian=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# --- tools -----------------------------------------------------------------
PY=/usr/bin/python3.11
missing=""
[ -x "$PY" ] || missing="$missing python3.11"
{ [ -x "$PY" ] && "$PY" -c 'import ensurepip, venv' 2>/dev/null; } || missing="$missing python3-venv"
command -v dpkg-shlibdeps >/dev/null || missing="$missing dpkg-dev"
command -v objdump >/dev/null || missing="$missing binutils"
if [ "$run_lintian" = 1 ]; then command -v lintian >/dev/null || missing="$missing lintian"; fi
[ -z "$missing" ] || die "missing Debian packages:$missing; install them with: apt-get install --no-install-recommends$missing"

# --- version -----------------------------------------------------------------
VERSION="$("$PY" - "$REPO/agent/__init__.py" <<'EOF'
import ast, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
        print(node.value.value)
        break
EOF
)"
[ -n "$VERSION" ] || die "no __version__ in agent/__init__.py"
DEB_VERSION="${deb_version:-$VERSION}"
# Debian's version syntax without an epoch or revision: a native package.
[[ "$DEB_VERSION" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "'$DEB_VERSION' is not a Debian version (digits, letters, . + ~)"
DEB_NAME="custode_${DEB_VERSION}_amd64.deb"
say "custode $VERSION, package version $DEB_VERSION"

WORK="$(mktemp -d /var/tmp/custode-build-deb.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# The debhelper layout, so dpkg-shlibdeps finds the binaries where it expects them.
PKG="$WORK/pkg"
ROOT="$PKG/debian/custode"
VENV_DIR=/opt/custode/venv
VENV="$ROOT$VENV_DIR"
mkdir -p "$PKG/debian" "$ROOT"

# --- the changelog: the package version must be its latest entry -----------------
CHANGELOG="$WORK/changelog"
top="$(sed -n '1s/^custode (\([^)]*\)).*/\1/p' "$DEB_SRC/changelog")"
if [ "$top" != "$DEB_VERSION" ]; then
    say "packaging/debian/changelog ends at $top: adding an entry for $DEB_VERSION"
    {
        echo "custode ($DEB_VERSION) bookworm; urgency=medium"
        echo
        echo "  * Built by scripts/build-deb.sh from the source tree."
        echo
        echo " -- Custode developers <custode@provider.example.it>  $(date -R)"
        echo
        cat "$DEB_SRC/changelog"
    } > "$CHANGELOG"
else
    cp "$DEB_SRC/changelog" "$CHANGELOG"
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH="$(date -d "$(sed -n '0,/^ -- /s/^ -- .*>  //p' "$CHANGELOG")" +%s)"
fi
export SOURCE_DATE_EPOCH
BUILD_DATE="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)"

# --- the venv --------------------------------------------------------------------
say "copying the sources"
mkdir -p "$WORK/src"
(cd "$REPO" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md agent collectors) \
    | tar -xf - -C "$WORK/src"

say "creating the venv with $PY -m venv"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
# This machine's pip config may list find-links/index folders that do not exist:
# pip warns once per package about each, which says nothing about the build.
pip_() { "${PIP[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file://.*' is ignored: it is neither a file nor a directory" >&2); }

say "building custode's wheel"
pip_ wheel -q --no-deps -w "$WORK/wheel" "$WORK/src"
WHEEL="$(ls "$WORK"/wheel/custode-"$VERSION"-*.whl)"

constraints=()
if [ -x "$REPO/.venv/bin/python" ]; then
    # Pinned to what the test suite ran with; direct references (editable
    # installs, local plug-ins the tests built) are not constraints.
    "$REPO/.venv/bin/python" -m pip --disable-pip-version-check freeze --exclude-editable 2>/dev/null \
        | grep -v -e ' @ ' -e '^-e ' -e '^custode==' > "$WORK/constraints.txt" || true
    if [ -s "$WORK/constraints.txt" ]; then
        say "pinning dependencies to the versions in .venv ($(wc -l < "$WORK/constraints.txt") pins)"
        constraints=(-c "$WORK/constraints.txt")
    fi
fi
say "installing custode and its dependencies into the venv"
pip_ install -q --no-compile --prefer-binary "${constraints[@]}" "$WHEEL"

# --- run the built custode: version, man page, completions, the conffile -------------------
CUSTODE="$VENV/bin/custode"
# No config or state of the build host is read or written by these commands.
RUN=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8 COLUMNS=80 PYTHONDONTWRITEBYTECODE=1
     CUSTODE_DATA_DIR="$WORK/data")
got="$("${RUN[@]}" "$CUSTODE" --version)"
case "$got" in
    *"$VERSION"*) ;;
    *) die "the built custode says '$got', expected version $VERSION" ;;
esac
say "built: $got"
# The report's templates are package data: a wheel built without them would fail only when a report is due.
templates="$("${RUN[@]}" "$VENV/bin/python" -c \
    'from custode.agent.reports.render import check_templates; print(" ".join(check_templates()))')" \
    || die "the report templates are not in the built custode (pyproject.toml [tool.setuptools.package-data])"
say "report templates: $templates"

say "generating the man page and the bash and zsh completions"
mkdir -p "$ROOT/usr/share/man/man1" "$ROOT/usr/share/bash-completion/completions" \
    "$ROOT/usr/share/zsh/vendor-completions"
"${RUN[@]}" "$CUSTODE" man \
    | sed -E "1s/^(\\.TH CUSTODE 1 \")[0-9-]+\"/\\1$BUILD_DATE\"/" > "$WORK/custode.1"
grep -q '^\.TH CUSTODE 1' "$WORK/custode.1" || die "custode man printed no man page"
gzip -9n < "$WORK/custode.1" > "$ROOT/usr/share/man/man1/custode.1.gz"
"${RUN[@]}" "$CUSTODE" completion bash > "$ROOT/usr/share/bash-completion/completions/custode"
"${RUN[@]}" "$CUSTODE" completion zsh > "$ROOT/usr/share/zsh/vendor-completions/_custode"
bash -n "$ROOT/usr/share/bash-completion/completions/custode" || die "the generated bash completion is not valid bash"
grep -q 'complete .*custode' "$ROOT/usr/share/bash-completion/completions/custode" \
    || die "the generated bash completion registers no completion for custode"

say "writing /etc/custode/custode.yaml from config/reference.yaml"
mkdir -p "$ROOT/etc/custode"
CONFFILE="$ROOT/etc/custode/custode.yaml"
# shellcheck disable=SC2016  # a literal $CUSTODE_DATA_DIR in the reference's comment
data_dir_line='^  # data_dir: /var/lib/custode  *# default: \$CUSTODE_DATA_DIR, else the per-user data dir$'
grep -q "$data_dir_line" "$REPO/config/reference.yaml" \
    || die "config/reference.yaml has no commented-out agent.data_dir line as build-deb.sh expects: adjust the sed below"
{
    cat "$DEB_SRC/custode.yaml.head"
    sed -e "s|$data_dir_line|  data_dir: /var/lib/custode    # the service's state dir (embedded default: \$CUSTODE_DATA_DIR, else the per-user data dir)|" \
        "$REPO/config/reference.yaml"
} > "$CONFFILE"
grep -q '^  data_dir: /var/lib/custode ' "$CONFFILE" || die "agent.data_dir was not set in the conffile"
if ! check="$("${RUN[@]}" "$CUSTODE" config check "$CONFFILE" 2>&1)"; then
    echo "$check" >&2
    die "custode config check fails on the generated conffile"
fi
say "custode config check: ${check//$'\n'/ }"

"${RUN[@]}" "$VENV/bin/python" -m pip --disable-pip-version-check list --format=freeze > "$WORK/venv-packages.txt"

# --- make the venv relocatable to /opt/custode/venv ------------------------------------
say "cleaning the venv and pointing it at $VENV_DIR"
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
find "$VENV" -type f -name '*.pyc' -delete
# macOS Finder droppings some wheels ship (pysnmp 7.1 has two .DS_Store files): junk, and lintian refuses them
find "$VENV" -type f -name '.DS_Store' -delete
rm -f "$VENV/bin/Activate.ps1"
find "$VENV/include" -depth -type d -empty -delete
# Modules are imported, never executed: 0644, as dh_fixperms would make them.
find "$VENV/lib" -type f -exec chmod 0644 {} +
# The wheels' compiled modules, stripped as dh_strip strips shared objects; then
# each is imported, so a module the strip broke fails the build, not the service.
mapfile -t elves < <(find "$VENV/lib" -type f -name '*.so' | LC_ALL=C sort)
[ "${#elves[@]}" -gt 0 ] || die "no compiled module in the venv"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "${elves[@]}"
"${RUN[@]}" "$VENV/bin/python" - "$VENV/lib/python3.11/site-packages" "${elves[@]}" <<'PYEOF' || die "a stripped compiled module does not import"
import importlib, sys
site = sys.argv[1]
for path in sys.argv[2:]:
    module = path[len(site) + 1:].split(".")[0].replace("/", ".")
    importlib.import_module(module)
print(f"== deb build: {len(sys.argv) - 2} compiled modules stripped, each imports")
PYEOF
# direct_url.json names the wheel's path in this build's temporary directory.
for record in "$VENV"/lib/python3.11/site-packages/*.dist-info/RECORD; do
    dist="$(dirname "$record")"
    if [ -f "$dist/direct_url.json" ]; then
        rm -f "$dist/direct_url.json"
        sed -i '/\.dist-info\/direct_url\.json,/d' "$record"
    fi
done
grep -rlIF "$ROOT" "$VENV" | while IFS= read -r file; do
    sed -i "s|$ROOT||g" "$file"
done
if leftover="$(grep -rlaF "$ROOT" "$ROOT")" && [ -n "$leftover" ]; then
    die "the staging path is still named in: $leftover"
fi
head -1 "$VENV/bin/custode" | grep -qxE "#!$VENV_DIR/bin/python(3(\.11)?)?" \
    || die "unexpected interpreter line in bin/custode: $(head -1 "$VENV/bin/custode")"

# --- the rest of the tree ----------------------------------------------------------------
say "laying out the package tree"
mkdir -p "$ROOT/usr/bin"
ln -s "$VENV_DIR/bin/custode" "$ROOT/usr/bin/custode"

# The unit: packaging/linux/custode.service with the installed paths.
mkdir -p "$ROOT/lib/systemd/system"
UNIT="$ROOT/lib/systemd/system/custode.service"
sed -e 's|^# Install: see README.*|# Installed by the custode Debian package: change it with "systemctl edit custode".|' \
    -e 's|^Documentation=.*|Documentation=man:custode(1)|' \
    -e 's|^# Copy config/examples/comune.yaml to /etc/custode/custode.yaml first (README).|# /etc/custode/custode.yaml is the package'"'"'s conffile (examples: /usr/share/doc/custode/examples/).|' \
    -e "s|$VENV_DIR/bin/custode|/usr/bin/custode|g" \
    "$REPO/packaging/linux/custode.service" > "$UNIT"
for want in '^ExecStart=/usr/bin/custode run --config /etc/custode/custode.yaml$' \
            '^ExecStartPre=/usr/bin/custode config check /etc/custode/custode.yaml$' \
            '^User=custode$' '^StateDirectory=custode$' '^Documentation=man:custode(1)$'; do
    grep -q "$want" "$UNIT" || die "the unit made from packaging/linux/custode.service has no line matching $want"
done
! grep -n '/opt/custode' "$UNIT" || die "the unit still names /opt/custode"

SHARE="$ROOT/usr/share/custode"
mkdir -p "$SHARE/prometheus"
cp "$REPO"/packaging/prometheus/*.yml "$SHARE/prometheus/"
# Grafana: whatever dashboards and provisioning files the tree has now.
dashboards=0
if [ -d "$REPO/packaging/grafana" ]; then
    while IFS= read -r -d '' json; do
        mkdir -p "$SHARE/grafana/dashboards"
        name="$(basename "$json")"
        [ ! -e "$SHARE/grafana/dashboards/$name" ] || die "two Grafana dashboards are named $name under packaging/grafana"
        cp "$json" "$SHARE/grafana/dashboards/$name"
        dashboards=$((dashboards + 1))
    done < <(find "$REPO/packaging/grafana" -type f -name '*.json' -print0 | sort -z)
    for yaml in "$REPO"/packaging/grafana/provisioning/*.yaml; do
        [ -f "$yaml" ] || continue
        mkdir -p "$SHARE/grafana/provisioning"
        cp "$yaml" "$SHARE/grafana/provisioning/"
    done
fi
say "Prometheus rules: $(cd "$SHARE/prometheus" && echo *); Grafana dashboards: $dashboards"

DOC="$ROOT/usr/share/doc/custode"
mkdir -p "$DOC/examples" "$ROOT/usr/share/lintian/overrides"
cp "$DEB_SRC/copyright" "$DOC/copyright"
gzip -9n < "$CHANGELOG" > "$DOC/changelog.gz"
gzip -9n < "$REPO/README.md" > "$DOC/README.md.gz"
cp "$WORK/venv-packages.txt" "$DOC/venv-packages.txt"
cp "$REPO"/config/examples/*.yaml "$DOC/examples/"
cp "$DEB_SRC/custode.lintian-overrides" "$ROOT/usr/share/lintian/overrides/custode"

# Files 0644, directories and programs 0755, owned by root (dpkg-deb --root-owner-group).
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -type f -exec chmod u+rw,go+r,go-w {} +
find "$ROOT" -type f -perm /111 -exec chmod 0755 {} +

# --- DEBIAN/ -----------------------------------------------------------------------
say "writing the control files"
mkdir -p "$ROOT/DEBIAN"
cp "$DEB_SRC/conffiles" "$ROOT/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$DEB_SRC/$script" "$ROOT/DEBIAN/$script"
done
while read -r conffile; do
    [ -f "$ROOT$conffile" ] || die "conffile $conffile is not in the package"
done < "$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
    | grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles) | tr '\n' '\0' | xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"

# Shared-library dependencies of the wheels' extension modules, as dh_shlibdeps does.
printf 'Source: custode\n\nPackage: custode\nArchitecture: amd64\n' > "$PKG/debian/control"
mapfile -t elves < <(find "$ROOT/opt" -type f -name '*.so' | LC_ALL=C sort)
shlibs="$(cd "$PKG" && dpkg-shlibdeps --warnings=1 -O "${elves[@]}" | sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependency for ${#elves[@]} extension modules"
# python3.11: the venv's interpreter is /usr/bin/python3.11 and its compiled
# modules are for CPython 3.11; adduser: postinst creates the system user.
DEPENDS="python3.11, adduser, $shlibs"
INSTALLED_SIZE="$(du -sk --apparent-size --exclude=DEBIAN "$ROOT" | cut -f1)"
sed -e "s|@VERSION@|$DEB_VERSION|" -e "s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" -e "s|@DEPENDS@|$DEPENDS|" \
    "$DEB_SRC/control.in" > "$ROOT/DEBIAN/control"
say "Depends: $DEPENDS; Installed-Size: $INSTALLED_SIZE KiB"

# --- build and check -----------------------------------------------------------------------
mkdir -p "$out"
say "dpkg-deb --build"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$out/$DEB_NAME" >/dev/null
say "built $out/$DEB_NAME ($(du -h "$out/$DEB_NAME" | cut -f1)) in ${SECONDS}s"

if [ "$run_lintian" = 1 ]; then
    say "lintian (errors and warnings fail the build; overrides: packaging/debian/custode.lintian-overrides)"
    lint=(lintian --fail-on 'error,warning' --display-info "$out/$DEB_NAME")
    if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null; then
        # lintian unpacks what it checks: not as root (it says so, too).
        mkdir -p "$WORK/lintian"
        cp "$out/$DEB_NAME" "$WORK/lintian/"
        chmod 0755 "$WORK" "$WORK/lintian"
        lint=(runuser -u nobody -- env HOME="$WORK/lintian" TMPDIR="$WORK/lintian"
              lintian --fail-on 'error,warning' --display-info "$WORK/lintian/$DEB_NAME")
    fi
    lint_start=$SECONDS
    "${lint[@]}"
    say "lintian: clean ($(( SECONDS - lint_start ))s)"
fi
echo "$out/$DEB_NAME"
