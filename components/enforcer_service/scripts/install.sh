# ---- install body (static; components/enforcer_service/scripts/install.sh) ---------------------------
# Installs or updates the budget enforcer. Runs as root, reads the environment file on stdin, takes the
# uploaded package archive as $1. Idempotent: every step compares before it writes and says what it did;
# a second run with the same inputs changes nothing and ends with "up to date". Any failure stops the
# script with the host's own error message (set -e, and `fail` for the checks we make ourselves).
set -eu
umask 022
PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export PATH
ARCHIVE="${1:-}"
# Python puts the working directory first on sys.path: never import an `enforcer` that happens to be here.
cd /
changes=0
unit_changes=0
placed=0
tmp=''
tmp_files=''

say() { printf 'openclaw-budget: %s\n' "$*"; }
fail() { printf 'openclaw-budget: error: %s\n' "$*" >&2; exit 1; }
changed() { changes=$((changes + 1)); say "$*"; }
# A host path as seen under ROOT (the sandbox prefix; "/" on real hosts).
at() { if [ "$ROOT" = / ]; then printf '%s' "$1"; else printf '%s%s' "${ROOT%/}" "$1"; fi; }
cleanup() { for f in $tmp_files; do rm -rf "$f"; done; }
trap cleanup EXIT
# new_tmp DIR NAME: a private temp file next to its target (same file system, so `mv` is atomic) -> $tmp
new_tmp() {
    tmp=$(mktemp "$1/.$2.XXXXXX") || fail "cannot create a temporary file in $1"
    tmp_files="$tmp_files $tmp"
}
# is_current TEXT PATH MODE UID:GID: PATH already holds TEXT (plus a final newline), with that mode and owner.
is_current() {
    dest=$(at "$2")
    [ -f "$dest" ] && [ ! -L "$dest" ] \
        && [ "$(printf '%s\n' "$1" | sha256sum)" = "$(sha256sum < "$dest")" ] \
        && [ "$(stat -c '%a %u:%g' "$dest")" = "$3 $4" ]
}
# write TMP PATH MODE UID:GID: give TMP its mode and owner, then rename it over PATH (atomic).
write() {
    chown "$4" "$1"
    chmod "$3" "$1"
    mv -f "$1" "$(at "$2")"
    changed "wrote $2 ($3, owner $4)"
}
# put TEXT PATH MODE UID:GID: make PATH hold TEXT; touches nothing (not even the directory) if it does.
put() {
    if is_current "$@"; then
        placed=0
        say "unchanged $2"
    else
        new_tmp "$(dirname "$(at "$2")")" "$(basename "$2")"
        printf '%s\n' "$1" > "$tmp"
        write "$tmp" "$2" "$3" "$4"
        placed=1
    fi
}
# ensure_dir PATH MODE UID:GID: a directory we own, with exactly that mode and owner.
ensure_dir() {
    d=$(at "$1")
    if [ -d "$d" ] && [ ! -L "$d" ]; then
        if [ "$(stat -c '%a %u:%g' "$d")" != "$2 $3" ]; then
            chown "$3" "$d"
            chmod "$2" "$d"
            changed "set owner $3 and mode $2 on $1"
        fi
    elif [ -e "$d" ] || [ -L "$d" ]; then
        fail "$1 exists and is not a directory"
    else
        mkdir -p "$d"
        chown "$3" "$d"
        chmod "$2" "$d"
        changed "created $1 ($2, owner $3)"
    fi
}
# "uid:gid" of user $1 in the user database of ROOT; empty if there is no such user.
user_ids() {
    if [ "$ROOT" = / ]; then
        getent passwd "$1" | cut -d: -f3,4
    else
        awk -F: -v u="$1" '$1 == u { print $3 ":" $4 }' "$(at /etc/passwd)" 2>/dev/null || true
    fi
}
# Can the service user create files in directory $1 (and reach it through every parent)?
user_can_write() {
    if ! command -v setpriv > /dev/null 2>&1; then
        say "warning: setpriv (util-linux) not found: not checking that $SERVICE_USER can write $1"
        return 0
    fi
    if [ "$ROOT" = / ]; then groups=--init-groups; else groups=--clear-groups; fi
    setpriv --reuid="${ids%%:*}" --regid="${ids#*:}" "$groups" -- test -w "$(at "$1")" -a -x "$(at "$1")"
}
unit_state() { svc_ctl is-enabled "$1" 2> /dev/null || true; }

