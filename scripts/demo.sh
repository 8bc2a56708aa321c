#!/usr/bin/env bash
# The main job, end to end on this machine: register the seed's native hook and two WASM hooks,
# run a real runc container with them, and show what ran. Needs root (it runs a container).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
target="${CARGO_TARGET_DIR:-target}"
echo "== building hookhost (the demo profile: unoptimised, no LTO) and the example WASM hooks"
scripts/cargo-static.sh build --profile demo -q --bin hookhost
cargo build --release -q --target wasm32-wasip1 -p hosts-entry -p audit-log
hookhost="$(scripts/cargo-static.sh --print-bin-dir demo)/hookhost"
wasm="$(cd "$target/wasm32-wasip1/release" && pwd)"

work="$(mktemp -d /tmp/hookhost-demo.XXXXXX)"
trap 'runc --root "$work/runc" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export HOOKHOST_ROOT="$work/registry"
mkdir -p /tmp/a /tmp/b /tmp/c "$work/audit"

echo "== registering hooks"
set -x
"$hookhost" create --type prestart --env platform=linux --timeout 5 --args ls,/tmp/a myFirstHook /bin/ls
"$hookhost" create --type createContainer --allow-rootfs=rw --args hosts-entry,db.internal=10.0.0.5 hosts "$wasm/hosts-entry.wasm"
"$hookhost" create --type poststart,poststop --allow-dir "$work/audit:/log:rw" audit "$wasm/audit-log.wasm"
"$hookhost" ls
{ set +x; } 2>/dev/null

echo "== a busybox container, its hooks injected into config.json"
bundle="$work/bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in sh cat echo ls; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
(cd "$bundle" && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s/"readonly": true/"readonly": false/' "$bundle/config.json"
sed -i 's|^\(\s*\)"sh"$|\1"sh", "-c", "echo container: my /etc/hosts says; cat /etc/hosts"|' "$bundle/config.json"
set -x
"$hookhost" inject --bundle "$bundle" --add-hook 'myFirstHook:["/tmp/b","/tmp/c"]' --add-hook hosts --add-hook audit
runc --root "$work/runc" run --bundle "$bundle" demo
"$hookhost" events --container demo
cat "$work/audit/audit.jsonl"
