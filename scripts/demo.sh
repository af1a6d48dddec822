#!/usr/bin/env bash
# scripts/demo.sh -- the hivenet demo on one machine: installs what it needs
# (Debian packages, Go if missing), builds hivenet and runs `hivenet lab demo`
# (3 hosts in network namespaces, two tenant networks on the same CIDR and a
# routed third one, six VMs with dhclient, a ping matrix, SNAT, a security
# group and a floating IP reached from an "outside" namespace). The agents
# run their default datapath, ebpf (userspace where the kernel lacks eBPF
# support: each agent says so in its log); DATAPATH=userspace picks the
# other one. Extra arguments go to `hivenet lab demo` (for example --keep
# to leave the lab running). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh
need_root "$@"
install_debs
ensure_go
mkdir -p /run/hivenet/bin
go build -o /run/hivenet/bin/hivenet ./cmd/hivenet
exec /run/hivenet/bin/hivenet lab demo ${DATAPATH:+--datapath "$DATAPATH"} "$@"
