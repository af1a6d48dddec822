#!/usr/bin/env bash
# bench/l3.sh -- routed VM<->VM across hosts: hivenet vs the kernel baseline
# vs OVN, side by side, in one run, plus the simulation's Go benchmark.
#
# Three labs, built one after the other, same logical layout:
#
#   net a 10.0.1.0/24  vm1 10.0.1.11 @host1 ──▶ router ──▶ net b 10.0.2.0/24  vm3 10.0.2.13 @host2
#
#   kernel  bench/kernel-l3-lab.sh (prefix hbkl): Linux bridges + kernel
#           VXLAN, the router is hv1's kernel (ip_forward); no firewall.
#   ovn     bench/ovn-lab.sh (prefix hbov): OVN 23.03 on OVS 3.1 userspace
#           datapath, distributed lr0, Geneve; `acls` adds the stateful
#           ACLs of a Neutron default security group (port group, egress
#           allow-related, ingress from members allow-related, else drop).
#   hivenet `hivenet lab up --hosts 2` (prefix hbl3-): networks, a router
#           and ports through the API; both VMs in the project's default
#           security group (stateful, ingress only from members).
#   agentct the same hivenet lab with --datapath-conntrack=false: connection
#           tracking in the agents, an upcall per connection on each host
#           (as with the userspace datapath); only the connection rates.
#
# Metrics (medians over RUNS):
#   ping_rtt_us        steady ping RTT vm1 -> vm3
#   tcp_p1_gbps        iperf3 TCP, 1 stream, DUR seconds (and retransmits)
#   conn_per_s         new TCP connections per second vm1 -> vm3 (bench/connrate:
#                      connect, 1 byte each way, client closes; CONC in flight,
#                      DUR seconds), every connection a new flow (tcp_tw_reuse=0);
#                      conn_fails counts failures; conn_new_flows is the flows
#                      hivenet's agents installed per connection (0: connections
#                      reach no agent; 2: one upcall and flow per host each)
#   conn_per_s_reuse   the same with tcp_tw_reuse=1: source ports come back a
#                      second after their connection closed (conn_fails_reuse,
#                      conn_new_flows_reuse); see conn_rate below
#   sim_ns_op, sim_allocs_op   go test -bench SimulateRouterSG ./internal/simulation
#
# Results: bench/results/l3-<timestamp>/{results.tsv,summary.txt}; the table
# with ratios is printed at the end.
#
# Usage: sudo bench/l3.sh   (env: RUNS=3 DUR=5 CONC=8 PING_COUNT=20,
#        ONLY="kernel ovn hivenet agentct go" to run some, HIVENET_BIN=prebuilt binary,
#        DATAPATH=userspace for the agents' other datapath (default: theirs, ebpf))
# Needs: root, iproute2, iperf3, jq, curl, dhclient, go; for OVN the Debian
# packages openvswitch-switch ovn-central ovn-host (only this script uses them).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
: "${RUNS:=3}" "${DUR:=5}" "${CONC:=8}" "${PING_COUNT:=20}" "${PING_INTERVAL:=0.2}"
: "${ONLY:=kernel ovn hivenet agentct go}"
export RUNS DUR PING_COUNT PING_INTERVAL
SKIP_UDP=1 SKIP_P4=1 CPU_SAMPLE=0
# shellcheck source=lib-bench.sh
source "$HERE/lib-bench.sh"

lb_results_dir "$HERE/results/l3-$(date +%Y%m%d-%H%M%S)"
RESULTS_DIR="$OUT"
export RESULTS_DIR

HP=hbl3-
HRUN=/run/hivenet/lab-hbl3
BIN="$OUT/hivenet"
CONNRATE="$OUT/connrate"
SRC_IP=10.0.1.11 DST_IP=10.0.2.13 CONN_PORT=7001

[ "$(id -u)" = 0 ] || { echo "bench/l3.sh: needs root" >&2; exit 1; }
for t in ip iperf3 jq curl go; do
    command -v "$t" >/dev/null || { echo "bench/l3.sh: needs $t" >&2; exit 1; }
done
has() { [[ " $ONLY " == *" $1 "* ]]; }
if has ovn && ! command -v ovn-nbctl >/dev/null; then
    echo "bench/l3.sh: OVN missing: apt-get install openvswitch-switch ovn-central ovn-host (or ONLY without ovn)" >&2
    exit 1
