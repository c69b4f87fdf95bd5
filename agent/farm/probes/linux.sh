# Custode's Linux probe: everything one farm-mode poll needs, in one run.
#
# Runs under any POSIX sh (dash, bash, busybox ash) with nothing installed on
# the host. It prints the raw text of each source between marker lines, so
# the parser (agent/farm/probes/linux.py) does all interpretation in Python and
# a host where one source fails still reports the others:
#
#   @@custode:begin linux 1
#   @@custode:section NAME       the raw output of one command follows
#   @@custode:stderr NAME        (only when it wrote to stderr) its first 5 lines
#   @@custode:exit NAME STATUS   its exit status: "nothing found" differs from "failed"
#   @@custode:end                the output was not truncated
#
# Every section's content is followed by one extra newline before its next
# marker (content without a final newline would otherwise swallow the marker).
#
# Usage: sh linux.sh [updates|noupdates]
# "updates" adds the slow sections (package manager simulation, reboot flag,
# last installed update, SMART); without it the run only reads /proc, df and
# systemctl, which is what polls every few minutes can afford.
#
# Nothing here refreshes package lists, takes a package-manager lock or writes
# to the disk. Commands that can hang (df on a stale mount, package managers,
# smartctl) are bounded by timeout(1) when the host has it.

# $BOUND ("timeout 20" or nothing) and the smartctl prefix are split into words on purpose;
# set -f keeps that splitting from globbing.
# shellcheck disable=SC2086
set -f
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH
exec 3>&1 </dev/null

M=@@custode
UPDATES=no
[ "${1:-}" = updates ] && UPDATES=yes
LIMIT=20
BOUND=
if timeout "$LIMIT" true >/dev/null 2>&1; then BOUND="timeout $LIMIT"; fi
UID_NOW=$(id -u 2>/dev/null)

# section NAME COMMAND [ARG...]: run COMMAND with its stdout streamed as the section's
# content and its stderr captured (command substitution keeps the exit status).
section() {
    _name=$1
    shift
    printf '%s:section %s\n' "$M" "$_name"
    _err=$( { "$@"; } 2>&1 1>&3 )
    _rc=$?
    if [ -n "$_err" ]; then
        printf '\n%s:stderr %s\n' "$M" "$_name"
        printf '%s\n' "$_err" | head -n 5
    fi
    printf '\n%s:exit %s %s\n' "$M" "$_name" "$_rc"
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# Filesystems worth watching: no pseudo, in-memory, image or container-layer filesystems,
# and no network ones (they belong to another host, and a dead server hangs df).
wanted_fs() {
    case $1 in
        proc|sysfs|devtmpfs|devpts|tmpfs|ramfs|rootfs|cgroup|cgroup2|cpuset|pstore|bpf|debugfs|tracefs) return 1 ;;
        securityfs|configfs|fusectl|hugetlbfs|mqueue|binfmt_misc|autofs|rpc_pipefs|nfsd|nsfs|efivarfs) return 1 ;;
        selinuxfs|overlay|aufs|squashfs|iso9660|udf|devfs|usbfs|sockfs|pipefs|zram|ecryptfs) return 1 ;;
        nfs|nfs4|cifs|smb3|smbfs|ncpfs|afs|ceph|glusterfs|9p|lustre|davfs|coda|sshfs) return 1 ;;
        fuse.lxcfs|fuse.gvfsd-fuse|fuse.portal|fuse.snapfuse|fuse.sshfs|fuse.rclone|fuse.s3fs) return 1 ;;
        fuse.glusterfs|fuse.ceph|fuse.ceph-fuse|fuse.gocryptfs|fuse.encfs|fuse.fuse-overlayfs) return 1 ;;
    esac
    return 0
}

probe_meta() {
    echo "updates=$UPDATES"
    echo "uid=$UID_NOW"
    echo "user=$(id -un 2>/dev/null)"
    echo "clk_tck=$(getconf CLK_TCK 2>/dev/null)"
    echo "kernel=$(uname -r)"
    echo "timeout=$BOUND"
    if [ -d /run/systemd/system ]; then echo "systemd=yes"; else echo "systemd=no"; fi
}

# The host's clock and its uptime read together, so boot time = time - uptime.
probe_clock() {
    read -r _up _idle </proc/uptime || return 1
    echo "uptime=$_up"
    echo "time=$(date +%s.%N)"
}

probe_os() {
    for _f in /etc/os-release /usr/lib/os-release; do
        if [ -r "$_f" ]; then
            grep -E '^(NAME|PRETTY_NAME|VERSION_ID|ID)=' "$_f"
            return 0
        fi
    done
    if [ -r /etc/redhat-release ]; then
        printf 'PRETTY_NAME="%s"\n' "$(cat /etc/redhat-release)"
        return
    fi
    echo "no /etc/os-release" >&2
    return 1
}

# "device mountpoint fstype" as /proc/self/mounts has them (spaces escaped as \040; printf, not
# echo: dash's echo would decode the escapes).
probe_mounts() {
    while read -r _dev _mnt _type _rest; do
        wanted_fs "$_type" && printf '%s %s %s\n' "$_dev" "$_mnt" "$_type"
    done </proc/self/mounts
    return 0
}

