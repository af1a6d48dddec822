#!/usr/bin/env bash
# bench/conntrack-ab.sh -- what connection tracking in the eBPF datapath
# costs and saves: two hivenet L2 labs up at once, the same in all but
# --datapath-conntrack (ct: on, the default; agent: off, conntrack in the
# agents), measured in alternating rounds so both see the same machine.
#
#   vm1 10.41.0.11 @host1 ──▶ vm2 10.41.0.12 @host2, one network, the
#   project's default security group (stateful: ingress only from members)
#
# Metrics per round (medians over RUNS):
#   tcp_p1_gbps     iperf3 TCP, 1 stream, DUR seconds: the per-packet cost
#                   of the conntrack lookup (every packet of a tracked port)
#   ping_rtt_us     steady ping RTT
#   flows_per_s     bench/flowsweep: FLOWS UDP request/response exchanges,
#                   each from a new source port (a new 5-tuple), CONC in flight
#   setups          flows the two agents installed per exchange
#
# Usage: sudo bench/conntrack-ab.sh   (env: RUNS=5 DUR=5 FLOWS=5000 CONC=16
#        PING_COUNT=50, HIVENET_BIN=prebuilt binary)
# Results: bench/results/conntrack-ab-<timestamp>/{results.tsv,summary.txt}.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
: "${RUNS:=5}" "${DUR:=5}" "${FLOWS:=5000}" "${CONC:=16}" "${PING_COUNT:=50}" "${PING_INTERVAL:=0.02}"
export RUNS DUR PING_COUNT PING_INTERVAL
SKIP_UDP=1 SKIP_P4=1 CPU_SAMPLE=0
# shellcheck source=lib-bench.sh
source "$HERE/lib-bench.sh"

[ "$(id -u)" = 0 ] || { echo "bench/conntrack-ab.sh: needs root" >&2; exit 1; }
for t in ip iperf3 jq curl go; do
    command -v "$t" >/dev/null || { echo "bench/conntrack-ab.sh: needs $t" >&2; exit 1; }
done

lb_results_dir "$HERE/results/conntrack-ab-$(date +%Y%m%d-%H%M%S)"
BIN="$OUT/hivenet" SWEEP="$OUT/flowsweep"
IP1=10.41.0.11 IP2=10.41.0.12 SWEEP_PORT=7300
declare -A PFX=([ct]=hbc-t- [agent]=hbc-a-)
sweep_pids=()

cleanup() {
    local s
    for s in ct agent; do lb_iperf_server_stop "$OUT/iperf-$s.pid"; done
    [ ${#sweep_pids[@]} -eq 0 ] || kill "${sweep_pids[@]}" 2>/dev/null || true
    for s in ct agent; do lb_hivenet_down "$BIN" "${PFX[$s]}"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lb_log "building hivenet and flowsweep"
if [ -n "${HIVENET_BIN:-}" ]; then cp "$HIVENET_BIN" "$BIN"; else (cd "$REPO" && go build -o "$BIN" ./cmd/hivenet); fi
(cd "$REPO" && go build -o "$SWEEP" ./bench/flowsweep)

LB_LAB_ARGS="" lb_hivenet_l2_up "$BIN" "${PFX[ct]}" ebpf 10.41.0.0/24 1450 $IP1 $IP2
LB_LAB_ARGS="--agent-arg=--datapath-conntrack=false" lb_hivenet_l2_up "$BIN" "${PFX[agent]}" ebpf 10.41.0.0/24 1450 $IP1 $IP2
for s in ct agent; do
    p=${PFX[$s]}
    for h in host1 host2; do   # the agents really run what the column says
        d=$(lb_hivenet_stat "$BIN" "$p" $h .datapath)
        [ "$d" = ebpf ] || { lb_log "$s: the agent of $h runs the $d datapath"; exit 1; }
    done
    lb_iperf_server_start "${p}vm2" "$OUT/iperf-$s.pid"
    ip netns exec "${p}vm2" "$SWEEP" -listen "0.0.0.0:$SWEEP_PORT" & sweep_pids+=($!)
    sleep 0.2
    lb_ping_rtts "${p}vm1" $IP2 3 0.2 >/dev/null || true
done

installed() { # installed P -> flows installed so far by both agents
    echo $(( $(lb_hivenet_stat "$BIN" "$1" host1 .flows_installed) + $(lb_hivenet_stat "$BIN" "$1" host2 .flows_installed) ))
}
for r in $(seq 1 "$RUNS"); do
    order=(ct agent); [ $((r % 2)) = 0 ] && order=(agent ct)
    for s in "${order[@]}"; do
        p=${PFX[$s]}
        lb_tcp_run "$s" l2 "${p}vm1" $IP2 1 "$r"
        lb_ping_run "$s" l2 "${p}vm1" $IP2 "$r"
        f0=$(installed "$p")
        out=$(ip netns exec "${p}vm1" "$SWEEP" -connect "$IP2:$SWEEP_PORT" -flows "$FLOWS" -concurrency "$CONC" \
            -sport $((10000 + (r - 1) * FLOWS)) 2>&1 || true)
        f1=$(installed "$p")
        lb_record "$s" l2 flows_per_s "$r" "$(sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' <<<"$out")"
        lb_record "$s" l2 flow_fails "$r" "$(sed -n 's/.*fails=\([0-9]*\).*/\1/p' <<<"$out")"
        lb_record "$s" l2 setups "$r" "$(awk -v a="$f0" -v b="$f1" -v n="$FLOWS" 'BEGIN{printf "%.2f", (b-a)/n}')"
    done
done

med() { awk -F'\t' -v l="$1" -v m="$2" '$1==l && $3==m && $5 ~ /^-?[0-9.]+$/ {print $5}' "$RESULTS_TSV" | lb_median; }
{
    echo "eBPF datapath, conntrack in the datapath (ct) vs in the agents (agent), L2 across hosts ($(date -Is), RUNS=$RUNS alternating)"
    echo "2 vCPUs shared by everything: compare ratios, not absolute figures."
    echo
    printf '%-14s %10s %10s %8s\n' metric ct agent ct/agent
    for m in tcp_p1_gbps ping_rtt_us flows_per_s flow_fails setups; do
        c=$(med ct $m); a=$(med agent $m)
        printf '%-14s %10s %10s %8s\n' $m "$c" "$a" "$(awk -v a="$c" -v b="$a" 'BEGIN{ if (a=="NA"||b=="NA"||b==0) print "-"; else printf "%.2fx", a/b }')"
    done
    echo
    echo "all runs:"
    lb_summary "$RESULTS_TSV"
} | tee "$OUT/summary.txt"
echo "results: $OUT"
