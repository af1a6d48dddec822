# lib-bench.sh -- measurement helpers and the L2 VM-pair labs for bench/run.sh,
# bench/datapath.sh, bench/l3.sh (adapted from ../../shared/peers/lib-bench.sh).
#
# Sourced, not executed.  Every helper runs its tools inside network
# namespaces created by the calling lab script; all traffic stays inside them.
#
# Tunables (environment):
#   RUNS=3            repetitions of every measurement (median is reported)
#   DUR=10            seconds per iperf3 run
#   PING_COUNT=20     echo requests per steady-state ping run
#   PING_INTERVAL=0.2 seconds between echo requests
#   UDP_LEN=64        iperf3 UDP payload size (bytes) for the pps test
#   SKIP_UDP=1        skip the UDP pps test
#   SKIP_P4=1         skip the iperf3 -P 4 test
#   RESULTS_DIR=dir   where bench writes its TSV (default: results/ here)
#   CPU_SAMPLE=1      record CPU usage (whole machine + watched processes)
#                     during the first run of every iperf3 test
#   CPU_PER_GB=0      1: every iperf3 TCP run also records CPU seconds per GB
#                     received: tcp_pN_sys_cpu_s_per_gb (whole machine: /proc/stat
#                     user+nice+system+irq+softirq over the iperf3 client's life),
#                     tcp_pN_bg_busy_pct (the machine's busy % with no traffic:
#                     the mean of the second before and the second after the
#                     run; others' load on a shared machine),
#                     tcp_pN_net_cpu_s_per_gb (sys minus that background rate
#                     over the run) and, when WATCH is set, tcp_pN_proc_cpu_s_per_gb
#                     (utime+stime of the WATCH processes)

: "${RUNS:=3}" "${DUR:=10}" "${PING_COUNT:=20}" "${PING_INTERVAL:=0.2}"
: "${UDP_LEN:=64}" "${SKIP_UDP:=0}" "${SKIP_P4:=0}" "${CPU_SAMPLE:=1}" "${CPU_PER_GB:=0}"
IPERF_PORT=5201

lb_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# lb_results_dir DIR -- the run's results directory: OUT=DIR (created) and
# RESULTS_TSV=DIR/results.tsv (exported, emptied).
lb_results_dir() {
    OUT=$1
    mkdir -p "$OUT"
    RESULTS_TSV="$OUT/results.tsv"
    export RESULTS_TSV
    : > "$RESULTS_TSV"
}

# lb_median: median of the numbers on stdin (one per line); NA if none.
lb_median() {
    sort -g | awk '{a[NR]=$1} END{
        if (NR==0) {print "NA"; exit}
        if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2 }'
}

# lb_record LAB CASE METRIC RUN VALUE -- append one measurement to $RESULTS_TSV.
lb_record() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS_TSV"
    lb_log "  $2 $3 run$4 = $5"
}

# ---------------------------------------------------------------- ping ----
# lb_ping_rtts NS DST COUNT INTERVAL -> one RTT (microseconds) per line.
lb_ping_rtts() {
    ip netns exec "$1" ping -n -c "$3" -i "$4" -W 1 "$2" 2>/dev/null \
        | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | awk '{printf "%.1f\n", $1*1000}'
}

# lb_first_ping NS DST -> RTT (us) of a single echo request, or "fail".
lb_first_ping() {
    local r
    r=$(lb_ping_rtts "$1" "$2" 1 1 | head -1)
    echo "${r:-fail}"
}

