#!/usr/bin/env bash
# Build the Debian package and test it in a clean Debian 12 root (a chroot).
# Usage: bash scripts/test-deb.sh            (as root: debootstrap, chroot, mount)
#
#   1. installs what building and testing need when missing (apt-get);
#   2. builds custode_VERSION_amd64.deb with scripts/build-deb.sh (lintian included),
#      and repacks it as VERSION+debtest1, the upgrade;
#   3. makes a clean root: debootstrap --variant=minbase bookworm from the Debian
#      mirror in /etc/apt/sources.list*, cached under $CUSTODE_DEB_CACHE;
#   4. in that root: installs the package with apt-get (which brings its
#      dependencies), checks what it installed, runs custode --version, custode
#      config check and custode run as the custode user on 127.0.0.1 (until /ready
#      answers on the host's curl), upgrades to the repacked version with the
#      conffile edited and checks config and state survive, removes, purges and
#      checks that only the system user is left.
#
# Every line of output starts with "== deb:"; the exit status is non-zero on any failure.
# Environment:
#   CUSTODE_DEB_CACHE       cache dir (default /var/cache/custode-deb-test): the debootstrap
#                           tarball, the pristine root as a tar, downloaded .debs
#   CUSTODE_DEB_CACHE_DAYS  rebuild the cached root when older than this (default 14)
#   CUSTODE_DEB_MIRROR      the Debian mirror (default: the one apt uses here)
#   CUSTODE_DEB_KEEP=1      keep the work dir (the root, the .debs, the logs) for a look
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${CUSTODE_DEB_CACHE:-/var/cache/custode-deb-test}"
CACHE_DAYS="${CUSTODE_DEB_CACHE_DAYS:-14}"
SUITE=bookworm

# Every line through one prefixer; the build's own lines already say "== deb build:".
exec 3>&1
exec > >(sed -u '/^== deb/!s/^/== deb: /' >&3) 2>&1
PREFIXER=$!

say() { echo "== deb: $*"; }
fail() { echo "== deb: FAILED: $*"; exit 1; }
check() { # check DESCRIPTION COMMAND...: run it, say ok or fail with the description
    local what="$1"; shift
    if "$@"; then say "ok: $what"; else fail "$what"; fi
}

WORK=""
ROOTFS=""
AGENT_PID=""
START=$SECONDS
declare -a TIMINGS=()
timing() { TIMINGS+=("$1 $(( SECONDS - $2 ))s"); }

cleanup() {
    local status=$?
    set +e
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -KILL "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null
    fi
    if [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ]; then
        # Innermost first; never remove a tree with something still mounted in it.
        findmnt -rn -o TARGET | grep -F "$ROOTFS/" | sort -r | while IFS= read -r target; do
            umount "$target" 2>/dev/null || umount -l "$target"
        done
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ -n "$ROOTFS" ] && findmnt -rn -o TARGET | grep -qF "$ROOTFS/"; then
            say "not removing $WORK: something is still mounted under it"
        elif [ "${CUSTODE_DEB_KEEP:-0}" = 1 ]; then
            say "kept $WORK (CUSTODE_DEB_KEEP=1)"
        else
            rm -rf "$WORK"
        fi
    fi
    if [ "$status" -eq 0 ]; then
        say "PASSED in $(( SECONDS - START ))s (${TIMINGS[*]})"
    else
        say "FAILED (exit $status) after $(( SECONDS - START ))s (${TIMINGS[*]})"
    fi
    exec 1>&3 2>&3
    wait "$PREFIXER" 2>/dev/null
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || fail "run as root: debootstrap, chroot and mount need it"

# --- 1. tools ----------------------------------------------------------------
t=$SECONDS
TOOLS="debootstrap debian-archive-keyring lintian dpkg-dev binutils python3.11 python3-venv curl"
missing=""
for pkg in $TOOLS; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
timing tools "$t"