[ "$(id -u)" = 0 ] || fail "must run as root; the SSH user $(id -un) is not: set enforcer.sudo (e.g. 'sudo -n')"
[ -d "$ROOT" ] || fail "root directory $ROOT does not exist"

# 1. The settings arrive on stdin: read them first, before anything else could consume stdin.
env_text=$(cat)
case "$env_text" in
    *PROMETHEUS_URL=*) ;;
    *) fail "no enforcer settings on stdin (expected the environment file)" ;;
esac
ensure_dir "$CONFIG_DIR" 755 0:0

# 2. The service user.
ids=$(user_ids "$SERVICE_USER")
if [ -z "$ids" ]; then
    command -v useradd > /dev/null 2>&1 || fail "user $SERVICE_USER does not exist and useradd is missing: create it, or set enforcer.user"
    nologin=$(command -v nologin 2> /dev/null || echo /bin/false)
    if [ "$ROOT" = / ]; then set --; else set -- --root "$ROOT"; fi
    useradd "$@" --system --user-group --no-create-home --home-dir "$STATE_DIR" --shell "$nologin" \
        --comment 'OpenClaw budget enforcer' "$SERVICE_USER" || fail "could not create user $SERVICE_USER"
    ids=$(user_ids "$SERVICE_USER")
    [ -n "$ids" ] || fail "user $SERVICE_USER is still unknown after useradd"
    changed "created system user $SERVICE_USER ($ids)"
else
    say "unchanged user $SERVICE_USER ($ids)"
fi

# 3. State, flag (and metrics) directories: exactly the ones the unit makes writable.
ensure_dir "$STATE_DIR" 700 "$ids"
if [ -n "$FLAG_MOUNT_DIR" ] && [ ! -d "$(at "$FLAG_MOUNT_DIR")" ]; then
    fail "$FLAG_MOUNT_DIR does not exist on this host, yet gateway.mounts says the gateway container mounts it (check gateway.mounts and enforcer.flagFile)"
fi
missing=''
d=$FLAG_DIR
while [ ! -d "$(at "$d")" ]; do
    missing="$d $missing"
    d=$(dirname "$d")
done
for d in $missing; do
    mkdir "$(at "$d")"
    chown "$ids" "$(at "$d")"
    chmod 755 "$(at "$d")"
    printf '%s\n' "$d" >> "$(at "$CREATED_DIRS_FILE")"
    changed "created $d (755, owner $SERVICE_USER: the gateway container reads the flag through it)"
done
[ -n "$missing" ] || say "unchanged flag directory $FLAG_DIR"
# Directories created by an earlier install follow the service user (enforcer.user may have changed).
if [ -f "$(at "$CREATED_DIRS_FILE")" ]; then
    while IFS= read -r d; do
        if [ -d "$(at "$d")" ]; then ensure_dir "$d" 755 "$ids"; fi
    done < "$(at "$CREATED_DIRS_FILE")"
fi
if [ -n "$METRICS_DIR" ] && [ ! -d "$(at "$METRICS_DIR")" ]; then
    fail "enforcer.metricsFile: directory $METRICS_DIR does not exist (node_exporter's textfile directory?)"
fi
for d in $WRITABLE_DIRS; do
    user_can_write "$d" || fail "user $SERVICE_USER cannot create files in $d: check its owner and mode and" \
        "those of every parent (a 0700 home directory keeps other users out: run the enforcer as the home's" \
        "owner with enforcer.user)"
done

# 4. Install directory: root-owned, so the service can't change its own code.
ensure_dir "$INSTALL_DIR" 755 0:0
put 'Managed by openclaw-usage: `pulumi destroy` deletes this directory.' "$INSTALL_DIR/$INSTALL_MARKER" 644 0:0
ensure_dir "$INSTALL_DIR/releases" 755 0:0
ensure_dir "$INSTALL_DIR/bin" 755 0:0