# lb_fresh_ping NS DST -> "SEQ MS": echo requests every 10 ms (up to 3 s);
# SEQ is the icmp_seq of the first one answered (1 = the very first packet
# made it), MS the time from sending echo #1 to receiving that first reply.
lb_fresh_ping() {
    local out seq rtt
    out=$(ip netns exec "$1" ping -n -i 0.01 -c 300 -w 3 "$2" 2>/dev/null | grep -m1 'bytes from' || true)
    seq=$(sed -n 's/.*icmp_seq=\([0-9]*\).*/\1/p' <<<"$out")
    rtt=$(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out")
    if [ -n "$seq" ]; then
        awk -v s="$seq" -v r="$rtt" 'BEGIN{printf "%d %.2f\n", s, (s-1)*10 + r}'
    else
        echo "fail fail"
    fi
}

# lb_ping_run LAB CASE NS DST RUN -- one run: median RTT of PING_COUNT pings.
lb_ping_run() {
    lb_record "$1" "$2" ping_rtt_us "$5" "$(lb_ping_rtts "$3" "$4" "$PING_COUNT" "$PING_INTERVAL" | lb_median)"
}

# lb_ping_steady LAB CASE NS DST -- RUNS x lb_ping_run, after a warm-up.
lb_ping_steady() {
    local i
    lb_ping_rtts "$3" "$4" 3 0.2 >/dev/null        # warm caches (ARP, flows)
    for i in $(seq 1 "$RUNS"); do lb_ping_run "$@" "$i"; done
}

# -------------------------------------------------------------- iperf3 ----
# lb_iperf_server_start NS PIDFILE / lb_iperf_server_stop PIDFILE
lb_iperf_server_start() {
    [ -f "$2" ] && return 0
    ip netns exec "$1" iperf3 -s -D -p "$IPERF_PORT" --pidfile "$2" >/dev/null
    sleep 0.3
}
lb_iperf_server_stop() {
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$1"
}

# ---- CPU sampling: whole machine (/proc/stat) + named processes ----------
# WATCH is a space-separated list of name=pid set by the lab script.
_lb_cpu_snap() {   # prints "total idle user sys softirq" then "name ticks" lines
    awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6, $2+$3, $4, $8+$7}' /proc/stat
    local w name pid t
    for w in ${WATCH:-}; do
        name=${w%%=*}; pid=${w#*=}
        [ -r "/proc/$pid/stat" ] || continue
        # utime+stime are fields 14,15 counted after the ")" closing comm
        sed 's/.*) //' "/proc/$pid/stat" | awk -v n="$name" '{print n, $12+$13}'
        # per thread (WATCH_THREADS=1): name.threadcomm-tid
        if [ "${WATCH_THREADS:-0}" = 1 ]; then
            for t in /proc/"$pid"/task/*; do
                [ -r "$t/stat" ] || continue
                awk -v n="$name" -v tid="${t##*/}" '{
                    c=$0; sub(/^[^(]*\(/, "", c); sub(/\).*$/, "", c); gsub(/[^A-Za-z0-9_-]/, "_", c)
                    r=$0; sub(/^.*\) /, "", r); split(r, f, " ")
                    print n "." c "-" tid, f[12]+f[13] }' "$t/stat"
            done
        fi
    done
}
lb_cpu_begin() { _lb_cpu_snap > "$1"; }
# lb_cpu_end SNAPFILE LAB CASE METRIC_PREFIX -- record machine busy % and
# per-process CPU (% of one core) since lb_cpu_begin.
lb_cpu_end() {
    local snap=$1 lab=$2 case=$3 pfx=$4 now
    now=$(mktemp); _lb_cpu_snap > "$now"
    paste -d' ' <(head -1 "$snap") <(head -1 "$now") | awk '{
        dt=$6-$1; if (dt<=0) dt=1;
        printf "machine_busy_pct %.0f\nmachine_user_pct %.0f\nmachine_sys_pct %.0f\nmachine_irq_pct %.0f\n",
            100*(dt-($7-$2))/dt, 100*($8-$3)/dt, 100*($9-$4)/dt, 100*($10-$5)/dt }' \
        | while read -r m v; do lb_record "$lab" "$case" "${pfx}_$m" 1 "$v"; done
    # per-process: ticks / (elapsed ticks per cpu) -> % of one core
    local ncpu; ncpu=$(nproc)
    local dt; dt=$(paste -d' ' <(head -1 "$snap") <(head -1 "$now") | awk -v n="$ncpu" '{print ($6-$1)/n}')
    join <(tail -n +2 "$snap" | sort) <(tail -n +2 "$now" | sort) | while read -r name a b; do
        pct=$(awk -v a="$a" -v b="$b" -v d="$dt" 'BEGIN{printf "%.0f", 100*(b-a)/(d>0?d:1)}')
        # threads: keep only the ones that did something
        case $name in *.*) [ "$pct" -ge 1 ] || continue ;; esac
        lb_record "$lab" "$case" "${pfx}_cpu_${name}_pct" 1 "$pct"
    done
    rm -f "$now" "$snap"
}