fi
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# conn_rate LAB SRC_NS DST_NS -- connrate from SRC_NS to DST_IP, RUNS runs
# in each of two modes, every run to a server port of its own (so no run
# meets another's 5-tuples or TIME_WAIT sockets):
#   new    tcp_tw_reuse=0: no source port comes back within a run, so
#          every connection is a new flow (conn_per_s, conn_fails);
#   reuse  tcp_tw_reuse=1: the client reuses a source port a second after
#          its connection closed, so connections meet the flows and the
#          conntrack entries of earlier ones (conn_per_s_reuse,
#          conn_fails_reuse).
# hivenet also records the flows its agents installed per connection
# (conn_new_flows*: 2 when every connection is a new flow on both hosts).
conn_rate() {
    local lab=$1 src=$2 dst=$3 i out pids=() f0 f1 n mode sfx port
    for port in $(seq "$CONN_PORT" $((CONN_PORT + 2 * RUNS))); do
        nsx "$dst" "$CONNRATE" -listen "0.0.0.0:$port" & pids+=($!)
    done
    sleep 0.3
    # The whole port range: connect() takes every other port.
    nsx "$src" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
    nsx "$src" "$CONNRATE" -connect "$DST_IP:$CONN_PORT" -duration 1s -concurrency 2 >/dev/null 2>&1 || true # warm (ARP)
    for mode in new reuse; do
        if [ $mode = new ]; then sfx=""; nsx "$src" sysctl -qw net.ipv4.tcp_tw_reuse=0
        else sfx=_reuse; nsx "$src" sysctl -qw net.ipv4.tcp_tw_reuse=1; fi
        for i in $(seq 1 "$RUNS"); do
            port=$CONN_PORT; port=$((port + i)); [ $mode = reuse ] && port=$((port + RUNS))
            [[ $lab = hivenet* ]] && f0=$(hivenet_flows_installed)
            out=$(nsx "$src" "$CONNRATE" -connect "$DST_IP:$port" -duration "${DUR}s" -concurrency "$CONC" 2>&1 || true)
            echo "$mode: $out" >> "$OUT/connrate-$lab.txt"
            lb_record "$lab" l3-cross "conn_per_s$sfx" "$i" "$(sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' <<<"$out")"
            lb_record "$lab" l3-cross "conn_fails$sfx" "$i" "$(sed -n 's/.*fails=\([0-9]*\).*/\1/p' <<<"$out")"
            if [[ $lab = hivenet* ]]; then
                f1=$(hivenet_flows_installed); n=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' <<<"$out")
                lb_record "$lab" l3-cross "conn_new_flows$sfx" "$i" "$(awk -v a="$f0" -v b="$f1" -v n="$n" 'BEGIN{ if (n > 0) printf "%.2f", (b-a)/n; else print "NA" }')"
            fi
            sleep 1
        done
    done
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}

# --------------------------------------------------------------- hivenet ----
api() { # api METHOD PATH [JSON] -> response body; fails on HTTP >= 400
    local url token
    url=$(jq -r .api_url "$HRUN/lab.json"); token=$(jq -r .admin_token "$HRUN/lab.json")
    curl -sS --fail-with-body -X "$1" -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$url$2"
}
# hivenet_flows_installed -> flows installed so far by both agents.
hivenet_flows_installed() {
    local h t=0 n
    for h in host1 host2; do
        n=$("$BIN" agent-stats --lab $h --prefix $HP -o json | jq -r .flows_installed) || n=0
        t=$((t + n))
    done
    echo $t
}
hivenet_down() { [ -x "$BIN" ] && "$BIN" lab down --prefix $HP >/dev/null 2>&1 || true; }