# One df for all wanted mount points; -P keeps each filesystem on one line.
probe_df() {
    set --
    while read -r _dev _mnt _type _rest; do
        wanted_fs "$_type" || continue
        case $_mnt in
            *\\*) _mnt=$(printf '%b' "$_mnt") ;;
        esac
        set -- "$@" "$_mnt"
    done </proc/self/mounts
    [ $# -gt 0 ] || return 0
    $BOUND df -P -k -- "$@"
}

probe_failed_units() {
    $BOUND systemctl list-units --state=failed --plain --no-legend --no-pager
}

# Counted here, with at most 20 security and 20 other package lines kept as examples: a host
# years behind has thousands of upgrades, and the whole output must stay small.
# Security origins: Debian-Security:12/stable-security, Ubuntu:22.04/jammy-security.
APT_SECURITY='^Inst .*[(].*(-security[], ]|Debian-Security:)'
probe_apt() {
    _out=$($BOUND apt-get -s -o Debug::NoLocking=1 dist-upgrade)
    _rc=$?
    _inst=$(printf '%s\n' "$_out" | grep '^Inst ')
    echo "pending=$(printf '%s\n' "$_inst" | grep -c '^Inst ')"
    echo "security=$(printf '%s\n' "$_inst" | grep -cE "$APT_SECURITY")"
    printf '%s\n' "$_inst" | grep -E "$APT_SECURITY" | head -n 20
    printf '%s\n' "$_inst" | grep -vE "$APT_SECURITY" | head -n 20
    return $_rc
}

# A command's output with runs of spaces squeezed (dnf pads its columns), keeping its exit status.
squeezed() {
    _out=$("$@")
    _rc=$?
    printf '%s\n' "$_out" | tr -s ' '
    return $_rc
}

probe_reboot_deb() {
    if [ -f /var/run/reboot-required ]; then
        echo "reboot-required=yes"
        cat /var/run/reboot-required.pkgs 2>/dev/null
    else
        echo "reboot-required=no"
    fi
    return 0
}

# The newest install/upgrade in dpkg's log (converted by the host's date, which knows its time
# zone), and dpkg's status file mtime as a fallback when the log was rotated away.
probe_last_deb() {
    for _log in /var/log/dpkg.log /var/log/dpkg.log.1; do
        [ -r "$_log" ] || continue
        _line=$(grep -E '^[0-9-]+ [0-9:]+ (install|upgrade) ' "$_log" | tail -n 1)
        if [ -n "$_line" ]; then
            set -- $_line
            echo "dpkg-log=$(date -d "$1 $2" +%s)"
            break
        fi
    done
    echo "dpkg-status=$(date -r /var/lib/dpkg/status +%s)"
}

probe_last_rpm() {
    _out=$($BOUND rpm -qa --qf '%{INSTALLTIME}\n')
    _rc=$?
    printf '%s\n' "$_out" | sort -n | tail -n 1
    return $_rc
}

probe_updates() {
    if have apt-get && [ -f /var/lib/dpkg/status ]; then
        section packages echo apt
        section apt-upgrade probe_apt
        section reboot probe_reboot_deb
        section last-install probe_last_deb
        return
    fi
    if have dnf; then
        _pm=dnf
    elif have yum; then
        _pm=yum
    else
        section packages echo none
        return
    fi
    section packages echo "$_pm"
    # Exit status 100 means "updates pending", 0 none, anything else failed.
    section check-update squeezed $BOUND "$_pm" -q --cacheonly check-update
    if [ "$_pm" = dnf ]; then
        section security squeezed $BOUND dnf -q --cacheonly updateinfo list --security
    else
        section security squeezed $BOUND yum -q --cacheonly updateinfo list security
    fi
    section reboot $BOUND needs-restarting -r
    section last-install probe_last_rpm
}

# SMART needs root: as another user, sudo -n is tried (never a password prompt).
probe_smart() {
    if ! have smartctl; then
        section smart-access echo missing
        return
    fi
    if [ "$UID_NOW" = 0 ]; then
        _smart=smartctl
    elif ! have sudo; then
        section smart-access echo no-sudo
        return
    elif sudo -n smartctl -V >/dev/null 2>&1; then
        _smart="sudo -n smartctl"
    else
        section smart-access echo denied
        return
    fi
    section smart-access echo "$_smart"
    printf '%s:section smart-scan\n' "$M"
    _scan=$($BOUND $_smart --scan 2>&1)
    _rc=$?
    printf '%s\n\n%s:exit smart-scan %s\n' "$_scan" "$M" "$_rc"
    [ "$_rc" = 0 ] || return
    # Lines like "/dev/sda -d sat # /dev/sda [SAT], ATA device". -n standby: a sleeping disk
    # is not spun up by a poll every few minutes.
    printf '%s\n' "$_scan" | while read -r _dev _opt _type _rest; do
        case $_dev in /dev/*) ;; *) continue ;; esac
        [ "$_opt" = -d ] || _type=auto
        section "smart $_dev $_type" $BOUND $_smart -H -i -n standby -d "$_type" "$_dev"
    done
}

printf '%s:begin linux 1\n' "$M"
section meta probe_meta
section clock probe_clock
section stat grep '^cpu' /proc/stat
section meminfo grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|SwapTotal|SwapFree):' /proc/meminfo
section loadavg cat /proc/loadavg
section os probe_os
section mounts probe_mounts
section df probe_df
[ -d /run/systemd/system ] && section failed-units probe_failed_units
if [ "$UPDATES" = yes ]; then
    probe_updates
    probe_smart
fi
printf '%s:end\n' "$M"