# CPU seconds for CPU_PER_GB: busy ticks of the machine (user nice system
# irq softirq: fields 2 3 4 7 8 of /proc/stat's cpu line) and utime+stime of
# the WATCH processes (fields 14 15 of /proc/PID/stat), in ticks.
_lb_busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
_lb_watch_ticks() {
    local w pid s=0 t
    for w in ${WATCH:-}; do
        pid=${w#*=}
        t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12+$13}') || t=0
        s=$((s + ${t:-0}))
    done
    echo "$s"
}
LB_HZ=$(getconf CLK_TCK)

# lb_tcp_run LAB CASE NS DST P RUN -- one iperf3 TCP run (P streams, DUR s)
# -> Gbit/s and retransmits (and CPU per GB with CPU_PER_GB=1).
lb_tcp_run() {
    local lab=$1 case=$2 ns=$3 dst=$4 par=$5 i=$6 out gbps retr snap b0 b1 w0 w1 t0 t1 bg bytes
    snap=$(mktemp)
    if [ "$CPU_PER_GB" = 1 ]; then b0=$(_lb_busy_ticks); sleep 1; bg=$(( $(_lb_busy_ticks) - b0 )); fi
    [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ] && lb_cpu_begin "$snap"
    b0=$(_lb_busy_ticks); w0=$(_lb_watch_ticks); t0=$(date +%s.%N)
    out=$(ip netns exec "$ns" iperf3 -c "$dst" -p "$IPERF_PORT" -t "$DUR" -P "$par" -J 2>/dev/null || true)
    b1=$(_lb_busy_ticks); w1=$(_lb_watch_ticks); t1=$(date +%s.%N)
    if [ "$CPU_PER_GB" = 1 ]; then sleep 1; bg=$(( (bg + $(_lb_busy_ticks) - b1) / 2 )); fi
    if [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ]; then lb_cpu_end "$snap" "$lab" "$case" "tcp_p${par}"; else rm -f "$snap"; fi
    gbps=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e9 | . * 1000 | round / 1000' <<<"$out" 2>/dev/null || echo 0)
    retr=$(jq -r '.end.sum_sent.retransmits // "NA"' <<<"$out" 2>/dev/null || echo NA)
    lb_record "$lab" "$case" "tcp_p${par}_gbps" "$i" "${gbps:-0}"
    lb_record "$lab" "$case" "tcp_p${par}_retrans" "$i" "$retr"
    if [ "$CPU_PER_GB" = 1 ]; then
        bytes=$(jq -r '.end.sum_received.bytes // 0' <<<"$out" 2>/dev/null || echo 0)
        lb_record "$lab" "$case" "tcp_p${par}_sys_cpu_s_per_gb" "$i" \
            "$(awk -v t=$((b1 - b0)) -v hz="$LB_HZ" -v b="${bytes:-0}" 'BEGIN{ if (b > 0) printf "%.3f", t/hz/(b/1e9); else print "NA" }')"
        lb_record "$lab" "$case" "tcp_p${par}_bg_busy_pct" "$i" \
            "$(awk -v t="$bg" -v hz="$LB_HZ" -v n="$(nproc)" 'BEGIN{ printf "%.0f", 100*t/hz/n }')"
        lb_record "$lab" "$case" "tcp_p${par}_net_cpu_s_per_gb" "$i" \
            "$(awk -v t=$((b1 - b0)) -v bg="$bg" -v d="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" -v hz="$LB_HZ" -v b="${bytes:-0}" \
                'BEGIN{ if (b > 0) printf "%.3f", (t - bg*d)/hz/(b/1e9); else print "NA" }')"
        [ -z "${WATCH:-}" ] || lb_record "$lab" "$case" "tcp_p${par}_proc_cpu_s_per_gb" "$i" \
            "$(awk -v t=$((w1 - w0)) -v hz="$LB_HZ" -v b="${bytes:-0}" 'BEGIN{ if (b > 0) printf "%.3f", t/hz/(b/1e9); else print "NA" }')"
    fi
}

