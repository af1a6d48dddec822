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

// routerSGTopology is two subnets joined by a router, every VM port with
// a default security group (conntrack, an address group, a CIDR rule).
const routerSGTopology = `
local host1
host host1 tunnel=192.0.2.1
host host2 tunnel=192.0.2.2
bridge net-a key=100 mtu=1450
bridge net-b key=200 mtu=1450
subnet sub-a net-a 10.0.0.0/24 gw=10.0.0.1 server=10.0.0.2
subnet sub-b net-b 10.1.0.0/24 gw=10.1.0.1 server=10.1.0.2
router r1
port r1-a net-a mac=fa:16:3e:00:0a:01 ip=sub-a:10.0.0.1 key=1001 router=r1
port r1-b net-b mac=fa:16:3e:00:0b:01 ip=sub-b:10.1.0.1 key=1002 router=r1
group sg 10.0.0.5,10.0.0.6,10.1.0.5
chain in default=drop
rule in accept ct=est comment=established
rule in accept type=ipv4 src_group=sg comment=from-group
rule in accept type=ipv4 proto=tcp dport=22 src=10.1.0.0/24 comment=ssh
chain out default=drop
rule out accept ct=est comment=established
rule out accept type=ipv4 comment=egress
port vm-a1 net-a mac=fa:16:3e:00:00:01 ip=sub-a:10.0.0.5 key=17 bound=host1 in=in out=out
port vm-a2 net-a mac=fa:16:3e:00:00:02 ip=sub-a:10.0.0.6 key=18 bound=host2 in=in out=out
port vm-b1 net-b mac=fa:16:3e:00:01:01 ip=sub-b:10.1.0.5 key=31 bound=host1 in=in out=out
ct net-a tcp 10.1.0.5:50001 10.0.0.6:22
ct net-b tcp 10.1.0.5:50001 10.0.0.6:22
`

// BenchmarkSimulateRouterSG is the slow path of a new TCP connection
// routed between two subnets, through the outbound chain of the client
// and the inbound chain of the server (conntrack lookups in both, one
// conntrack entry created per zone).
func BenchmarkSimulateRouterSG(b *testing.B) {
	w := parseWorld(b, routerSGTopology)
	pkt := w.packet(b, "from=vm-b1 eth_dst=@r1-b ip_dst=@vm-a2 proto=tcp sport=50000 dport=22")
	b.ReportAllocs()
	for b.Loop() {
		r := Simulate(w.snap, w.local, pkt, w.st, 0)
		if len(r.Outputs) != 1 || len(r.State) != 2 {
			b.Fatal(w.render(r))
		}
	}
}

// TestSimulateRouterAllocs pins the allocation budget of the routed
// paths: the block, and a second one when the packet creates flow state
// (also when a later chain then drops it).
func TestSimulateRouterAllocs(t *testing.T) {
	w := parseWorld(t, routerSGTopology)
	tests := []struct {
		name string
		desc string
		max  float64
	}{
		{name: "routed-new-connection", desc: "from=vm-b1 eth_dst=@r1-b ip_dst=@vm-a2 proto=tcp sport=50000 dport=22", max: 2},
		{name: "routed-established-reply", desc: "from=vm-a2 eth_dst=@r1-a ip_dst=@vm-b1 proto=tcp sport=22 dport=50001", max: 1},
		{name: "sg-drop", desc: "from=vm-b1 eth_dst=@r1-b ip_dst=@vm-a2 proto=tcp sport=50000 dport=23", max: 2},
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
