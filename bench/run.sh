#!/usr/bin/env bash
# bench/run.sh -- hivenet vs the kernel baseline, side by side, in one run.
#
# Builds, one after the other, two labs with the same layout and measures
# VM<->VM across hosts on both:
#
#   kernel  (prefix hbk-): hosts hbk-host1/2 joined by a Linux bridge in
#           hbk-ul (10.250.0.0/24 underlay, as `hivenet lab`); on each host a
#           Linux bridge br0 + kernel VXLAN (VNI 100, UDP 4789); VMs hbk-vm1
#           (host1) and hbk-vm2 (host2) on 10.40.0.0/24, MTU 1450.
#   hivenet (prefix hbh-): `hivenet lab up --hosts 2` (server + 2 agents),
#           one network 10.40.0.0/24 created through the API, VMs vm1@host1
#           and vm2@host2 on bound ports, addresses by dhclient.
#
#      [ul: br0]───────────────┐
#        │                      │
#   [host1] VXLAN ══════ [host2]       VM MTU 1450 on both
#      vm1 10.40.0.11 ──▶ vm2 10.40.0.12
#
# Metrics (medians over RUNS):
#   ping_rtt_us      steady ping RTT (PING_COUNT echoes every PING_INTERVAL)
#   tcp_p1_gbps      iperf3 TCP, 1 stream, DUR seconds
#   first_ping_us    RTT of the first echo of a new flow (kernel: bridge FDB
#                    flushed; hivenet: a freshly bound port, so no flow exists
#                    on either host); static ARP entries on both sides, so
#                    only flow setup is measured
#   cached_ping_us   median of the 5 echoes right after it (cached flow)
#   first_extra_us   first - cached, per run (FP_RUNS runs, default 5)
#
# Results: bench/results/<timestamp>/{results.tsv,summary.txt,logs}; a table
# with hivenet/kernel ratios is printed at the end.
#
# Usage: sudo bench/run.sh     (env: RUNS=3 DUR=5 PING_COUNT=20 FP_RUNS=5 DATAPATH=,
#        ONLY=kernel|hivenet to run one side only, HIVENET_BIN=path to use a
#        prebuilt hivenet instead of building ./cmd/hivenet)
# Needs: root, iproute2, iperf3, jq, curl, dhclient, ping, go (to build).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
: "${RUNS:=3}" "${DUR:=5}" "${PING_COUNT:=20}" "${PING_INTERVAL:=0.2}" "${FP_RUNS:=5}"
export RUNS DUR PING_COUNT PING_INTERVAL
SKIP_UDP=1 SKIP_P4=1 CPU_SAMPLE=0
# shellcheck source=lib-bench.sh
source "$HERE/lib-bench.sh"

lb_results_dir "$HERE/results/$(date +%Y%m%d-%H%M%S)"

KP=hbk-                   # kernel lab prefix
HP=hbh-                   # hivenet lab prefix
VM_MTU=1450
VM1_IP=10.40.0.11 VM2_IP=10.40.0.12
BIN="$OUT/hivenet"