# lb_tcp LAB CASE NS DST P -- RUNS x lb_tcp_run, a second apart.
lb_tcp() {
    local i
    for i in $(seq 1 "$RUNS"); do lb_tcp_run "$@" "$i"; sleep 1; done
}

# lb_udp LAB CASE NS DST -- RUNS x iperf3 UDP, UDP_LEN-byte payloads, unlimited
# rate -> packets/s that arrived at the receiver, and loss %.
lb_udp() {
    local lab=$1 case=$2 ns=$3 dst=$4 i out snap
    for i in $(seq 1 "$RUNS"); do
        snap=$(mktemp)
        [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ] && lb_cpu_begin "$snap"
        out=$(ip netns exec "$ns" iperf3 -c "$dst" -p "$IPERF_PORT" -u -b 0 -l "$UDP_LEN" -t "$DUR" -J 2>/dev/null || true)
        if [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ]; then lb_cpu_end "$snap" "$lab" "$case" "udp"; else rm -f "$snap"; fi
        # receiver-side view (iperf3 >= 3.10 reports sum_received for UDP)
        lb_record "$lab" "$case" udp_rx_kpps "$i" "$(jq -r '(.end.sum_received // .end.sum) as $s |
            (($s.packets - $s.lost_packets) / $s.seconds / 1000) | . * 10 | round / 10' <<<"$out" 2>/dev/null || echo NA)"
        lb_record "$lab" "$case" udp_tx_kpps "$i" "$(jq -r '(.end.sum_sent // .end.sum) as $s |
            ($s.packets / $s.seconds / 1000) | . * 10 | round / 10' <<<"$out" 2>/dev/null || echo NA)"
        lb_record "$lab" "$case" udp_loss_pct "$i" "$(jq -r '(.end.sum_received // .end.sum).lost_percent | . * 10 | round / 10' <<<"$out" 2>/dev/null || echo NA)"
        sleep 1
    done
}

# lb_case LAB CASE SRC_NS DST_NS DST_IP PIDDIR -- the full per-pair suite.
lb_case() {
    local lab=$1 case=$2 src=$3 dstns=$4 dst=$5 piddir=$6
    lb_log "== $lab / $case: $src -> $dstns ($dst)"
    lb_ping_steady "$lab" "$case" "$src" "$dst"
    lb_iperf_server_start "$dstns" "$piddir/iperf-$dstns.pid"
    lb_tcp "$lab" "$case" "$src" "$dst" 1
    [ "$SKIP_P4" = 1 ] || lb_tcp "$lab" "$case" "$src" "$dst" 4
    [ "$SKIP_UDP" = 1 ] || lb_udp "$lab" "$case" "$src" "$dst"
    lb_iperf_server_stop "$piddir/iperf-$dstns.pid"
}

# lb_summary TSV -- median over runs of every (lab, case, metric); values
# that are not numbers (NA, fail) are ignored for the median but listed.
lb_summary() {
    awk -F'\t' '{k=$1"\t"$2"\t"$3; v[k]=v[k] " " $5; if (!(k in o)) {o[k]=++n; ks[n]=k}}
        END{for(i=1;i<=n;i++) print ks[i] "\t" v[ks[i]]}' "$1" \
    | while IFS=$'\t' read -r lab case metric vals; do
        med=$(tr ' ' '\n' <<<"$vals" | awk '$1 ~ /^-?[0-9.]+$/' | lb_median)
        printf '%-8s %-10s %-34s %-10s [%s]\n' "$lab" "$case" "$metric" "$med" "${vals# }"
    done
}