# 5. Virtualenv with the enforcer's one dependency.
venv=$(at "$VENV_DIR")
if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2> /dev/null; then
    say "unchanged virtualenv $VENV_DIR ($("$venv/bin/python" -V 2>&1))"
else
    command -v "$PYTHON" > /dev/null 2>&1 || fail "$PYTHON not found: install Python 3.9+ on the enforcer host (and python3-venv on Debian/Ubuntu), or set enforcer.python"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "$PYTHON is $("$PYTHON" -V 2>&1); the enforcer needs Python 3.9+ (set enforcer.python)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" || fail "could not create the virtualenv $VENV_DIR (Debian/Ubuntu: apt-get install python3-venv)"
    changed "created virtualenv $VENV_DIR ($("$venv/bin/python" -V 2>&1))"
fi
if "$venv/bin/python" -c "$REQUESTS_CHECK" 2> /dev/null; then
    say "unchanged $REQUESTS_SPEC in the virtualenv"
else
    pip_install "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir "$REQUESTS_SPEC" \
        || fail "pip could not install $REQUESTS_SPEC (offline host? set enforcer.pipArgs, e.g. ['--no-index', '--find-links', '/srv/wheels'])"
    "$venv/bin/python" -c "$REQUESTS_CHECK" || fail "$REQUESTS_SPEC is still not importable after pip install"
    changed "installed $REQUESTS_SPEC into the virtualenv"
fi

# 6. The enforcer package: one directory per release (named by its hash), switched by a symlink.
release="$INSTALL_DIR/releases/$RELEASE_ID"
if [ -f "$(at "$release")/.complete" ] && [ "$(readlink "$(at "$CURRENT_DIR")" || true)" = "releases/$RELEASE_ID" ]; then
    say "unchanged enforcer package (release $RELEASE_ID)"
else
    if [ ! -f "$(at "$release")/.complete" ]; then
        if [ -z "$ARCHIVE" ] || [ ! -f "$ARCHIVE" ]; then
            fail "package archive '$ARCHIVE' not found (the upload step puts it there)"
        fi
        work=$(mktemp -d "$(at "$INSTALL_DIR/releases")/.new.XXXXXX")
        tmp_files="$tmp_files $work"
        cp "$ARCHIVE" "$work/package.tar"
        got=$(sha256sum < "$work/package.tar" | cut -d' ' -f1)
        [ "$got" = "$PACKAGE_SHA256" ] || fail "package archive $ARCHIVE has sha256 $got, expected $PACKAGE_SHA256 (stale or altered upload)"
        mkdir "$work/tree"
        tar -xf "$work/package.tar" -C "$work/tree" --no-same-owner
        [ -f "$work/tree/enforcer/__main__.py" ] || fail "package archive has no enforcer/__main__.py"
        "$venv/bin/python" -m compileall -q "$work/tree" > /dev/null || fail "the enforcer package does not compile with $("$venv/bin/python" -V 2>&1)"
        chmod -R u=rwX,go=rX "$work/tree"
        touch "$work/tree/.complete"
        rm -rf "$(at "$release")"
        mv "$work/tree" "$(at "$release")"
    fi
    ln -sfn "releases/$RELEASE_ID" "$(at "$INSTALL_DIR")/.current.new"
    mv -Tf "$(at "$INSTALL_DIR")/.current.new" "$(at "$CURRENT_DIR")"
    changed "activated enforcer package release $RELEASE_ID"
