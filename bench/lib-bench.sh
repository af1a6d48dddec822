# lib-bench.sh -- measurement helpers for bench/run.sh (adapted from ../../shared/peers/lib-bench.sh).
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

: "${RUNS:=3}" "${DUR:=10}" "${PING_COUNT:=20}" "${PING_INTERVAL:=0.2}"
: "${UDP_LEN:=64}" "${SKIP_UDP:=0}" "${SKIP_P4:=0}" "${CPU_SAMPLE:=1}"
IPERF_PORT=5201

lb_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

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

# lb_ping_steady LAB CASE NS DST -- RUNS x (median RTT of PING_COUNT pings).
lb_ping_steady() {
    local lab=$1 case=$2 ns=$3 dst=$4 i med
    lb_ping_rtts "$ns" "$dst" 3 0.2 >/dev/null        # warm caches (ARP, flows)
    for i in $(seq 1 "$RUNS"); do
        med=$(lb_ping_rtts "$ns" "$dst" "$PING_COUNT" "$PING_INTERVAL" | lb_median)
        lb_record "$lab" "$case" ping_rtt_us "$i" "$med"
    done
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

# lb_tcp LAB CASE NS DST P -- RUNS x iperf3 TCP (P streams, DUR s) -> Gbit/s.
lb_tcp() {
    local lab=$1 case=$2 ns=$3 dst=$4 par=$5 i out gbps retr snap
    for i in $(seq 1 "$RUNS"); do
        snap=$(mktemp)
        [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ] && lb_cpu_begin "$snap"
        out=$(ip netns exec "$ns" iperf3 -c "$dst" -p "$IPERF_PORT" -t "$DUR" -P "$par" -J 2>/dev/null || true)
        if [ "$i" = 1 ] && [ "$CPU_SAMPLE" = 1 ]; then lb_cpu_end "$snap" "$lab" "$case" "tcp_p${par}"; else rm -f "$snap"; fi
        gbps=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e9 | . * 1000 | round / 1000' <<<"$out" 2>/dev/null || echo 0)
        retr=$(jq -r '.end.sum_sent.retransmits // "NA"' <<<"$out" 2>/dev/null || echo NA)
        lb_record "$lab" "$case" "tcp_p${par}_gbps" "$i" "${gbps:-0}"
        lb_record "$lab" "$case" "tcp_p${par}_retrans" "$i" "$retr"
        sleep 1
    done
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