WORK="$(mktemp -d /var/tmp/custode-deb-test.XXXXXX)"
ROOTFS="$WORK/root"
mkdir -p "$CACHE/apt-archives"

# --- 2. build ----------------------------------------------------------------------
t=$SECONDS
say "building the package (scripts/build-deb.sh)"
bash "$REPO/scripts/build-deb.sh" --out "$WORK/out"
DEB="$(ls "$WORK"/out/custode_*_amd64.deb)"
VERSION="$(dpkg-deb -f "$DEB" Version)"
timing build "$t"

t=$SECONDS
UPGRADE_VERSION="$VERSION+debtest1"
say "repacking it as $UPGRADE_VERSION, the upgrade to test"
dpkg-deb -R "$DEB" "$WORK/repack"
sed -i "s/^Version: .*/Version: $UPGRADE_VERSION/" "$WORK/repack/DEBIAN/control"
UPGRADE_DEB="$WORK/out/custode_${UPGRADE_VERSION}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$WORK/repack" "$UPGRADE_DEB" >/dev/null
rm -rf "$WORK/repack"
timing repack "$t"

# --- 3. a clean root -----------------------------------------------------------
mirror="${CUSTODE_DEB_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(python3 - <<'EOF'
import glob, re
found = []
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and "bookworm" in fields.get("Suites", "").split():
                found += fields.get("URIs", "").split()
    else:
        for line in text.splitlines():
            words = [w for w in re.sub(r"\[[^]]*\]", "", line).split()]
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                found.append(words[1])
print(next((uri for uri in found if uri.startswith("http")), "http://deb.debian.org/debian"))
EOF
)"
fi
say "Debian mirror: $mirror"

DEBS_TARBALL="$CACHE/debootstrap-$SUITE-minbase.tgz"
ROOT_TAR="$CACHE/root-$SUITE-minbase.tar"
t=$SECONDS
exec 9>"$CACHE/lock"
flock 9   # one run at a time makes or reads the cache
fresh() { [ -f "$1" ] && [ -n "$(find "$1" -mtime "-$CACHE_DAYS" 2>/dev/null)" ]; }
root_kind=warm
if ! fresh "$ROOT_TAR"; then
    root_kind=cold
    if ! fresh "$DEBS_TARBALL"; then
        say "debootstrap: downloading the $SUITE minbase packages into $DEBS_TARBALL"
        t1=$SECONDS
        rm -f "$DEBS_TARBALL.tmp"
        debootstrap --variant=minbase --make-tarball="$DEBS_TARBALL.tmp" "$SUITE" "$WORK/debootstrap-download" "$mirror" \
            > "$WORK/debootstrap-download.log" 2>&1 || { tail -20 "$WORK/debootstrap-download.log"; fail "debootstrap --make-tarball"; }
        mv "$DEBS_TARBALL.tmp" "$DEBS_TARBALL"
        timing debootstrap-download "$t1"
    fi
    say "debootstrap: installing the root from $DEBS_TARBALL"
    t1=$SECONDS
    debootstrap --variant=minbase --unpack-tarball="$DEBS_TARBALL" "$SUITE" "$ROOTFS" "$mirror" \
        > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap --unpack-tarball"; }
    timing debootstrap-install "$t1"
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    chroot "$ROOTFS" apt-get update -q > "$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update in the new root"; }
    chroot "$ROOTFS" apt-get clean
    say "caching the pristine root as $ROOT_TAR"
    tar --numeric-owner -C "$ROOTFS" -cpf "$ROOT_TAR.tmp" .
    mv "$ROOT_TAR.tmp" "$ROOT_TAR"
else
    say "unpacking the cached pristine root $ROOT_TAR (from $(date -r "$ROOT_TAR" +%F); rebuilt after $CACHE_DAYS days)"
    mkdir -p "$ROOTFS"
    tar --numeric-owner -C "$ROOTFS" -xpf "$ROOT_TAR"
fi
flock -u 9
timing "root-$root_kind" "$t"

