# shellcheck shell=bash
# Shared by scripts/test and scripts/demo (source it, then call install_deps): installs
# what the integration tests and the demo need, Prosody (Debian) and slixmpp (PyPI), plus the
# interpreters the example bots' tests run (php-cli and nodejs, Debian), if missing.
# Idempotent: when everything is there it changes nothing and touches no network.

_deps_log() { echo "[install-deps] $*" >&2; }

# Runs a command as root: directly when we are root, through sudo otherwise.
_deps_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        _deps_log "need root (or sudo) to run: $*"
        return 1
    fi
}

_deps_apt_updated=0
_deps_apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        _deps_log "apt-get not found: install these yourself: $*"
        return 1
    fi
    if [ "$_deps_apt_updated" -eq 0 ]; then
        _deps_log "apt-get update"
        _deps_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _deps_apt_updated=1
    fi
    _deps_log "apt-get install -y $*"
    _deps_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# Installs Debian's prosody without letting it start (or stay) as a system service: the
# tests and the demo run their own Prosody, in a temp dir, on free ports.
_deps_install_prosody() {
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        # invoke-rc.d asks this file whether a package may start its service; 101 = no.
        _deps_as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    local rc=0
    _deps_apt_install prosody || rc=$?
    if [ "$made_policy" -eq 1 ]; then
        _deps_as_root rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || return "$rc"
    # Where systemd runs, make sure the packaged service is neither running nor enabled.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        _deps_as_root systemctl disable --now prosody.service >/dev/null 2>&1 || true
    fi
}

_deps_have_slixmpp() { python3 -c 'import slixmpp' >/dev/null 2>&1; }

_deps_install_slixmpp() {
    _deps_log "python3 -m pip install slixmpp"
    if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore slixmpp \
        && _deps_have_slixmpp; then
        return 0
    fi
    # A Debian system python3 refuses pip installs (PEP 668) or may lack pip: use its package.
    _deps_log "pip failed; trying Debian's python3-slixmpp"
    _deps_apt_install python3-slixmpp && _deps_have_slixmpp
}

install_deps() {
    if ! command -v python3 >/dev/null 2>&1; then
        _deps_apt_install python3 python3-pip
    fi
    if ! command -v prosody >/dev/null 2>&1 || ! command -v prosodyctl >/dev/null 2>&1; then
        _deps_install_prosody
    fi
    if ! _deps_have_slixmpp; then
        _deps_install_slixmpp
    fi
    # examples/echo_bot.php and examples/echo_bot.js (tests/e2e/examples.rs runs them).
    if ! command -v php >/dev/null 2>&1; then
        _deps_apt_install php-cli
    fi
    if ! command -v node >/dev/null 2>&1; then
        _deps_apt_install nodejs
    fi
}
