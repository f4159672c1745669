# Sourced by tests/setup/*.sh: install Debian packages without letting their postinst start services.
#   apt_install_quietly PKG...
apt_install_quietly() {
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they don't know a package (a fresh machine has none).
    if ! apt-cache show "$@" >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # policy-rc.d 101 = "action forbidden": keeps postinst scripts from starting the system's daemons here;
    # the tests start their own instances on free loopback ports.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    [ "$created_policy" = 1 ] && rm -f "$policy"
    return "$status"
}
