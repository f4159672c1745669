# ---- uninstall body (static; components/enforcer_service/scripts/uninstall.sh) -----------------------
# Removes the budget enforcer: stops and disables its units, removes them, the environment file, the flag
# file and the install directory; keeps the state directory unless told otherwise, and says which.
# Idempotent: a second run finds nothing to remove and says so.
set -eu
PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export PATH
changes=0
removed_units=0

say() { printf 'openclaw-budget: %s\n' "$*"; }
fail() { printf 'openclaw-budget: error: %s\n' "$*" >&2; exit 1; }
changed() { changes=$((changes + 1)); say "$*"; }
at() { if [ "$ROOT" = / ]; then printf '%s' "$1"; else printf '%s%s' "${ROOT%/}" "$1"; fi; }
unit_state() { svc_ctl is-enabled "$1" 2> /dev/null || true; }

[ "$(id -u)" = 0 ] || fail "must run as root; the SSH user $(id -un) is not: set enforcer.sudo (e.g. 'sudo -n')"

# 1. Units: stop first, so nothing rewrites the flag after it is removed.
for unit in $TIMER_UNIT $SERVICE_UNIT; do
    file=$(at "$UNIT_DIR/$unit")
    if [ -e "$file" ]; then
        if svc_ctl is-active --quiet "$unit"; then
            svc_ctl stop "$unit" || fail "systemctl stop $unit failed"
            changed "stopped $unit"
        fi
        if [ "$(unit_state "$unit")" = enabled ]; then
            svc_ctl disable "$unit" || fail "systemctl disable $unit failed"
            changed "disabled $unit"
        fi
        rm -f "$file"
        removed_units=$((removed_units + 1))
        changed "removed $UNIT_DIR/$unit"
    else
        say "already absent: $UNIT_DIR/$unit"
    fi
done
if [ "$removed_units" -gt 0 ]; then
    svc_ctl daemon-reload || fail "systemctl daemon-reload failed"
    say "reloaded systemd units"
fi

# 2. The flag: with the enforcer gone, a leftover flag would block the gateway for good.
if [ -e "$(at "$FLAG_FILE")" ] || [ -L "$(at "$FLAG_FILE")" ]; then
    rm -f "$(at "$FLAG_FILE")"
    changed "removed the flag file $FLAG_FILE (the gate is open)"
else
    say "no flag file at $FLAG_FILE"
fi

# 3. Settings (holding the Matrix token), and the directories the install created for the flag.
if [ -e "$(at "$ENV_FILE")" ]; then
    rm -f "$(at "$ENV_FILE")"
    changed "removed $ENV_FILE"
else
    say "already absent: $ENV_FILE"
fi
created=''
if [ -f "$(at "$CREATED_DIRS_FILE")" ]; then
    created=$(sort -r -u "$(at "$CREATED_DIRS_FILE")")
    rm -f "$(at "$CREATED_DIRS_FILE")"
fi
for d in $created; do
    if rmdir "$(at "$d")" 2> /dev/null; then
        changed "removed directory $d (created by the install)"
    elif [ -d "$(at "$d")" ]; then
        say "kept directory $d: not empty"
    fi
done
if [ -d "$(at "$CONFIG_DIR")" ]; then
    rm -f "$(at "$CONFIG_DIR")"/.enforcer.env.*
    if rmdir "$(at "$CONFIG_DIR")" 2> /dev/null; then
        changed "removed $CONFIG_DIR"
    else
        say "kept $CONFIG_DIR: not empty"
    fi
fi

# 4. Code and virtualenv: only a directory the install marked as its own.
if [ -f "$(at "$INSTALL_DIR/$INSTALL_MARKER")" ]; then
    rm -rf "$(at "$INSTALL_DIR")"
    changed "removed $INSTALL_DIR (enforcer code and virtualenv)"
elif [ -e "$(at "$INSTALL_DIR")" ]; then
    say "left $INSTALL_DIR alone: it has no $INSTALL_MARKER marker, so the install did not create it"
else
    say "already absent: $INSTALL_DIR"
fi

# 5. State (decision log, undelivered alerts): kept unless enforcer.keepStateOnDestroy is false.
if [ ! -e "$(at "$STATE_DIR")" ]; then
    say "already absent: $STATE_DIR"
elif [ "$KEEP_STATE" = yes ]; then
    say "kept the state directory $STATE_DIR (decision log, undelivered alerts); delete it with: rm -rf $STATE_DIR"
else
    rm -rf "$(at "$STATE_DIR")"
    changed "removed the state directory $STATE_DIR (enforcer.keepStateOnDestroy is false)"
fi
if [ "$SERVICE_USER" = "$DEDICATED_USER" ]; then
    say "kept the system user $SERVICE_USER (files it owns may remain; remove it with: userdel $SERVICE_USER)"
fi

if [ "$changes" -eq 0 ]; then
    say "nothing to remove: already uninstalled"
else
    say "uninstalled: $changes change(s)"
fi
