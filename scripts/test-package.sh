#!/usr/bin/env bash
# CTest `package`: builds the Debian package from a finished build and
# checks what a clean Debian 12 would get: the runtime libraries as its only
# dependencies (no build or test tools), the daemon, the simulator, the
# systemd unit (which must pass `systemd-analyze verify`) and the example
# configuration, which must make an unfilled installation refuse to start
# naming what is missing. Installing it for real (dpkg -i, the user, the
# configuration file) is described in docs/DEPLOY.md.
# Usage: scripts/test-package.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "package: FAIL: $*" >&2
    exit 1
}

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
    { cat "$tmp/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$tmp"/out/callgate_*.deb)
echo "package: built $(basename "$deb")"

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libevent-2.1-7 libhiredis0.14 libcurl4 libjansson4 libssl3; do
    [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
for tool in -dev cmake clang gcc valgrind redis-server cmocka; do
    [[ $depends != *"$tool"* ]] || fail "Depends names a build or test tool ($tool): $depends"
done

dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/files"
for f in ./usr/bin/callgate ./usr/bin/callgate-sim ./usr/lib/systemd/system/callgate.service \
    ./usr/share/doc/callgate/callgate.env.example ./usr/share/doc/callgate/DEPLOY.md \
    ./usr/share/doc/callgate/nginx-callgate-location.conf; do
    grep -qx "$f" "$tmp/files" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$tmp/control"
for script in postinst prerm postrm; do
    grep -qx "./$script" "$tmp/control" || fail "no $script"
done

root=$tmp/root
dpkg-deb -x "$deb" "$root"
version=$("$root/usr/bin/callgate" --version) || fail "callgate --version failed"
[[ $version == "callgate "* ]] || fail "callgate --version printed: $version"

# The unit, pointed at the extracted binary, must verify.
unit=$tmp/callgate.service
sed "s#/usr/bin/callgate#$root/usr/bin/callgate#g" \
    "$root/usr/lib/systemd/system/callgate.service" >"$unit"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" || fail "systemd-analyze verify"
else
    fail "systemd-analyze is missing (scripts/deps.sh installs systemd)"
fi
for key in NoNewPrivileges=yes ProtectSystem=strict EnvironmentFile=/etc/callgate/callgate.env \
    Restart=on-failure User=callgate; do
    grep -qx "$key" "$unit" || fail "the unit lacks $key"
done

# The example configuration, as postinst installs it, unfilled: callgate
# refuses to start (exit 2) and names the options the gate needs.
mkdir "$tmp/wd"
set +e
(cd "$tmp/wd" && env -i PATH=/usr/bin:/bin \
    $(grep -v '^#' "$root/usr/share/doc/callgate/callgate.env.example" | grep . | xargs) \
    "$root/usr/bin/callgate" check-config) >"$tmp/check.out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || { cat "$tmp/check.out" >&2; fail "an unfilled configuration gave exit $rc, not 2"; }
for name in TWILIO_ACCOUNT_SID VAPI_API_KEY VAPI_ASSISTANT_ID VAPI_WEBHOOK_SECRET; do
    grep -q "$name: required by the admission gate" "$tmp/check.out" ||
        { cat "$tmp/check.out" >&2; fail "check-config does not name $name"; }
done
echo "package: dependencies, contents, unit and example configuration checked"
