#!/usr/bin/env bash
# (hivenet: adapted from ../../shared/peers/ovn-lab.sh for bench/l3.sh:
# namespace prefix hbov, run dir /tmp/hivenet-bench-ovn, and an `acls`
# command adding stateful ACLs equivalent to a Neutron default security
# group. The original's description follows, with its names.)
# ovn-lab.sh -- OVN (on Open vSwitch, userspace "netdev" datapath) peer for the
# overlay benchmarks, two chassis on one machine.
#
# There is no openvswitch kernel module here, so every bridge uses
# datapath_type=netdev (dpif-netdev inside ovs-vswitchd).  Each "hypervisor" is
# a network namespace running its own ovsdb-server + ovs-vswitchd +
# ovn-controller, with its own run directory; the OVN central part
# (NB ovsdb, SB ovsdb, ovn-northd) runs in the root namespace and is reached
# over unix sockets only (filesystem unix sockets work across netns).
#
#   central (root ns): ovnnb_db.sock  ovnsb_db.sock  ovn-northd
#
#   ov-hv1 netns                                  ov-hv2 netns
#   ovsdb-server, ovs-vswitchd, ovn-controller    (same)
#   br-int (netdev) -- geneve ovn-hv2-0 ...       br-int (netdev)
#   br-phy (netdev): ul0 + internal port br-phy   br-phy: ul0 + br-phy
#        192.168.100.1/24 on br-phy  <== veth ==>  192.168.100.2/24 on br-phy
#
# Userspace tunnelling: the tunnel endpoint address must sit on an OVS
# internal port (br-phy) whose bridge owns the "physical" NIC (ul0, no IP).
# ovs-vswitchd routes the encapsulated packet with its own route table
# (learned from the netns' kernel routes: ovs/route/show) and resolves the
# next hop with its own ARP cache (tnl/neigh/show), then outputs on br-phy.
#
# Logical topology (OVN NB):
#   ls-a 10.0.1.0/24: vm1 (hv1) .11, vm2 (hv2) .12, vm4 (hv1) .14
#   ls-b 10.0.2.0/24: vm3 (hv2) .13, vm5 (hv1) .15
#   lr0: lrp-a 10.0.1.1/24 <-> lrp-b 10.0.2.1/24 (distributed router)
# VMs are netns attached by veth pairs (VM end eth0, hv end vmN on br-int).
# Their eth0 has TX checksum offload turned off: dpif-netdev does not fill in
# checksums of CHECKSUM_PARTIAL packets coming from a veth, so without this
# TCP/UDP between VMs is dropped by the receiver.
#
# Cases measured by `bench` (same names as kernel-vxlan-lab.sh):
#   l2-cross  vm1 -> vm2  ls-a, hv1 -> hv2 (Geneve)
#   l2-same   vm1 -> vm4  ls-a, both on hv1
#   l3-cross  vm1 -> vm3  ls-a -> lr0 -> ls-b, hv1 -> hv2
#   l3-same   vm1 -> vm5  ls-a -> lr0 -> ls-b, both on hv1
# plus first-packet metrics:
#   fresh_first_ping_us  first echo right after `up` built the topology
#                        (recorded by `up`, reported by `bench`)
#   first_ping_us        first echo after flushing the datapath flow cache
#                        (dpctl/del-flows), tunnel ARP cache and VM ARP
#                        caches on both chassis: every hop is an upcall
#   provision_ms         new VM on hv2: time from `ovn-nbctl lsp-add` +
#                        `ovs-vsctl add-port` until vm1 gets the first reply
#                        (10 ms ping interval, static ARP in vm1)
#
# Usage: ovn-lab.sh up|bench|down|status|check|show
#   up      (re)create everything (runs `down` first: idempotent)
#   bench   measurement suite; results -> results/ovn-*.tsv
#           env: CASES="l2-cross l2-same l3-cross l3-same" LAB=ovn
#           plus the knobs in lib-bench.sh (RUNS, DUR, SKIP_UDP, ...)
#   down    stop every daemon this script started (by pid file) and delete
#           all ov-* namespaces and /tmp/ovn-lab
#   show    ovn-nbctl show / ovn-sbctl show / ovs-vsctl show per chassis
#
# Experimental: OVN_LAB_TSO=1 ./ovn-lab.sh up  enables OVS userspace TSO
# (other_config:userspace-tso-enable) and keeps the VMs' offloads on.  In
# OVS 3.1 that only helps same-host traffic: packets carrying offload flags
# cannot be tunnelled by the userspace datapath and are dropped, so
# cross-host TCP stalls (bench with CASES="l2-same l3-same" LAB=ovn-tso).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-bench.sh
source "$HERE/lib-bench.sh"