hivenet_up() { # hivenet_up [LAB UP ARGS...]
    hivenet_down
    lb_log "hivenet: lab up (2 hosts) $*, networks a and b, router, vm1@host1, vm3@host2 (default security group)"
    "$BIN" lab up --prefix $HP --hosts 2 ${DATAPATH:+--datapath "$DATAPATH"} "$@" > "$OUT/hivenet-lab-up.txt"
    local na nb sa sb r n
    na=$(api POST /v2.0/networks '{"network":{"name":"a"}}' | jq -r .network.id)
    nb=$(api POST /v2.0/networks '{"network":{"name":"b"}}' | jq -r .network.id)
    sa=$(api POST /v2.0/subnets "{\"subnet\":{\"network_id\":\"$na\",\"cidr\":\"10.0.1.0/24\",\"ip_version\":4}}" | jq -r .subnet.id)
    sb=$(api POST /v2.0/subnets "{\"subnet\":{\"network_id\":\"$nb\",\"cidr\":\"10.0.2.0/24\",\"ip_version\":4}}" | jq -r .subnet.id)
    r=$(api POST /v2.0/routers '{"router":{"name":"r"}}' | jq -r .router.id)
    api PUT "/v2.0/routers/$r/add_router_interface" "{\"subnet_id\":\"$sa\"}" >/dev/null
    api PUT "/v2.0/routers/$r/add_router_interface" "{\"subnet_id\":\"$sb\"}" >/dev/null
    api POST /v2.0/ports "{\"port\":{\"name\":\"vm1\",\"network_id\":\"$na\",\"binding:host_id\":\"host1\",
        \"fixed_ips\":[{\"subnet_id\":\"$sa\",\"ip_address\":\"$SRC_IP\"}]}}" >/dev/null
    api POST /v2.0/ports "{\"port\":{\"name\":\"vm3\",\"network_id\":\"$nb\",\"binding:host_id\":\"host2\",
        \"fixed_ips\":[{\"subnet_id\":\"$sb\",\"ip_address\":\"$DST_IP\"}]}}" >/dev/null
    "$BIN" lab vm add vm1 --prefix $HP --host host1 --port vm1
    "$BIN" lab vm add vm3 --prefix $HP --host host2 --port vm3
    for n in $(seq 1 50); do
        nsx ${HP}vm1 ping -n -c 1 -W 1 $DST_IP >/dev/null 2>&1 && return 0
    done
    lb_log "hivenet: vm1 cannot reach vm3 through the router"; return 1
}