[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root" >&2; exit 1; }
[ -n "${HIVENET_BIN:-}" ] || command -v go >/dev/null || { echo "bench/run.sh: needs go (or HIVENET_BIN)" >&2; exit 1; }
for t in ip iperf3 jq curl dhclient ping; do
    command -v "$t" >/dev/null || { echo "bench/run.sh: needs $t" >&2; exit 1; }
done

# first_vs_cached LAB NS DST RUN -- the first echo (a new flow), then the
# median of 5 echoes right after it (the cached flow), and their difference.
first_vs_cached() {
    local first cached
    first=$(lb_first_ping "$2" "$3")
    cached=$(lb_ping_rtts "$2" "$3" 5 0.1 | lb_median)
    lb_record "$1" l2-cross first_ping_us "$4" "$first"
    lb_record "$1" l2-cross cached_ping_us "$4" "$cached"
    lb_record "$1" l2-cross first_extra_us "$4" "$(awk -v a="$first" -v b="$cached" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/) printf "%.0f", a-b; else print "NA" }')"
}

# ------------------------------------------------------------- kernel ----
kernel_down() { lb_kernel_l2_down "$KP"; }
kernel_up() { lb_kernel_l2_up "$KP" "$VM_MTU" "$VM1_IP" "$VM2_IP"; }

kernel_first_packet() {
    local i m1 m2
    m1=$(ip -n ${KP}vm1 -j link show eth0 | jq -r '.[0].address')
    m2=$(ip -n ${KP}vm2 -j link show eth0 | jq -r '.[0].address')
    ip -n ${KP}vm1 neigh replace $VM2_IP lladdr "$m2" dev eth0 nud permanent
    ip -n ${KP}vm2 neigh replace $VM1_IP lladdr "$m1" dev eth0 nud permanent
    for i in $(seq 1 "$FP_RUNS"); do
        for h in 1 2; do lb_nsx ${KP}host$h bridge fdb flush dev br0 dynamic 2>/dev/null || true; done
        sleep 0.2
        first_vs_cached kernel ${KP}vm1 $VM2_IP "$i"
    done
}

# ------------------------------------------------------------ hivenet ----
api() { lb_hivenet_api "$HP" "$@"; }
hivenet_down() { lb_hivenet_down "$BIN" "$HP"; }
hivenet_port() { lb_hivenet_port "$HP" "$@"; }
hivenet_up() { lb_hivenet_l2_up "$BIN" "$HP" "${DATAPATH:-}" 10.40.0.0/24 "$VM_MTU" "$VM1_IP" "$VM2_IP"; }

# A new flow each run: a fresh port fpN on host1 (static address, static ARP
# both ways), then the first and the second echo to vm2.
hivenet_first_packet() {
    local i ip id mac m2 st
    m2=$(ip -n ${HP}vm2 -j link show eth0 | jq -r '.[0].address')
    for i in $(seq 1 "$FP_RUNS"); do
        ip=10.40.0.$((100 + i))
        id=$(hivenet_port fp$i host1 "$ip")
        lb_quiet "$OUT/lab-vm-add.txt" "$BIN" lab vm add fp$i --prefix $HP --host host1 --port "$id" --no-dhcp
        mac=$(ip -n ${HP}fp$i -j link show eth0 | jq -r '.[0].address')
        ip -n ${HP}fp$i link set eth0 mtu $VM_MTU
        ip -n ${HP}fp$i addr add "$ip/24" dev eth0
        ip -n ${HP}fp$i neigh replace $VM2_IP lladdr "$m2" dev eth0 nud permanent
        ip -n ${HP}vm2 neigh replace "$ip" lladdr "$mac" dev eth0 nud permanent
        for _ in $(seq 1 50); do   # bound by the agent (status ACTIVE)
            st=$(api GET "/v2.0/ports/$id" | jq -r .port.status)
            [ "$st" = ACTIVE ] && break
            sleep 0.1
        done
        sleep 0.2
        first_vs_cached hivenet ${HP}fp$i $VM2_IP "$i"
    done
}

cleanup() {
    local f
    for f in "$OUT"/iperf-*.pid; do [ -e "$f" ] && lb_iperf_server_stop "$f"; done
    f=$(lb_hivenet_rundir "$HP")/logs
    if [ -d "$f" ]; then cp -r "$f" "$OUT/hivenet-logs" 2>/dev/null || true; fi
    hivenet_down
    kernel_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ONLY=${ONLY:-}
if [ "$ONLY" != kernel ]; then
    if [ -n "${HIVENET_BIN:-}" ]; then
        cp "$HIVENET_BIN" "$BIN"
    else
        lb_log "building hivenet"
        (cd "$REPO" && go build -o "$BIN" ./cmd/hivenet)
    fi
fi

# ------------------------------------------------------------ measure ----
if [ "$ONLY" != hivenet ]; then
    kernel_up
    lb_case kernel l2-cross ${KP}vm1 ${KP}vm2 $VM2_IP "$OUT"
    kernel_first_packet
    kernel_down
fi
if [ "$ONLY" != kernel ]; then
    hivenet_up
    lb_case hivenet l2-cross ${HP}vm1 ${HP}vm2 $VM2_IP "$OUT"
    hivenet_first_packet
fi

# ------------------------------------------------------------ summary ----
med() { # med LAB METRIC -> median over runs (numbers only)
    awk -F'\t' -v l="$1" -v m="$2" '$1==l && $3==m && $5 ~ /^-?[0-9.]+$/ {print $5}' "$RESULTS_TSV" | lb_median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA"||b=="NA"||b==0) print "NA"; else printf "%.2fx", a/b }'; }
{
    echo "hivenet vs kernel baseline, VM<->VM across hosts ($(date -Is), RUNS=$RUNS DUR=${DUR}s, datapath ${DATAPATH:-default})"
    echo "2 vCPUs shared by everything: compare ratios, not absolute figures."
    echo
    printf '%-34s %12s %12s %12s   %s\n' metric kernel hivenet hivenet/kernel target
    for m in tcp_p1_gbps ping_rtt_us first_ping_us cached_ping_us first_extra_us; do
        k=$(med kernel $m); h=$(med hivenet $m)
        case $m in
            tcp_p1_gbps) tgt=">= 0.5x" ;;
            ping_rtt_us) tgt="<= 2x" ;;
            first_extra_us) tgt="hivenet <= 200 us" ;;
            *) tgt="" ;;
        esac
        r=$(ratio "$h" "$k"); [ "$m" = first_extra_us ] && r=""
        printf '%-34s %12s %12s %12s   %s\n' "$m" "$k" "$h" "$r" "$tgt"
    done
    echo
    echo "all runs:"
    lb_summary "$RESULTS_TSV"
} | tee "$OUT/summary.txt"
echo "results: $OUT"
