# shellcheck shell=bash
# Shared by scripts/test and scripts/demo (source it, then call install_deps): installs
# what the integration tests and the demo need, if missing: Prosody and ejabberd (Debian);
# slixmpp, standardwebhooks, prometheus_client, schemathesis and jsonschema (PyPI); and the
# interpreters the example bots' tests run (php-cli and nodejs, Debian).
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

# Installs Debian's package $1 (an XMPP server: prosody, ejabberd) without letting it start
# (or stay) as a system service: the tests and the demo run their own server, in a temp dir,
# on free ports.
_deps_install_server() {
    local package=$1 policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        # invoke-rc.d asks this file whether a package may start its service; 101 = no.
        _deps_as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    local rc=0
    _deps_apt_install "$package" || rc=$?
    if [ "$made_policy" -eq 1 ]; then
        _deps_as_root rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || return "$rc"
    # Where systemd runs, make sure the packaged service is neither running nor enabled.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        _deps_as_root systemctl disable --now "$package.service" >/dev/null 2>&1 || true
    fi
}

_deps_have_module() { python3 -c "import $1" >/dev/null 2>&1; }

# Installs PyPI package $2 (importable as $1) unless it is there; $3, if given, is the
# Debian package to fall back on where pip cannot install (PEP 668, or no pip).
_deps_python_package() {
    local module=$1 package=$2 fallback=${3:-}
    _deps_have_module "$module" && return 0
    _deps_log "python3 -m pip install $package"
    if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$package" \
        && _deps_have_module "$module"; then
        return 0
    fi
    [ -n "$fallback" ] || return 1
    _deps_log "pip failed; trying Debian's $fallback"
    _deps_apt_install "$fallback" && _deps_have_module "$module"
}

install_deps() {
    if ! command -v python3 >/dev/null 2>&1; then
        _deps_apt_install python3 python3-pip
    fi
    if ! command -v prosody >/dev/null 2>&1 || ! command -v prosodyctl >/dev/null 2>&1; then
        _deps_install_server prosody
    fi
    # tests/support/ejabberd.rs; ejabberdctl is in /usr/sbin, often not in a user's PATH.
    if ! command -v ejabberdctl >/dev/null 2>&1 && [ ! -x /usr/sbin/ejabberdctl ]; then
        _deps_install_server ejabberd
    fi
    # The test client (tests/support/xmpp_client.py); the independent signature verifier,
    # the Prometheus parser and the API fuzzer of the end-to-end tests.
    _deps_python_package slixmpp slixmpp python3-slixmpp
    _deps_python_package standardwebhooks standardwebhooks
    _deps_python_package prometheus_client prometheus_client python3-prometheus-client
    _deps_python_package schemathesis schemathesis
    # docs/webhook.schema.json's validator (tests/webhook_schema.rs).
    _deps_python_package jsonschema jsonschema python3-jsonschema
    # examples/echo_bot.php and examples/echo_bot.js (tests/e2e/examples.rs runs them).
    if ! command -v php >/dev/null 2>&1; then
        _deps_apt_install php-cli
    fi
    if ! command -v node >/dev/null 2>&1; then
        _deps_apt_install nodejs
    fi
}
