#!/bin/sh
# Installs the berth agent on this machine and runs it as a systemd service, so that the machine
# joins a berth fleet: it enrolls with the node operator's wallet, then sends signed heartbeats.
#
#   curl -fsSL https://berth.example/v1/fleet/install.sh | sudo BERTH_JOIN_TOKEN=bjt_... sh
#
# Needs Node.js 20 or later with npm, and a Docker engine. Settings (environment variables):
#   BERTH_SERVER       the control plane (default: the server this script came from)
#   BERTH_JOIN_TOKEN   a join token from the operator (a closed fleet needs one)
#   BERTH_KEY_FILE     where the node operator's wallet key is kept (default /etc/berth/wallet.key;
#                      put it there yourself, readable by root only: this script never makes one)
#   BERTH_NODE_NAME    the node's name (default: this machine's host name)
#   BERTH_LABELS       node labels, space-separated key=value (region=eu-west gpu=a100)
#   BERTH_PACKAGE      what npm installs: a package spec, tarball URL or directory (default: the
#                      operator's fleet.agentPackage setting)
#   BERTH_ROOT         install under this directory instead of / (images, tests); nothing is started
set -eu

server="${BERTH_SERVER:-@BERTH_SERVER@}"
root="${BERTH_ROOT:-}"
key_file="${BERTH_KEY_FILE:-/etc/berth/wallet.key}"
name="${BERTH_NODE_NAME:-$(hostname)}"
package="${BERTH_PACKAGE:-@BERTH_PACKAGE@}"

fail() { echo "berth install: $*" >&2; exit 1; }

[ -n "$package" ] || fail "set BERTH_PACKAGE to the berth package to install (ask the operator)"
command -v node >/dev/null 2>&1 || fail "Node.js 20 or later is needed (node not found)"
command -v npm >/dev/null 2>&1 || fail "npm is needed (it comes with Node.js)"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || fail "Node.js 20 or later is needed (found $(node --version))"
if [ -z "$root" ] && ! command -v docker >/dev/null 2>&1; then
  echo "berth install: warning: no docker command found; the agent needs a Docker engine" >&2
fi

echo "installing berth into $root/opt/berth"
mkdir -p "$root/opt/berth" "$root/etc/berth" "$root/var/lib/berth-agent" "$root/etc/systemd/system"
npm install --prefix "$root/opt/berth" --omit=dev --no-audit --no-fund ${BERTH_NPM_FLAGS:-} "$package"

labels=""
for label in ${BERTH_LABELS:-}; do labels="$labels --label $label"; done

# The join token is a secret: it goes into a file only root reads, not into the unit.
umask 077
cat > "$root/etc/berth/agent.env" <<ENV
BERTH_SERVER=$server
BERTH_JOIN_TOKEN=${BERTH_JOIN_TOKEN:-}
ENV
umask 022

cat > "$root/etc/systemd/system/berth-agent.service" <<UNIT
[Unit]
Description=berth fleet agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
EnvironmentFile=/etc/berth/agent.env
ExecStart=/opt/berth/node_modules/.bin/berth agent --data-dir /var/lib/berth-agent --key-file $key_file --name $name$labels
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT

if [ -n "$root" ]; then
  echo "installed under $root; nothing started"
  exit 0
fi
[ -f "$key_file" ] || fail "put the node operator's wallet key in $key_file (mode 600), then run: systemctl enable --now berth-agent"
systemctl daemon-reload
systemctl enable --now berth-agent
echo "berth agent started: journalctl -u berth-agent -f"