P=hbov                            # namespace name prefix
RUNDIR=/tmp/hivenet-bench-ovn
CENTRAL=$RUNDIR/central
NB_SOCK=$CENTRAL/ovnnb_db.sock
SB_SOCK=$CENTRAL/ovnsb_db.sock
VM_MTU=1400                       # 1400 + 58 (Geneve w/ OVN option) < 1500
UL_NET=192.168.100                # underlay, exists only inside ov-hv1/ov-hv2
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
NB_SCHEMA=/usr/share/ovn/ovn-nb.ovsschema
SB_SCHEMA=/usr/share/ovn/ovn-sb.ovsschema

# VM table: name hv switch mac ip/prefix gateway
VMS=(
    "vm1 1 ls-a 0a:00:00:01:00:11 10.0.1.11/24 10.0.1.1"
    "vm2 2 ls-a 0a:00:00:01:00:12 10.0.1.12/24 10.0.1.1"
    "vm3 2 ls-b 0a:00:00:02:00:13 10.0.2.13/24 10.0.2.1"
    "vm4 1 ls-a 0a:00:00:01:00:14 10.0.1.14/24 10.0.1.1"
    "vm5 1 ls-b 0a:00:00:02:00:15 10.0.2.15/24 10.0.2.1"
)

nsx()   { local ns=$1; shift; ip netns exec "$ns" "$@"; }
nbctl() { ovn-nbctl --db="unix:$NB_SOCK" "$@"; }
sbctl() { ovn-sbctl --db="unix:$SB_SOCK" "$@"; }
hvdir() { echo "$RUNDIR/hv$1"; }
vsctl() { local h=$1; shift; ovs-vsctl --db="unix:$(hvdir "$h")/db.sock" "$@"; }
# ovs-appctl against chassis h's ovs-vswitchd / ovn-controller
vsapp() { local h=$1; shift; ovs-appctl -t "$(hvdir "$h")/ovs-vswitchd.ctl" "$@"; }
# (ovn-controller 23.03 has no --unixctl: its socket is ovn-controller.PID.ctl)
ocapp() { local h=$1 d; shift; d=$(hvdir "$h"); ovs-appctl -t "$d/ovn-controller.$(cat "$d/ovn-controller.pid").ctl" "$@"; }
# run a command in chassis h's netns with all OVS/OVN dirs pointing at its
# run dir (ovs-vswitchd puts br-int.mgmt in $OVS_RUNDIR, ovn-controller looks
# for it there)
hvrun() {
    local h=$1 d; shift; d=$(hvdir "$h")
    ip netns exec "$P-hv$h" env OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" \
        OVS_SYSCONFDIR="$d" OVN_RUNDIR="$d" OVN_LOGDIR="$d" OVN_DBDIR="$d" \
        OVN_SYSCONFDIR="$d" "$@"
}
# common daemon options: explicit pid file, control socket and log per daemon
# (console logging off: everything goes to the log file)
dopts() { echo "-vconsole:off --pidfile=$1/$2.pid --unixctl=$1/$2.ctl --log-file=$1/$2.log --detach --no-chdir"; }

