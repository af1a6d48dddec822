#!/usr/bin/env bash
# (hivenet: adapted from ../../shared/peers/kernel-vxlan-lab.sh for
# bench/l3.sh: namespace prefix hbkl, run dir /tmp/hivenet-bench-kernel-l3.
# The original's description follows, with its names.)
# kernel-vxlan-lab.sh -- kernel baseline for the overlay benchmarks.
#
# Two "hypervisor" network namespaces joined by a veth "underlay"; on each,
# linux bridges + kernel VXLAN devices; "VMs" are namespaces attached to the
# bridges by veth pairs.  Everything lives in namespaces created here; nothing
# touches the root namespace's addresses or routes.
#
#   kl-hv1 (192.168.100.1/ul0) <==== veth underlay ====> kl-hv2 (192.168.100.2/ul0)
#     br-a [vx100 VNI 100] gw 10.0.1.1               br-a [vx100 VNI 100]
#     br-b [vx200 VNI 200] gw 10.0.2.1               br-b [vx200 VNI 200]
#     kl-vm1 10.0.1.11 (br-a)                        kl-vm2 10.0.1.12 (br-a)
#     kl-vm4 10.0.1.14 (br-a)                        kl-vm3 10.0.2.13 (br-b)
#     kl-vm5 10.0.2.15 (br-b)
#
# Routing between 10.0.1.0/24 and 10.0.2.0/24 is done by kl-hv1 only (a
# "centralised" router: the bridges' IPs live on hv1), so vm1->vm3 is one
# routing hop plus one VXLAN crossing -- the same work OVN's distributed
# router does on the source chassis.
#
# Cases measured by `bench` (same names as ovn-lab.sh):
#   l2-cross  vm1 -> vm2  same subnet, different hypervisors (VXLAN)
#   l2-same   vm1 -> vm4  same subnet, same hypervisor (bridge only)
#   l3-cross  vm1 -> vm3  routed, different hypervisors
#   l3-same   vm1 -> vm5  routed, same hypervisor
#
# Usage: kernel-vxlan-lab.sh up|bench|down|status|offload on|off
#   up        (re)create the topology (runs `down` first: idempotent)
#   bench     run the measurement suite; results -> results/kernel-*.tsv
#             env: CASES="l2-cross l2-same l3-cross l3-same" LAB=kernel
#             plus the knobs documented in lib-bench.sh (RUNS, DUR, ...)
#   offload   on: VM veths keep kernel TX checksum/TSO offloads (default)
#             off: `ethtool -K eth0 tx off` in every VM, i.e. MTU-sized
#                  packets with full checksums, what OVS's userspace datapath
#                  needs (see ovn-lab.sh); use LAB=kernel-nooff when benching.
#   down      delete all namespaces and stop anything this script started
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-bench.sh
source "$HERE/lib-bench.sh"

P=hbkl                            # namespace name prefix
RUNDIR=/tmp/hivenet-bench-kernel-l3      # pid files
VM_MTU=1400                       # same VM MTU as ovn-lab.sh (room for Geneve)
UL_NET=192.168.100                # underlay, exists only inside kl-hv1/kl-hv2