# ------------------------------------------------- L2 VM-pair labs ----
# The layout of bench/run.sh and bench/datapath.sh: two hosts joined by an
# underlay bridge (10.250.0.0/24, as `hivenet lab`), one VM on each, both
# VMs on one /24 (eth0 at the caller's MTU). Kernel: ${P}ul, ${P}host1/2,
# ${P}vm1/2. Hivenet: `hivenet lab up --prefix P --hosts 2`, VMs ${P}vm1/2.

lb_nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
lb_ns_add() {   # IPv6 off: no ND/MLD chatter on the overlay during measurements
    ip netns add "$1"; ip -n "$1" link set lo up
    lb_nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# lb_kernel_l2_down P -- delete the namespaces named P*, first stopping what
# runs in them (only this lab's namespaces: P is ours).
lb_kernel_l2_down() {
    local ns pid
    for ns in $(ip netns list | awk '{print $1}' | grep "^$1" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
    done
}

# lb_kernel_l2_up P MTU IP1 IP2 -- the kernel baseline: on each host a Linux
# bridge br0 with a kernel VXLAN port (VNI 100, UDP 4789, to the other host)
# and the VM's veth; vm1 (IP1) on host1, vm2 (IP2) on host2.
lb_kernel_l2_up() {
    local p=$1 mtu=$2 ip1=$3 ip2=$4 h o
    lb_kernel_l2_down "$p"
    lb_log "kernel ($p): underlay bridge, br0 + vxlan100 per host, 2 VMs, MTU $mtu"
    lb_ns_add "${p}ul"
    ip -n "${p}ul" link add br0 type bridge
    ip -n "${p}ul" link set br0 up
    for h in 1 2; do
        lb_ns_add "${p}host$h"
        ip link add ul0 netns "${p}host$h" type veth peer "host$h" netns "${p}ul"
        ip -n "${p}ul" link set "host$h" master br0 up
        ip -n "${p}host$h" addr add "10.250.0.$h/24" dev ul0
        ip -n "${p}host$h" link set ul0 up
    done
    for h in 1 2; do
        o=$((3 - h))
        ip -n "${p}host$h" link add br0 type bridge
        ip -n "${p}host$h" link add vx100 type vxlan id 100 dstport 4789 local "10.250.0.$h" remote "10.250.0.$o" dev ul0
        ip -n "${p}host$h" link set vx100 master br0 up
        ip -n "${p}host$h" link set br0 up
        lb_ns_add "${p}vm$h"
        ip link add eth0 netns "${p}vm$h" type veth peer "vm$h" netns "${p}host$h"
        ip -n "${p}host$h" link set "vm$h" mtu "$mtu" master br0 up
        ip -n "${p}vm$h" link set eth0 mtu "$mtu" up
    done
    ip -n "${p}vm1" addr add "$ip1/24" dev eth0
    ip -n "${p}vm2" addr add "$ip2/24" dev eth0
    lb_nsx "${p}vm1" ping -n -c 1 -W 2 "$ip2" >/dev/null
}

# lb_quiet LOG CMD... -- run CMD with its output appended to LOG; on failure
# show LOG's tail and fail.
lb_quiet() {
    local log=$1; shift
    "$@" >> "$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
}

# lb_hivenet_rundir P -- the lab's run dir (lab.DefaultRunDir).
lb_hivenet_rundir() { echo "/run/hivenet/lab-$(sed 's/-*$//' <<<"$1")"; }

# lb_hivenet_api P METHOD PATH [JSON] -> response body; fails on HTTP >= 400.
lb_hivenet_api() {
    local run url token
    run=$(lb_hivenet_rundir "$1")
    url=$(jq -r .api_url "$run/lab.json"); token=$(jq -r .admin_token "$run/lab.json")
    curl -sS --fail-with-body -X "$2" -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
        ${4:+--data "$4"} "$url$3"
}

# lb_hivenet_down BIN P -- `hivenet lab down` (also after a crash).
lb_hivenet_down() { [ -x "$1" ] && "$1" lab down --prefix "$2" >/dev/null 2>&1 || true; }

# lb_hivenet_port P NAME HOST IP -> id of a new port NAME of LB_NET_ID bound
# to HOST with fixed address IP.
lb_hivenet_port() {
    lb_hivenet_api "$1" POST /v2.0/ports "{\"port\":{\"name\":\"$2\",\"network_id\":\"$LB_NET_ID\",\"binding:host_id\":\"$3\",
        \"fixed_ips\":[{\"subnet_id\":\"$LB_SUBNET_ID\",\"ip_address\":\"$4\"}]}}" | jq -r .port.id
}

# lb_hivenet_l2_up BIN P DATAPATH CIDR MTU IP1 IP2 -- a lab with 2 hosts
# (agents with --datapath DATAPATH; empty: their default), one network of
# MTU bytes (the VMs get it by DHCP) with subnet CIDR, ports vm1@host1 (IP1)
# and vm2@host2 (IP2) in the project's default security group, VMs with
# dhclient. Sets LB_NET_ID and LB_SUBNET_ID; fails when vm1 cannot reach
# vm2 or a VM's MTU is not MTU. Output of `lab`: lab-up-P.txt beside RESULTS_TSV.
# LB_LAB_ARGS (words) are added to `lab up`, e.g. --agent-arg=--datapath-conntrack=false.
lb_hivenet_l2_up() {
    local bin=$1 p=$2 dp=$3 cidr=$4 mtu=$5 ip1=$6 ip2=$7 i m log
    lb_hivenet_down "$bin" "$p"
    lb_log "hivenet ($p): lab up (2 hosts, datapath ${dp:-default}), network (MTU $mtu), 2 VMs with dhclient"
    log="$(dirname "$RESULTS_TSV")/lab-up-$p.txt"
    # shellcheck disable=SC2086 # LB_LAB_ARGS: words
    lb_quiet "$log" "$bin" lab up --prefix "$p" --hosts 2 ${dp:+--datapath "$dp"} ${LB_LAB_ARGS:-}
    LB_NET_ID=$(lb_hivenet_api "$p" POST /v2.0/networks "{\"network\":{\"name\":\"bench\",\"mtu\":$mtu}}" | jq -r .network.id)
    LB_SUBNET_ID=$(lb_hivenet_api "$p" POST /v2.0/subnets "{\"subnet\":{\"network_id\":\"$LB_NET_ID\",\"cidr\":\"$cidr\",\"ip_version\":4}}" | jq -r .subnet.id)
    lb_hivenet_port "$p" vm1 host1 "$ip1" >/dev/null
    lb_hivenet_port "$p" vm2 host2 "$ip2" >/dev/null
    lb_quiet "$log" "$bin" lab vm add vm1 --prefix "$p" --host host1 --port vm1
    lb_quiet "$log" "$bin" lab vm add vm2 --prefix "$p" --host host2 --port vm2
    for i in 1 2; do
        m=$(ip -n "${p}vm$i" -j link show eth0 | jq -r '.[0].mtu')
        [ "$m" = "$mtu" ] || { lb_log "hivenet ($p): vm$i eth0 MTU $m, want $mtu"; return 1; }
    done
    for i in $(seq 1 50); do
        lb_nsx "${p}vm1" ping -n -c 1 -W 1 "$ip2" >/dev/null 2>&1 && return 0
    done
    lb_log "hivenet ($p): vm1 cannot reach vm2"; return 1
}

# lb_hivenet_stat BIN P HOST FIELD -> FIELD (a jq path, e.g. .flows_installed)
# of `hivenet agent-stats` from the agent of lab host HOST.
lb_hivenet_stat() {
    "$1" agent-stats --lab "$3" --prefix "$2" -o json | jq -r "$4"
}

# lb_hivenet_agents P -> "agent-host1=PID agent-host2=PID" (for WATCH).
lb_hivenet_agents() {
    local run f out=""
    run=$(lb_hivenet_rundir "$1")
    for f in "$run"/pids/agent-*.pid; do
        [ -e "$f" ] && out="$out $(basename "$f" .pid)=$(cat "$f")"
    done
    echo "${out# }"
}
