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
	pps  float64
}

// measureOnce runs one iperf3 transfer and one series of 20 pings.
func measureOnce(t *testing.T, l *lab, secs int) benchResult {
	vm1 := nsName(l.prefix, "vm1")
	g := iperf(t, l.prefix, l.vmIP[2], secs)
	r := median(ping(t, vm1, l.vmIP[2], 20, 10))
	return benchResult{gbps: g, rtt: r, pps: iperfUDP(t, l.prefix, l.vmIP[2], 3)}
}

// TestPrivilegedBenchCompare prints TCP throughput and ping RTT VM to VM
// across two hosts, through the userspace datapath and through a Linux
// bridge + kernel VXLAN between the same kind of namespaces. Both labs are
// up at once and the runs alternate (kernel, userspace, kernel, ...), so
// that the load other jobs put on this shared machine hits both alike;
// it prints the medians of 3 runs each and their ratios. It runs only
// with HDP_BENCH=1 (about a minute).
func TestPrivilegedBenchCompare(t *testing.T) {
	requireRoot(t)
	if os.Getenv("HDP_BENCH") != "1" {
		t.Skip("set HDP_BENCH=1 to run the comparison benchmark")
	}
	runs, secs := 3, 5
	kl := buildKernelLab(t, "hdp-k-")
	ul := buildLab(t, "hdp-u-", true, 1450)
	for _, l := range []*lab{kl, ul} {
		ping(t, nsName(l.prefix, "vm1"), l.vmIP[2], 3, 3) // ARP, flows
	}
	var kg, ug, kp, up []float64
	var kr, ur []time.Duration
	for range runs {
		k := measureOnce(t, kl, secs)
		u := measureOnce(t, ul, secs)
		kg, kr = append(kg, k.gbps), append(kr, k.rtt)
		ug, ur = append(ug, u.gbps), append(ur, u.rtt)
		kp, up = append(kp, k.pps), append(up, u.pps)
	}
	k := benchResult{gbps: median(kg), rtt: median(kr), pps: median(kp)}
	u := benchResult{gbps: median(ug), rtt: median(ur), pps: median(up)}
	t.Logf("medians of %d alternating runs (%d s iperf3 TCP, 20 pings at 0.2 s, 3 s iperf3 UDP 64 B)", runs, secs)
	t.Logf("%-22s %10s %10s %12s", "", "TCP Gbit/s", "ping RTT", "UDP64 rx pps")
	t.Logf("%-22s %10.2f %10v %12.0f", "kernel bridge+VXLAN", k.gbps, k.rtt, k.pps)
	t.Logf("%-22s %10.2f %10v %12.0f", "hivenet userspace", u.gbps, u.rtt, u.pps)
	t.Logf("%-22s %9.2fx %9.2fx %11.2fx", "ratio userspace/kernel", u.gbps/k.gbps, float64(u.rtt)/float64(k.rtt), u.pps/k.pps)
}