cleanup() {
    local f
    for f in "$OUT"/iperf-*.pid; do [ -e "$f" ] && lb_iperf_server_stop "$f"; done
    if [ -d "$HRUN/logs" ]; then cp -r "$HRUN/logs" "$OUT/hivenet-logs" 2>/dev/null || true; fi
    hivenet_down
    has kernel && "$HERE/kernel-l3-lab.sh" down >/dev/null 2>&1 || true
    has ovn && "$HERE/ovn-lab.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lb_log "building connrate${HIVENET_BIN:+}; hivenet"
(cd "$REPO" && go build -o "$CONNRATE" ./bench/connrate)
if [ -n "${HIVENET_BIN:-}" ]; then cp "$HIVENET_BIN" "$BIN"; else (cd "$REPO" && go build -o "$BIN" ./cmd/hivenet); fi

# ------------------------------------------------------------ measure ----
if has kernel; then
    "$HERE/kernel-l3-lab.sh" up
    lb_case kernel l3-cross hbkl-vm1 hbkl-vm3 $DST_IP "$OUT"
    conn_rate kernel hbkl-vm1 hbkl-vm3
    "$HERE/kernel-l3-lab.sh" down
fi
if has ovn; then
    "$HERE/ovn-lab.sh" up
    "$HERE/ovn-lab.sh" acls
    nsx hbov-vm1 ping -n -c 3 -W 2 $DST_IP >/dev/null || lb_log "ovn: vm1 -> vm3 fails with the ACLs"
    lb_case ovn l3-cross hbov-vm1 hbov-vm3 $DST_IP "$OUT"
    conn_rate ovn hbov-vm1 hbov-vm3
    "$HERE/ovn-lab.sh" down
fi
if has hivenet; then
    hivenet_up
    lb_case hivenet l3-cross ${HP}vm1 ${HP}vm3 $DST_IP "$OUT"
    conn_rate hivenet ${HP}vm1 ${HP}vm3
    [ -d "$HRUN/logs" ] && cp -r "$HRUN/logs" "$OUT/hivenet-logs"
    hivenet_down
fi
if has agentct; then
    hivenet_up --agent-arg=--datapath-conntrack=false
    conn_rate hivenet-agentct ${HP}vm1 ${HP}vm3
    hivenet_down
fi
if has go; then
    lb_log "go test -bench SimulateRouterSG ./internal/simulation (-count $RUNS)"
    (cd "$REPO" && go test -run '^$' -bench 'SimulateRouterSG' -benchmem -count "$RUNS" ./internal/simulation) > "$OUT/go-bench.txt" 2>&1 || true
    i=0
    while read -r ns allocs; do
        i=$((i + 1))
        lb_record go sim sim_ns_op "$i" "$ns"
        lb_record go sim sim_allocs_op "$i" "$allocs"
    done < <(awk '/^BenchmarkSimulateRouterSG/ { for (f = 1; f <= NF; f++) { if ($f == "ns/op") ns = $(f-1); if ($f == "allocs/op") a = $(f-1) } print ns, a }' "$OUT/go-bench.txt")
fi

# ------------------------------------------------------------ summary ----
med() { # med LAB METRIC -> median over runs (numbers only)
    awk -F'\t' -v l="$1" -v m="$2" '$1==l && $3==m && $5 ~ /^-?[0-9.]+$/ {print $5}' "$RESULTS_TSV" | lb_median
}
sum() { awk -F'\t' -v l="$1" -v m="$2" '$1==l && $3==m && $5 ~ /^[0-9]+$/ {s += $5; n++} END {print n ? s : "NA"}' "$RESULTS_TSV"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA"||b=="NA"||b==0) print "NA"; else printf "%.2fx", a/b }'; }
{
    echo "hivenet vs kernel vs OVN, routed VM<->VM across hosts ($(date -Is), RUNS=$RUNS DUR=${DUR}s CONC=$CONC)"
    echo "2 vCPUs shared by everything: compare ratios, not absolute figures."
    echo
    printf '%-22s %10s %10s %10s %14s %12s %10s   %s\n' metric kernel ovn hivenet hivenet/kernel hivenet/ovn agent-ct target
    for m in tcp_p1_gbps tcp_p1_retrans ping_rtt_us conn_per_s conn_fails conn_new_flows conn_per_s_reuse conn_fails_reuse conn_new_flows_reuse; do
        if [ "$m" = conn_fails ] || [ "$m" = conn_fails_reuse ] || [ "$m" = tcp_p1_retrans ]; then
            k=$(sum kernel $m); o=$(sum ovn $m); h=$(sum hivenet $m); a=$(sum hivenet-agentct $m)
        else
            k=$(med kernel $m); o=$(med ovn $m); h=$(med hivenet $m); a=$(med hivenet-agentct $m)
        fi
        case $m in
            tcp_p1_gbps) tgt=">= 0.5x kernel, > ovn" ;;
            ping_rtt_us) tgt="" ;;
            conn_per_s) tgt=">= 0.8x kernel, > ovn" ;;
            conn_fails|conn_fails_reuse) tgt="0 (sum over runs)" ;;
            conn_new_flows) tgt="0: no upcall per connection; 2: one per host" ;;
            conn_per_s_reuse) tgt="(tcp_tw_reuse=1)" ;;
            conn_new_flows_reuse) tgt="(< 2: reused source ports meet cached flows)" ;;
            tcp_p1_retrans) tgt="(sum over runs)" ;;
        esac
        rk=$(ratio "$h" "$k"); ro=$(ratio "$h" "$o")
        case $m in conn_fails*|tcp_p1_retrans|conn_new_flows*) rk=""; ro="" ;; esac
        printf '%-22s %10s %10s %10s %14s %12s %10s   %s\n' "$m" "$k" "$o" "$h" "$rk" "$ro" "$a" "$tgt"
    done
    printf '%-22s %10s %10s %10s %14s %12s %10s   %s\n' sim_ns_op - - "$(med go sim_ns_op)" "" "" - "< 3000 (router + SG)"
    printf '%-22s %10s %10s %10s %14s %12s %10s   %s\n' sim_allocs_op - - "$(med go sim_allocs_op)" "" "" - ""
    echo
    echo "all runs:"
    lb_summary "$RESULTS_TSV"
} | tee "$OUT/summary.txt"
echo "results: $OUT"