in_root() { chroot "$ROOTFS" "$@"; }
quiet() { "$@" > /dev/null; }
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs -o ro sysfs "$ROOTFS/sys"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
[ ! -d "$ROOTFS/run/systemd/system" ] || fail "the root must not look like it runs systemd"
if [ -n "$(ls "$CACHE/apt-archives")" ]; then cp "$CACHE"/apt-archives/*.deb "$ROOTFS/var/cache/apt/archives/" 2>/dev/null || true; fi

# --- 4. install ------------------------------------------------------------------
t=$SECONDS
cp "$DEB" "$UPGRADE_DEB" "$ROOTFS/tmp/"
apt_in_root() {
    # No pty: the root has no /dev/pts mounted, and no terminal means dpkg cannot ask.
    in_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends -o Dpkg::Use-Pty=0 "$@" < /dev/null
}
say "apt-get update in the root"
apt_in_root update > "$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update in the root"; }
say "installing $(basename "$DEB") with apt-get"
apt_in_root install "/tmp/$(basename "$DEB")" 2>&1 | tee "$WORK/install.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "apt-get install of the package"
cp -n "$ROOTFS"/var/cache/apt/archives/*.deb "$CACHE/apt-archives/" 2>/dev/null || true
timing install "$t"

t=$SECONDS
# shellcheck disable=SC2016  # dpkg-query's own ${field} syntax
status_of() { in_root dpkg-query -W -f='${Status} ${Version}' custode 2>/dev/null || true; }
check "dpkg: custode $VERSION installed" test "$(status_of)" = "install ok installed $VERSION"
IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd custode) || fail "no custode user"
check "system user custode (uid $uid), home /var/lib/custode, shell nologin" \
    test "$uid" -lt 1000 -a "$home" = /var/lib/custode -a "$shell" = /usr/sbin/nologin
check "group custode" quiet in_root getent group custode
check "/var/lib/custode is custode:custode 0750" test "$(stat -c '%u:%g %a' "$ROOTFS/var/lib/custode")" = "$uid:$gid 750"
check "/etc/custode/custode.yaml is root:custode 0640 (dpkg-statoverride)" \
    test "$(stat -c '%U:%g %a' "$ROOTFS/etc/custode/custode.yaml")" = "root:$gid 640"
check "/etc/custode/custode.yaml is a conffile" \
    bash -c "chroot '$ROOTFS' dpkg-query -W -f='\${Conffiles}' custode | grep -q '^ /etc/custode/custode.yaml '"
check "/usr/bin/custode runs the venv's entry point" test "$(readlink "$ROOTFS/usr/bin/custode")" = /opt/custode/venv/bin/custode
check "unit installed with the installed paths" \
    grep -qx 'ExecStart=/usr/bin/custode run --config /etc/custode/custode.yaml' "$ROOTFS/lib/systemd/system/custode.service"
check "unit enabled (multi-user.target.wants), not started (no systemd here)" \
    test -L "$ROOTFS/etc/systemd/system/multi-user.target.wants/custode.service"
check "man page" bash -c "zcat '$ROOTFS/usr/share/man/man1/custode.1.gz' | head -1 | grep -q '^\.TH CUSTODE 1'"
check "bash completion" bash -n "$ROOTFS/usr/share/bash-completion/completions/custode"
check "zsh completion" grep -q '^#compdef custode' "$ROOTFS/usr/share/zsh/vendor-completions/_custode"
for rules in "$REPO"/packaging/prometheus/*.yml; do
    check "Prometheus rules $(basename "$rules")" cmp -s "$rules" "$ROOTFS/usr/share/custode/prometheus/$(basename "$rules")"
done
want="$(find "$REPO/packaging/grafana" -name '*.json' 2>/dev/null | wc -l)"
got="$(find "$ROOTFS/usr/share/custode/grafana/dashboards" -name '*.json' 2>/dev/null | wc -l)"
check "Grafana dashboards: $got of $want" test "$got" -eq "$want"
check "dpkg --verify: every file as packaged (md5sums)" test -z "$(in_root dpkg --verify custode 2>&1)"
check "postinst byte-compiled the venv" test -n "$(find "$ROOTFS/opt/custode/venv/lib" -name '*.pyc' -print -quit)"

version_out="$(in_root custode --version)" || fail "custode --version"
check "custode --version: $version_out" test -n "$(echo "$version_out" | grep -F "${VERSION%%+*}")"
say "custode config check (as root, the default path)"
in_root custode config check || fail "custode config check"
say "custode config check as the custode user (the unit's ExecStartPre)"
in_root setpriv --reuid "$uid" --regid "$gid" --init-groups \
    /usr/bin/custode config check /etc/custode/custode.yaml || fail "custode config check as custode"

# --- custode run, as the unit runs it ------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "custode run as the custode user on 127.0.0.1:$port"
chroot --userspec="$uid:$gid" --groups="$gid" "$ROOTFS" \
    env -i PATH=/usr/bin:/bin HOME=/var/lib/custode LANG=C.UTF-8 CUSTODE_DATA_DIR=/var/lib/custode \
    /usr/bin/custode run --config /etc/custode/custode.yaml --listen "127.0.0.1:$port" \
    > "$WORK/run.log" 2>&1 3>&- 9>&- &
AGENT_PID=$!
run_start=$SECONDS
ready=""
for _ in $(seq 1 120); do
    if ! kill -0 "$AGENT_PID" 2>/dev/null; then
        cat "$WORK/run.log"; fail "custode run exited before answering"
    fi
    code="$(curl -s -o "$WORK/ready.txt" -w '%{http_code}' "http://127.0.0.1:$port/ready" || true)"
    if [ "$code" = 200 ]; then ready=yes; break; fi
    sleep 0.5
done
if [ -z "$ready" ]; then
    cat "$WORK/run.log"; echo "/ready: $(cat "$WORK/ready.txt" 2>/dev/null)"
    fail "/ready did not answer 200 within 60 s"
fi
say "ok: /ready answered 200, $(( SECONDS - run_start ))s after the start"
curl -fsS "http://127.0.0.1:$port/metrics" > "$WORK/metrics.txt" || fail "/metrics"
check "/metrics has custode_build_info" grep -q '^custode_build_info{' "$WORK/metrics.txt"
check "/metrics has node_load1 (a collector ran in the root)" grep -q '^node_load1 ' "$WORK/metrics.txt"
kill -TERM "$AGENT_PID"
stopped=""
for _ in $(seq 1 60); do
    if ! kill -0 "$AGENT_PID" 2>/dev/null; then stopped=yes; break; fi
    sleep 0.5
done
[ -n "$stopped" ] || { cat "$WORK/run.log"; fail "custode run did not stop within 30 s of SIGTERM"; }
set +e; wait "$AGENT_PID"; rc=$?; set -e
AGENT_PID=""
[ "$rc" -eq 0 ] || { cat "$WORK/run.log"; fail "custode run exited $rc on SIGTERM"; }
say "ok: custode run stopped on SIGTERM (exit 0); its log:"
sed 's/^/    /' "$WORK/run.log" | tail -5
check "the agent wrote its state DB as custode" test "$(stat -c %u "$ROOTFS/var/lib/custode/state.db" 2>/dev/null)" = "$uid"

say "custode status as root (agent.data_dir of the conffile: the agent's records)"
set +e; in_root custode status; rc=$?; set -e
[ "$rc" -le 1 ] || fail "custode status exited $rc"
stray="$(find "$ROOTFS/var/lib/custode" ! -user "$uid" -printf '%P ')"
check "no file in /var/lib/custode that the agent could not write (${stray:-none})" test -z "$stray"
timing checks-and-run "$t"

# --- upgrade ------------------------------------------------------------------------
t=$SECONDS
echo "# a local edit, which the upgrade must keep (scripts/test-deb.sh)" >> "$ROOTFS/etc/custode/custode.yaml"
conf_sum="$(sha256sum < "$ROOTFS/etc/custode/custode.yaml")"
echo "state that must survive" > "$ROOTFS/var/lib/custode/test-deb-marker"
chown "$uid:$gid" "$ROOTFS/var/lib/custode/test-deb-marker"
db_sum="$(sha256sum < "$ROOTFS/var/lib/custode/state.db")"
say "upgrading to $UPGRADE_VERSION with apt-get (no terminal: a conffile prompt would fail it)"
apt_in_root install "/tmp/$(basename "$UPGRADE_DEB")" 2>&1 | tee "$WORK/upgrade.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "apt-get install of the upgrade"
check "dpkg: custode $UPGRADE_VERSION installed" test "$(status_of)" = "install ok installed $UPGRADE_VERSION"
check "the edited conffile is kept as it was" test "$(sha256sum < "$ROOTFS/etc/custode/custode.yaml")" = "$conf_sum"
check "no .dpkg-new/.dpkg-dist next to it" test -z "$(find "$ROOTFS/etc/custode" -name '*.dpkg-*')"
check "its mode stays root:custode 0640" test "$(stat -c '%U:%g %a' "$ROOTFS/etc/custode/custode.yaml")" = "root:$gid 640"
check "the state DB is untouched" test "$(sha256sum < "$ROOTFS/var/lib/custode/state.db")" = "$db_sum"
check "a file in /var/lib/custode survives" test -f "$ROOTFS/var/lib/custode/test-deb-marker"
check "the user keeps its uid" test "$(in_root id -u custode)" = "$uid"
check "no 'not empty so not removed' from dpkg" bash -c "! grep -q 'not empty so not removed' '$WORK/upgrade.log'"
in_root custode --version > /dev/null || fail "custode --version after the upgrade"
in_root custode config check > /dev/null || fail "custode config check after the upgrade"
say "ok: custode --version and config check after the upgrade"
timing upgrade "$t"

# --- remove, then purge ------------------------------------------------------------------
t=$SECONDS
say "apt-get remove custode"
apt_in_root remove custode 2>&1 | tee "$WORK/remove.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "apt-get remove"
check "dpkg: only config files left" test "$(status_of)" = "deinstall ok config-files $UPGRADE_VERSION"
check "no 'not empty so not removed' from dpkg" bash -c "! grep -q 'not empty so not removed' '$WORK/remove.log'"
check "the program is gone" test ! -e "$ROOTFS/usr/bin/custode" -a ! -e "$ROOTFS/opt/custode/venv/bin/custode"
check "remove keeps the conffile" test -f "$ROOTFS/etc/custode/custode.yaml"
check "remove keeps the state" test -f "$ROOTFS/var/lib/custode/state.db" -a -f "$ROOTFS/var/lib/custode/test-deb-marker"

say "apt-get purge custode"
apt_in_root purge custode 2>&1 | tee "$WORK/purge.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "apt-get purge"
purged() { case "$(status_of)" in ""|"unknown ok not-installed "*|"purge ok not-installed "*) return 0 ;; esac; return 1; }
check "dpkg: custode purged" purged
check "purge removes the state dir" test ! -e "$ROOTFS/var/lib/custode"
check "purge removes the conffile and the empty /etc/custode" test ! -e "$ROOTFS/etc/custode"
check "purge removes /opt/custode" test ! -e "$ROOTFS/opt/custode"
check "purge removes the statoverride" bash -c "! chroot '$ROOTFS' dpkg-statoverride --list /etc/custode/custode.yaml"
check "purge removes the unit's enablement" test ! -e "$ROOTFS/etc/systemd/system/multi-user.target.wants/custode.service"
check "the system user is kept (Debian's practice: its UID may own files elsewhere)" quiet in_root getent passwd custode
timing remove-purge "$t"