# VM table: name hv bridge ip/prefix gateway
VMS=(
    "vm1 1 br-a 10.0.1.11/24 10.0.1.1"
    "vm2 2 br-a 10.0.1.12/24 10.0.1.1"
    "vm3 2 br-b 10.0.2.13/24 10.0.2.1"
    "vm4 1 br-a 10.0.1.14/24 10.0.1.1"
    "vm5 1 br-b 10.0.2.15/24 10.0.2.1"
)

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# IPv6 off everywhere: no ND/MLD chatter on the overlay during measurements
ns_add() {
    ip netns add "$1"; ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

up() {
    down >/dev/null 2>&1 || true
    mkdir -p "$RUNDIR"
    lb_log "creating hypervisor namespaces and the veth underlay"
    ns_add $P-hv1; ns_add $P-hv2
    ip link add ul0 netns $P-hv1 type veth peer ul0 netns $P-hv2
    for h in 1 2; do
        ip -n $P-hv$h addr add $UL_NET.$h/24 dev ul0
        ip -n $P-hv$h link set ul0 up
    done
    nsx $P-hv1 sysctl -qw net.ipv4.ip_forward=1

    lb_log "creating bridges + VXLAN devices (VNI 100 -> br-a, VNI 200 -> br-b)"
    for h in 1 2; do
        local o=$((3 - h))
        for vni in 100 200; do
            local br="br-a"; [ $vni = 200 ] && br="br-b"
            ip -n $P-hv$h link add $br type bridge
            ip -n $P-hv$h link add vx$vni type vxlan id $vni dstport 4789 \
                local $UL_NET.$h remote $UL_NET.$o dev ul0
            ip -n $P-hv$h link set vx$vni master $br
            ip -n $P-hv$h link set vx$vni up
            ip -n $P-hv$h link set $br up
        done
    done
    # the router (gateway addresses) lives on hv1 only
    ip -n $P-hv1 addr add 10.0.1.1/24 dev br-a
    ip -n $P-hv1 addr add 10.0.2.1/24 dev br-b

    lb_log "creating VM namespaces"
    local v name hv br ip gw
    for v in "${VMS[@]}"; do
        read -r name hv br ip gw <<<"$v"
        ns_add $P-$name
        ip link add eth0 netns $P-$name type veth peer $name netns $P-hv$hv
        ip -n $P-hv$hv link set $name mtu $VM_MTU master $br up
        ip -n $P-$name link set eth0 mtu $VM_MTU up
        ip -n $P-$name addr add "$ip" dev eth0
        ip -n $P-$name route add default via "$gw"
    done
    # bridge MTU follows the smallest port (1400); vxlan itself is 1450
    # first packets on the fresh topology (nothing learned/resolved yet)
    {
        echo "l2-cross $(lb_fresh_ping $P-vm1 10.0.1.12)"
        echo "l3-cross $(lb_fresh_ping $P-vm1 10.0.2.13)"
    } > "$RUNDIR/fresh-first-ping.txt"
    lb_log "fresh topology, first reply (case seq ms): $(tr '\n' ' ' < "$RUNDIR/fresh-first-ping.txt")"
    lb_log "topology up; sanity pings:"
    check
}

# check: one ping per case; non-zero exit if any fails.
check() {
    local ok=0 c
    for c in "vm1 10.0.1.12 l2-cross" "vm1 10.0.1.14 l2-same" "vm1 10.0.2.13 l3-cross" "vm1 10.0.2.15 l3-same"; do
        set -- $c
        if nsx $P-$1 ping -n -c 1 -W 2 "$2" >/dev/null 2>&1; then
            lb_log "  $3 ($1 -> $2): ok"
        else
            lb_log "  $3 ($1 -> $2): FAILED"; ok=1
        fi
    done
    return $ok
}

offload() {
    local mode=${1:?on|off} v name
    for v in "${VMS[@]}"; do
        read -r name _ <<<"$v"
        nsx $P-$name ethtool -K eth0 tx "$mode" >/dev/null 2>&1 || true
    done
    lb_log "VM eth0 tx offload: $mode"
}

# first_packet LAB: RUNS x first echo after flushing what the overlay path
# learns (VM ARP caches, hv1's router ARP entries on br-a/br-b, dynamic
# bridge FDB entries), vs the echo right after it.  Underlay ARP (ul0) is
# kept warm, as in ovn-lab.sh.
first_packet() {
    local lab=$1 i c ns br
    for i in $(seq 1 "$RUNS"); do
        for c in "l2-cross 10.0.1.12" "l3-cross 10.0.2.13"; do
            set -- $c
            for ns in vm1 vm2 vm3 vm4 vm5; do ip -n $P-$ns neigh flush all 2>/dev/null || true; done
            for br in br-a br-b; do
                ip -n $P-hv1 neigh flush dev $br 2>/dev/null || true
                for ns in $P-hv1 $P-hv2; do nsx $ns bridge fdb flush dev $br dynamic 2>/dev/null || true; done
            done
            sleep 0.2
            lb_record "$lab" "$1" first_ping_us "$i" "$(lb_first_ping $P-vm1 "$2")"
            lb_record "$lab" "$1" second_ping_us "$i" "$(lb_first_ping $P-vm1 "$2")"
        done
    done
}

bench() {
    local lab=${LAB:-kernel}
    local cases=${CASES-l2-cross l2-same l3-cross l3-same}
    ip netns list | grep -q "^$P-vm1" || { echo "not up; run: $0 up" >&2; exit 1; }
    mkdir -p "$RUNDIR" "${RESULTS_DIR:=$HERE/results}"
    RESULTS_TSV="$RESULTS_DIR/$lab-$(date +%Y%m%d-%H%M%S).tsv"
    export RESULTS_TSV
    WATCH=""   # kernel datapath: no daemon to watch, machine-wide CPU only
    check
    if [ -f "$RUNDIR/fresh-first-ping.txt" ]; then
        while read -r c seq ms; do
            lb_record "$lab" "$c" fresh_first_reply_seq 1 "$seq"
            lb_record "$lab" "$c" fresh_first_reply_ms 1 "$ms"
        done < "$RUNDIR/fresh-first-ping.txt"
    fi
    first_packet "$lab"
    local c
    for c in $cases; do
        case $c in
            l2-cross) lb_case "$lab" "$c" $P-vm1 $P-vm2 10.0.1.12 "$RUNDIR" ;;
            l2-same)  lb_case "$lab" "$c" $P-vm1 $P-vm4 10.0.1.14 "$RUNDIR" ;;
            l3-cross) lb_case "$lab" "$c" $P-vm1 $P-vm3 10.0.2.13 "$RUNDIR" ;;
            l3-same)  lb_case "$lab" "$c" $P-vm1 $P-vm5 10.0.2.15 "$RUNDIR" ;;
            *) echo "unknown case $c" >&2 ;;
        esac
    done
    echo "results: $RESULTS_TSV"
    lb_summary "$RESULTS_TSV"
}

down() {
    local f ns
    # iperf3 servers started by bench (by pid file only)
    for f in "$RUNDIR"/iperf-*.pid; do
        [ -e "$f" ] && lb_iperf_server_stop "$f"
    done
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        # any stray process still inside one of *our* namespaces
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
    done
    rm -rf "$RUNDIR"
    lb_log "kernel lab down"
}

status() {
    ip netns list | grep "^$P-" || echo "no $P-* namespaces"
}

cmd=${1:-}
shift || true
case $cmd in
    up) up ;;
    bench) bench ;;
    down) down ;;
    check) check ;;
    status) status ;;
    offload) offload "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 2 ;;
esac