fi
for old in "$(at "$INSTALL_DIR/releases")"/*; do
    if [ -e "$old" ] && [ "$old" != "$(at "$release")" ]; then
        rm -rf "$old"
        say "removed old release $(basename "$old")"
    fi
done

# 7. The operator command, and the settings (validated by the enforcer itself before anything restarts).
put "$WRAPPER_TEXT" "$WRAPPER" 755 0:0
if is_current "$env_text" "$ENV_FILE" 600 0:0; then
    say "unchanged $ENV_FILE"
else
    new_tmp "$(at "$CONFIG_DIR")" "$(basename "$ENV_FILE")"
    printf '%s\n' "$env_text" > "$tmp"
    env -i PATH="$PATH" PYTHONPATH="$(at "$CURRENT_DIR")" PYTHONDONTWRITEBYTECODE=1 \
        sh -c 'set -a && . "$1" && set +a && exec "$2" -c "$3"' \
        validate-settings "$tmp" "$venv/bin/python" "$VALIDATE_SETTINGS" || fail "the enforcer rejects these settings (see above)"
    write "$tmp" "$ENV_FILE" 600 0:0
fi

# 8. Units. Leave nothing of the other mode behind (runAs switched between watch and timer).
if [ ! -d "$(at "$UNIT_DIR")" ]; then mkdir -p "$(at "$UNIT_DIR")"; fi
if [ "$RUN_AS" = timer ]; then
    if [ "$(unit_state "$SERVICE_UNIT")" = enabled ]; then
        svc_ctl disable "$SERVICE_UNIT" || fail "systemctl disable $SERVICE_UNIT failed"
        changed "disabled the long-running $SERVICE_UNIT (runAs is now timer)"
    fi
    if svc_ctl is-active --quiet "$SERVICE_UNIT"; then
        svc_ctl stop "$SERVICE_UNIT" || fail "systemctl stop $SERVICE_UNIT failed"
        changed "stopped the long-running $SERVICE_UNIT (runAs is now timer)"
    fi
elif [ -e "$(at "$UNIT_DIR/$TIMER_UNIT")" ]; then
    if svc_ctl is-active --quiet "$TIMER_UNIT"; then svc_ctl stop "$TIMER_UNIT" || fail "systemctl stop $TIMER_UNIT failed"; fi
    if [ "$(unit_state "$TIMER_UNIT")" = enabled ]; then svc_ctl disable "$TIMER_UNIT" || fail "systemctl disable $TIMER_UNIT failed"; fi
    rm -f "$(at "$UNIT_DIR/$TIMER_UNIT")"
    unit_changes=$((unit_changes + 1))
    changed "removed $TIMER_UNIT (runAs is now watch)"
fi
put "$SERVICE_TEXT" "$UNIT_DIR/$SERVICE_UNIT" 644 0:0
unit_changes=$((unit_changes + placed))
if [ "$RUN_AS" = timer ]; then
    put "$TIMER_TEXT" "$UNIT_DIR/$TIMER_UNIT" 644 0:0
    unit_changes=$((unit_changes + placed))
fi

# 9. systemd: reload, enable, and (re)start only when something changed.
if [ "$unit_changes" -gt 0 ]; then
    svc_ctl daemon-reload || fail "systemctl daemon-reload failed"
    say "reloaded systemd units"
fi
if [ "$(unit_state "$MAIN_UNIT")" = enabled ]; then
    say "unchanged: $MAIN_UNIT is enabled"
else
    svc_ctl enable "$MAIN_UNIT" || fail "systemctl enable $MAIN_UNIT failed"
    changed "enabled $MAIN_UNIT"
fi
if [ "$changes" -gt 0 ]; then
    svc_ctl restart "$MAIN_UNIT" || fail "systemctl restart $MAIN_UNIT failed (journalctl -u $MAIN_UNIT)"
    changed "restarted $MAIN_UNIT"
    if [ "$RUN_AS" = timer ]; then
        svc_ctl start --no-block "$SERVICE_UNIT" || fail "systemctl start $SERVICE_UNIT failed"
        say "started one check now ($SERVICE_UNIT)"
    fi
elif svc_ctl is-active --quiet "$MAIN_UNIT"; then
    say "unchanged: $MAIN_UNIT is active"
else
    svc_ctl start "$MAIN_UNIT" || fail "systemctl start $MAIN_UNIT failed (journalctl -u $MAIN_UNIT)"
    changed "started $MAIN_UNIT (it was not running)"
fi

if [ "$changes" -eq 0 ]; then
    say "up to date: nothing changed"
else
    say "done: $changes change(s)"
fi
