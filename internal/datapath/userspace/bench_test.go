package userspace

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// buildKernelLab builds the same four namespaces as buildLab but joins
// each VM to a Linux bridge with a kernel VXLAN device: the reference the
// userspace datapath is compared with.
func buildKernelLab(t *testing.T, prefix string) *lab {
	l := buildLab(t, prefix, false, 1450)
	for i := 1; i <= 2; i++ {
		h := nsName(prefix, fmt.Sprintf("h%d", i))
		run(t, "ip", "-n", h, "link", "add", "hdp-br", "type", "bridge")
		run(t, "ip", "-n", h, "link", "add", "hdp-vx", "type", "vxlan", "id", "100", "dstport", "4789",
			"local", l.ul[i].String(), "remote", l.ul[3-i].String(), "dev", "hdp-ul")
		run(t, "ip", "-n", h, "link", "set", "hdp-vx", "master", "hdp-br", "up")
		run(t, "ip", "-n", h, "link", "set", fmt.Sprintf("hdp-tap%d", i), "master", "hdp-br", "up")
		run(t, "ip", "-n", h, "link", "set", "hdp-br", "up")
	}
	return l
}

type benchResult struct {
	gbps float64
	rtt  time.Duration
}

func measure(t *testing.T, l *lab, runs, secs int) benchResult {
	vm1 := nsName(l.prefix, "vm1")
	ping(t, vm1, l.vmIP[2], 3, 3) // warm up ARP and flows
	var rates []float64
	var rtts []time.Duration
	for range runs {
		rates = append(rates, iperf(t, l.prefix, l.vmIP[2], secs))
		rtts = append(rtts, median(ping(t, vm1, l.vmIP[2], 20, 15)))
	}
	return benchResult{gbps: median(rates), rtt: median(rtts)}
}

// TestPrivilegedBenchCompare prints TCP throughput and ping RTT VM to VM
// across two hosts, through the userspace datapath and through a Linux
// bridge + kernel VXLAN between the same namespaces, as medians of
// HDP_BENCH_RUNS (3) runs, with the ratios. It runs only with HDP_BENCH=1
// (about a minute).
func TestPrivilegedBenchCompare(t *testing.T) {
	requireRoot(t)
	if os.Getenv("HDP_BENCH") != "1" {
		t.Skip("set HDP_BENCH=1 to run the comparison benchmark")
	}
	runs, secs := 3, 5
	k := measure(t, buildKernelLab(t, "hdp-k-"), runs, secs)
	delNamespaces("hdp-k-")
	u := measure(t, buildLab(t, "hdp-", true, 1450), runs, secs)
	t.Logf("medians of %d runs (%d s iperf3, 20 pings at 0.2 s)", runs, secs)
	t.Logf("%-22s %10s %10s", "", "Gbit/s", "RTT")
	t.Logf("%-22s %10.2f %10v", "kernel bridge+VXLAN", k.gbps, k.rtt)
	t.Logf("%-22s %10.2f %10v", "hivenet userspace", u.gbps, u.rtt)
	t.Logf("%-22s %9.2fx %9.2fx", "ratio userspace/kernel", u.gbps/k.gbps, float64(u.rtt)/float64(k.rtt))
}
