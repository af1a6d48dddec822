package simulation

import (
	"testing"
)

// benchTopology is a bridge with ports on three hosts.
const benchTopology = `
local host1
host host1 tunnel=192.0.2.1
host host2 tunnel=192.0.2.2
host host3 tunnel=192.0.2.3
bridge net-a key=100 mtu=1450
subnet sub-a net-a 10.0.0.0/24 gw=10.0.0.1 server=10.0.0.2
port vm-a1 net-a mac=fa:16:3e:00:00:01 ip=sub-a:10.0.0.5 key=17 bound=host1
port vm-a2 net-a mac=fa:16:3e:00:00:02 ip=sub-a:10.0.0.6 key=18 bound=host2
port vm-a3 net-a mac=fa:16:3e:00:00:03 ip=sub-a:10.0.0.7 key=19 bound=host3
port vm-a4 net-a mac=fa:16:3e:00:00:04 ip=sub-a:10.0.0.8 key=20 bound=host1 nosec
`

// BenchmarkSimulateBridge is the agent's slow path for a TCP flow between
// two VMs on different hosts, with port security.
func BenchmarkSimulateBridge(b *testing.B) {
	w := parseWorld(b, benchTopology)
	pkt := w.packet(b, "from=vm-a1 eth_dst=@vm-a2 ip_dst=@vm-a2 proto=tcp sport=40000 dport=80")
	b.ReportAllocs()
	for b.Loop() {
		r := Simulate(w.snap, w.local, pkt, w.st, 0)
		if len(r.Outputs) != 1 {
			b.Fatal(r)
		}
	}
}

// BenchmarkSimulateFlood is a broadcast from a port without port security
// (MAC learning consulted).
func BenchmarkSimulateFlood(b *testing.B) {
	w := parseWorld(b, benchTopology)
	pkt := w.packet(b, "from=vm-a4 eth_dst=bcast proto=udp sport=5000 dport=5000 ip_dst=10.0.0.255")
	b.ReportAllocs()
	for b.Loop() {
		r := Simulate(w.snap, w.local, pkt, w.st, 0)
		if r.Flood == nil {
			b.Fatal(r)
		}
	}
}

// BenchmarkTraceBridge is BenchmarkSimulateBridge with the trace built.
func BenchmarkTraceBridge(b *testing.B) {
	w := parseWorld(b, benchTopology)
	pkt := w.packet(b, "from=vm-a1 eth_dst=@vm-a2 ip_dst=@vm-a2 proto=tcp sport=40000 dport=80")
	b.ReportAllocs()
	for b.Loop() {
		Trace(w.snap, w.local, pkt, w.st, 0)
	}
}

// TestSimulateAllocs pins the allocation budget of the hot path: one
// block for the Result's slices, whatever the path (unicast, flood, drop).
func TestSimulateAllocs(t *testing.T) {
	w := parseWorld(t, benchTopology)
	tests := []struct {
		name string
		desc string
		max  float64
	}{
		{name: "unicast-remote", desc: "from=vm-a1 eth_dst=@vm-a2 ip_dst=@vm-a2 proto=tcp sport=40000 dport=80", max: 1},
		{name: "flood-learning", desc: "from=vm-a4 eth_dst=bcast proto=udp sport=5000 dport=5000 ip_dst=10.0.0.255", max: 1},
		{name: "spoofed", desc: "from=vm-a1 eth_src=fa:16:3e:00:00:66 eth_dst=@vm-a2", max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := w.packet(t, tt.desc)
			got := testing.AllocsPerRun(200, func() { Simulate(w.snap, w.local, pkt, w.st, 0) })
			if got > tt.max {
				t.Errorf("Simulate(%s) allocates %.1f times, want <= %.0f", tt.desc, got, tt.max)
			}
		})
	}
}
