package ebpf

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// tupleAgent is the agent before connection tracking moved into the
// datapath: every connection is a new exact 5-tuple flow on both hosts
// (the SYN upcalls at host 1, the SYN-ACK at host 2).
func tupleAgent(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
	key, other := uint32(keyVM2), 2
	if i == 2 {
		key, other = keyVM1, 1
	}
	var a flowtable.Actions
	a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: key, Remote: l.ul[other].As4(), RemotePort: 4789})
	return packet.MaskOf(packet.FInPort | packet.FEthType | packet.FIPSrc | packet.FIPDst | packet.FIPProto |
		packet.FSrcPort | packet.FDstPort), a
}

// connServer accepts TCP connections on port in vm2's namespace and
// answers each one's byte with one byte, then closes it.
func connServer(t *testing.T, l *lab, port int) {
	t.Helper()
	var ln net.Listener
	inNS(t, nsName(l.prefix, "vm2"), func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Read(b); err == nil {
					_, _ = c.Write(b)
				}
			}()
		}
	}()
}

// connRate opens TCP connections from vm1 to vm2's port for d, one at
// a time (each: connect, one byte each way, close), and returns the
// connections completed per second and the failures.
func connRate(t *testing.T, l *lab, port int, d time.Duration) (rate float64, failed int) {
	t.Helper()
	ok := 0
	dst := net.JoinHostPort(l.vmIP[2], fmt.Sprint(port))
	inNS(t, nsName(l.prefix, "vm1"), func() error {
		b := []byte{1}
		for end := time.Now().Add(d); time.Now().Before(end); {
			c, err := net.DialTimeout("tcp4", dst, time.Second)
			if err != nil {
				failed++
				continue
			}
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(b); err != nil {
				failed++
			} else if _, err := c.Read(b); err != nil {
				failed++
			} else {
				ok++
			}
			c.Close()
		}
		return nil
	})
	return float64(ok) / d.Seconds(), failed
}

// TestPrivilegedBenchConnRate: new TCP connections per second VM to VM
// across two hosts, each connection from a new source port: through a
// Linux bridge + kernel VXLAN (the reference), through the eBPF datapath
// with flows on the 5-tuple (two upcalls per connection, as before
// connection tracking moved into the datapath) and with connection
// tracking in the datapath (flows on ct_state: no upcall once they
// exist). Labs up at once, rounds alternating, medians. Runs only with
// HBP_BENCH=1.
func TestPrivilegedBenchConnRate(t *testing.T) {
	requireRoot(t)
	if os.Getenv("HBP_BENCH") != "1" {
		t.Skip("set HBP_BENCH=1 to run the connection-rate benchmark")
	}
	const rounds, port = 3, 7100
	secs := 2 * time.Second
	kl := buildKernelLab(t, "hct-bk-")
	tl := buildLab(t, "hct-bt-", tupleAgent, false)
	rec := &ctUpcalls{}
	cl := buildLab(t, "hct-bc-", ctAgent(rec), false)
	for i, dp := range cl.dp[1:] {
		zone := []uint32{zoneA, zoneB}[i]
		if err := dp.SetPortZone(cl.port[i+1], zone); err != nil {
			t.Fatal(err)
		}
	}
	labs := []struct {
		name string
		l    *lab
		up   func() int64
	}{
		{name: "kernel bridge+VXLAN", l: kl, up: func() int64 { return 0 }},
		{name: "ebpf, 5-tuple flows", l: tl, up: func() int64 { return tl.upcall[1].Load() + tl.upcall[2].Load() }},
		{name: "ebpf, conntrack", l: cl, up: func() int64 { return cl.upcall[1].Load() + cl.upcall[2].Load() }},
	}
	rates := make([][]float64, len(labs))
	fails := make([]int, len(labs))
	ups := make([]int64, len(labs))
	conns := make([]float64, len(labs))
	for _, x := range labs {
		for _, n := range []string{"vm1", "vm2"} {
			run(t, "ip", "netns", "exec", nsName(x.l.prefix, n), "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=0")
		}
		run(t, "ip", "-n", nsName(x.l.prefix, "vm1"), "neigh", "add", x.l.vmIP[2], "lladdr", net.HardwareAddr(x.l.vmMAC[2][:]).String(), "dev", "eth0")
		run(t, "ip", "-n", nsName(x.l.prefix, "vm2"), "neigh", "add", x.l.vmIP[1], "lladdr", net.HardwareAddr(x.l.vmMAC[1][:]).String(), "dev", "eth0")
		connServer(t, x.l, port)
		connRate(t, x.l, port, 200*time.Millisecond) // warm up: the ct_state flows
	}
	for range rounds {
		for i, x := range labs {
			up0 := x.up()
			r, f := connRate(t, x.l, port, secs)
			rates[i] = append(rates[i], r)
			fails[i] += f
			ups[i] += x.up() - up0
			conns[i] += r * secs.Seconds()
		}
	}
	k := median(rates[0])
	t.Logf("new TCP connections per second, one client, medians of %d alternating %v rounds", rounds, secs)
	for i, x := range labs {
		t.Logf("%-22s %8.0f/s  %.2fx kernel  %d failed  %.2f upcalls per connection", x.name, median(rates[i]), median(rates[i])/k,
			fails[i], float64(ups[i])/max(conns[i], 1))
	}
	if ups[2] != 0 {
		t.Errorf("%d upcalls with connection tracking in the datapath, want none once the flows exist", ups[2])
	}
}