# IPv6 off everywhere: no ND/MLD chatter on the overlay during measurements
ns_add() {
    ip netns add "$1"; ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# ------------------------------------------------------------- central ----
start_central() {
    mkdir -p "$CENTRAL"
    ovsdb-tool create "$CENTRAL/ovnnb_db.db" "$NB_SCHEMA"
    ovsdb-tool create "$CENTRAL/ovnsb_db.db" "$SB_SCHEMA"
    # shellcheck disable=SC2046
    ovsdb-server "$CENTRAL/ovnnb_db.db" --remote="punix:$NB_SOCK" $(dopts "$CENTRAL" ovnnb_db)
    # shellcheck disable=SC2046
    ovsdb-server "$CENTRAL/ovnsb_db.db" --remote="punix:$SB_SOCK" $(dopts "$CENTRAL" ovnsb_db)
    nbctl init
    # shellcheck disable=SC2046
    ovn-northd --ovnnb-db="unix:$NB_SOCK" --ovnsb-db="unix:$SB_SOCK" $(dopts "$CENTRAL" ovn-northd)
}

# ------------------------------------------------------------- chassis ----
start_chassis() {
    local h=$1 d; d=$(hvdir "$h")
    mkdir -p "$d"
    ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA"
    # shellcheck disable=SC2046
    hvrun "$h" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --remote=db:Open_vSwitch,Open_vSwitch,manager_options $(dopts "$d" ovsdb-server)
    vsctl "$h" --no-wait init
    if [ "${OVN_LAB_TSO:-0}" = 1 ]; then
        # experimental userspace TSO (read once at ovs-vswitchd start)
        vsctl "$h" --no-wait set open . other_config:userspace-tso-enable=true
    fi
    # --disable-system: do not probe for the (absent) kernel datapath
    # shellcheck disable=SC2046
    hvrun "$h" ovs-vswitchd "unix:$d/db.sock" --disable-system $(dopts "$d" ovs-vswitchd)

    # br-phy owns the underlay NIC; the tunnel endpoint IP goes on br-phy
    vsctl "$h" -- add-br br-phy -- set bridge br-phy datapath_type=netdev \
        -- add-port br-phy ul0
    ip -n "$P-hv$h" link set br-phy up
    ip -n "$P-hv$h" addr add "$UL_NET.$h/24" dev br-phy
    # br-int: created here (rather than by ovn-controller) so it is netdev
    vsctl "$h" -- add-br br-int -- set bridge br-int datapath_type=netdev \
        fail_mode=secure other_config:disable-in-band=true

    vsctl "$h" set open . \
        external_ids:system-id="hv$h" external_ids:hostname="hv$h" \
        external_ids:ovn-remote="unix:$SB_SOCK" \
        external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip="$UL_NET.$h" \
        external_ids:ovn-bridge=br-int external_ids:ovn-bridge-datapath-type=netdev
    hvrun "$h" ovn-controller "unix:$d/db.sock" --pidfile="$d/ovn-controller.pid" \
        --log-file="$d/ovn-controller.log" --detach --no-chdir -vconsole:off
}

add_vm() {   # add_vm name hv switch mac ip gw  (creates ns + veth + LSP + binding)
    local name=$1 hv=$2 ls=$3 mac=$4 ip=$5 gw=$6
    ns_add "$P-$name"
    ip link add eth0 netns "$P-$name" type veth peer "$name" netns "$P-hv$hv"
    ip -n "$P-$name" link set eth0 address "$mac" mtu "$VM_MTU" up
    ip -n "$P-$name" addr add "$ip" dev eth0
    ip -n "$P-$name" route add default via "$gw"
    # see header comment; with OVN_LAB_TSO=1 offloads stay on (OVS takes
    # the virtio-net header from the AF_PACKET socket instead)
    [ "${OVN_LAB_TSO:-0}" = 1 ] || nsx "$P-$name" ethtool -K eth0 tx off >/dev/null
    ip -n "$P-hv$hv" link set "$name" mtu "$VM_MTU" up
    nbctl lsp-add "$ls" "lsp-$name" -- lsp-set-addresses "lsp-$name" "$mac ${ip%/*}"
    vsctl "$hv" add-port br-int "$name" -- set interface "$name" \
        external_ids:iface-id="lsp-$name"
}

del_vm() {   # del_vm name hv
    vsctl "$2" --if-exists del-port br-int "$1"
    nbctl --if-exists lsp-del "lsp-$1"
    ip netns del "$P-$1" 2>/dev/null || true
}

up() {
    down >/dev/null 2>&1 || true
    mkdir -p "$RUNDIR"
    lb_log "namespaces + veth underlay"
    ns_add $P-hv1; ns_add $P-hv2
    ip link add ul0 netns $P-hv1 type veth peer ul0 netns $P-hv2
    ip -n $P-hv1 link set ul0 up; ip -n $P-hv2 link set ul0 up

    lb_log "OVN central (NB, SB, northd)"
    start_central
    lb_log "chassis hv1, hv2 (ovsdb-server, ovs-vswitchd netdev, ovn-controller)"
    start_chassis 1; start_chassis 2
    sbctl --timeout=30 wait-until Chassis hv1 >/dev/null
    sbctl --timeout=30 wait-until Chassis hv2 >/dev/null

    lb_log "logical topology: ls-a, ls-b, lr0"
    nbctl ls-add ls-a -- ls-add ls-b -- lr-add lr0 \
        -- lrp-add lr0 lrp-a 0a:00:00:01:00:01 10.0.1.1/24 \
        -- lrp-add lr0 lrp-b 0a:00:00:02:00:01 10.0.2.1/24 \
        -- lsp-add ls-a a-lr0 -- lsp-set-type a-lr0 router \
        -- lsp-set-addresses a-lr0 router -- lsp-set-options a-lr0 router-port=lrp-a \
        -- lsp-add ls-b b-lr0 -- lsp-set-type b-lr0 router \
        -- lsp-set-addresses b-lr0 router -- lsp-set-options b-lr0 router-port=lrp-b
    local v
    for v in "${VMS[@]}"; do
        # shellcheck disable=SC2086
        add_vm $v
    done
    lb_log "waiting until both chassis have installed the flows (--wait=hv)"
    nbctl --timeout=60 --wait=hv sync
    # first packets on the freshly built topology: nothing cached anywhere
    # yet (datapath flows, tunnel-endpoint ARP, VM ARP).  l2 first, then l3.
    {
        echo "l2-cross $(lb_fresh_ping $P-vm1 10.0.1.12)"
        echo "l3-cross $(lb_fresh_ping $P-vm1 10.0.2.13)"
    } > "$RUNDIR/fresh-first-ping.txt"
    lb_log "fresh topology, first reply (case seq ms): $(tr '\n' ' ' < "$RUNDIR/fresh-first-ping.txt")"
    lb_log "topology up; sanity pings:"
    check
}

check() {
    local ok=0 c
    for c in "vm1 10.0.1.12 l2-cross" "vm1 10.0.1.14 l2-same" "vm1 10.0.2.13 l3-cross" "vm1 10.0.2.15 l3-same"; do
        set -- $c
        if nsx "$P-$1" ping -n -c 1 -W 2 "$2" >/dev/null 2>&1; then
            lb_log "  $3 ($1 -> $2): ok"
        else
            lb_log "  $3 ($1 -> $2): FAILED"; ok=1
        fi
    done
    return $ok
}

show() {
    nbctl show; sbctl show
    for h in 1 2; do
        echo "--- hv$h"; vsctl "$h" show
        vsapp "$h" ovs/route/show | grep -v '^Cached: 127\|::' || true
        vsapp "$h" tnl/neigh/show || true
        echo "datapath flows: $(vsapp "$h" dpctl/dump-flows 2>/dev/null | wc -l)"
        echo "openflow flows br-int: $(hvrun "$h" ovs-ofctl dump-flows br-int 2>/dev/null | wc -l)"
    done
}

# first_packet LAB: RUNS x first echo after flushing the datapath flow
# cache (dpctl/del-flows) on both chassis and the VMs' ARP caches, so every
# hop is an upcall through the full OpenFlow pipeline.  The tunnel-endpoint
# ARP cache (tnl/neigh) is left warm, like the kernel lab keeps its underlay
# ARP: OVS drops the packet that finds it empty (see fresh_first_*).
first_packet() {
    local lab=$1 i c ns h
    for i in $(seq 1 "$RUNS"); do
        for c in "l2-cross 10.0.1.12" "l3-cross 10.0.2.13"; do
            set -- $c
            for ns in vm1 vm2 vm3 vm4 vm5; do ip -n "$P-$ns" neigh flush all 2>/dev/null || true; done
            for h in 1 2; do vsapp "$h" dpctl/del-flows >/dev/null; done
            sleep 0.2
            lb_record "$lab" "$1" first_ping_us "$i" "$(lb_first_ping "$P-vm1" "$2")"
            lb_record "$lab" "$1" second_ping_us "$i" "$(lb_first_ping "$P-vm1" "$2")"
        done
    done
}

# provision LAB: RUNS x (new port vm9 on hv2 in ls-a; ms until vm1 gets a reply)
provision() {
    local lab=$1 i t0 first ms rtt log=$RUNDIR/provision-ping.log
    local mac=0a:00:00:01:00:99 ip=10.0.1.99
    for i in $(seq 1 "$RUNS"); do
        del_vm vm9 2
        # data plane pieces that exist before the "cloud" acts: ns + veth
        ns_add $P-vm9
        ip link add eth0 netns $P-vm9 type veth peer vm9 netns $P-hv2
        ip -n $P-vm9 link set eth0 address $mac mtu $VM_MTU up
        ip -n $P-vm9 addr add $ip/24 dev eth0
        nsx $P-vm9 ethtool -K eth0 tx off >/dev/null
        ip -n $P-hv2 link set vm9 mtu $VM_MTU up
        ip -n $P-vm1 neigh replace $ip lladdr $mac dev eth0 nud permanent
        # ping every 10 ms with timestamps, start the clock, then provision
        # (ip netns exec execs ping, so $! is ping itself and can be killed)
        ip netns exec $P-vm1 ping -n -D -i 0.01 -w 20 $ip > "$log" 2>&1 &
        local ppid=$!
        t0=$(date +%s.%N)
        nbctl lsp-add ls-a lsp-vm9 -- lsp-set-addresses lsp-vm9 "$mac $ip"
        vsctl 2 add-port br-int vm9 -- set interface vm9 external_ids:iface-id=lsp-vm9
        local waited=0
        while ! grep -aq 'bytes from' "$log" && [ $waited -lt 200 ]; do sleep 0.05; waited=$((waited+1)); done
        kill "$ppid" 2>/dev/null || true; wait "$ppid" 2>/dev/null || true
        first=$(grep -am1 'bytes from' "$log" | sed -n 's/^\[\([0-9.]*\)\].*/\1/p')
        rtt=$(grep -am1 'bytes from' "$log" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
        if [ -n "$first" ]; then
            ms=$(awk -v a="$t0" -v b="$first" -v r="$rtt" 'BEGIN{printf "%.0f", (b-a)*1000}')
            lb_record "$lab" provision provision_ms "$i" "$ms"
            lb_record "$lab" provision provision_first_rtt_us "$i" "$(awk -v r="$rtt" 'BEGIN{printf "%.1f", r*1000}')"
        else
            lb_record "$lab" provision provision_ms "$i" fail
        fi
        ip -n $P-vm1 neigh del $ip dev eth0 2>/dev/null || true
        del_vm vm9 2
        sleep 0.5
    done
}

bench() {
    local lab=${LAB:-ovn}
    local cases=${CASES-l2-cross l2-same l3-cross l3-same}
    [ -S "$NB_SOCK" ] || { echo "not up; run: $0 up" >&2; exit 1; }
    mkdir -p "${RESULTS_DIR:=$HERE/results}"
    RESULTS_TSV="$RESULTS_DIR/$lab-$(date +%Y%m%d-%H%M%S).tsv"
    export RESULTS_TSV
    WATCH="vswitchd1=$(cat "$(hvdir 1)/ovs-vswitchd.pid") vswitchd2=$(cat "$(hvdir 2)/ovs-vswitchd.pid")"
    WATCH="$WATCH controller1=$(cat "$(hvdir 1)/ovn-controller.pid") controller2=$(cat "$(hvdir 2)/ovn-controller.pid")"
    WATCH_THREADS=1
    export WATCH WATCH_THREADS
    check
    if [ -f "$RUNDIR/fresh-first-ping.txt" ]; then
        while read -r c seq ms; do
            lb_record "$lab" "$c" fresh_first_reply_seq 1 "$seq"
            lb_record "$lab" "$c" fresh_first_reply_ms 1 "$ms"
        done < "$RUNDIR/fresh-first-ping.txt"
    fi
    first_packet "$lab"
    provision "$lab"
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
    for h in 1 2; do
        lb_log "hv$h datapath: $(vsapp "$h" dpctl/show 2>/dev/null | grep -m1 'lookups' || true)"
    done
    echo "results: $RESULTS_TSV"
    lb_summary "$RESULTS_TSV"
}

# stop_pidfile FILE EXE -- TERM (then KILL) the process named in FILE, but
# only if it really is EXE (guards against a stale pid file).
# acls: the equivalent of a Neutron default security group on every VM
# port, as OVN's Neutron driver writes it: a port group, egress allowed
# (stateful), ingress only from members (stateful), everything else dropped.
acls() {
    local ports
    ports=$(nbctl --bare --columns=name find logical_switch_port | grep '^lsp-vm' | tr '\n' ' ')
    # shellcheck disable=SC2086
    nbctl pg-add pg_vms $ports
    nbctl acl-add pg_vms from-lport 1001 'inport == @pg_vms && ip4' allow-related
    nbctl acl-add pg_vms to-lport 1001 'outport == @pg_vms && ip4 && ip4.src == $pg_vms_ip4' allow-related
    nbctl acl-add pg_vms to-lport 1000 'outport == @pg_vms && ip4' drop
    nbctl --timeout=60 --wait=hv sync
    lb_log "ACLs on port group pg_vms ($ports):"
    nbctl acl-list pg_vms >&2
}

stop_pidfile() {
    local f=$1 exe=$2 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$exe"; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

down() {
    local f h ns pid
    for f in "$RUNDIR"/iperf-*.pid; do [ -e "$f" ] && lb_iperf_server_stop "$f"; done
    for h in 1 2; do stop_pidfile "$(hvdir $h)/ovn-controller.pid" ovn-controller; done
    for h in 1 2; do stop_pidfile "$(hvdir $h)/ovs-vswitchd.pid" ovs-vswitchd; done
    for h in 1 2; do stop_pidfile "$(hvdir $h)/ovsdb-server.pid" ovsdb-server; done
    stop_pidfile "$CENTRAL/ovn-northd.pid" ovn-northd
    stop_pidfile "$CENTRAL/ovnsb_db.pid" ovsdb-server
    stop_pidfile "$CENTRAL/ovnnb_db.pid" ovsdb-server
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        # anything still inside one of *our* namespaces was started by us
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
    done
    rm -rf "$RUNDIR"
    lb_log "ovn lab down"
}

status() {
    local f
    ip netns list | grep "^$P-" || echo "no $P-* namespaces"
    for f in "$CENTRAL"/*.pid "$RUNDIR"/hv*/*.pid; do
        [ -e "$f" ] || continue
        printf '%-50s pid %s %s\n' "$f" "$(cat "$f")" "$([ -d /proc/"$(cat "$f")" ] && echo running || echo DEAD)"
    done
}

cmd=${1:-}
shift || true
case $cmd in
    up) up ;;
    acls) acls ;;
    bench) bench ;;
    down) down ;;
    check) check ;;
    status) status ;;
    show) show ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 2 ;;
esac
