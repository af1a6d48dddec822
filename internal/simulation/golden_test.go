package simulation

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

var update = flag.Bool("update", false, "rewrite the golden results in testdata/*.txtar")

// TestGolden runs the scenarios in testdata/*.txtar. Each archive holds a
// "topology" file (see topo_test.go for the format) and pairs of files
// "packet NAME" (one packet description, '#' comments allowed) and
// "result NAME" (the rendered Result of Trace, trace included). With
// -update the results are rewritten; review the diff as code.
//
// Every packet is also checked for the invariants of checkInvariants.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(ar.Files) == 0 || ar.Files[0].Name != "topology" {
				t.Fatalf("%s: the first file must be \"topology\"", file)
			}
			w := parseWorld(t, string(ar.Files[0].Data))
			out := &txtar.Archive{Comment: ar.Comment, Files: []txtar.File{ar.Files[0]}}
			results := map[string]string{}
			for _, f := range ar.Files[1:] {
				if name, ok := strings.CutPrefix(f.Name, "result "); ok {
					results[name] = string(f.Data)
				}
			}
			n := 0
			for _, f := range ar.Files[1:] {
				name, ok := strings.CutPrefix(f.Name, "packet ")
				if !ok {
					if !strings.HasPrefix(f.Name, "result ") {
						t.Fatalf("%s: unexpected file %q", file, f.Name)
					}
					continue
				}
				n++
				desc := packetLine(string(f.Data))
				pkt := w.packet(t, desc)
				r := Trace(w.snap, w.local, pkt, w.st, 1e18)
				got := w.render(r)
				checkInvariants(t, w, name, pkt)
				if *update {
					out.Files = append(out.Files, f, txtar.File{Name: "result " + name, Data: []byte(got)})
					continue
				}
				want, ok := results[name]
				if !ok {
					t.Errorf("%s: packet %s has no result (run with -update)", file, name)
					continue
				}
				if got != want {
					t.Errorf("%s: packet %s (%s):\n--- got\n%s--- want\n%s", file, name, desc, got, want)
				}
			}
			if n == 0 {
				t.Fatalf("%s: no packets", file)
			}
			if *update {
				if err := os.WriteFile(file, txtar.Format(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// packetLine joins the non-comment lines of a packet file.
func packetLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// checkInvariants checks, for one packet, what must hold for every
// simulation:
//   - Simulate gives Trace's Result without the trace;
//   - the same inputs give a deep-equal Result (determinism);
//   - neither the frame nor the snapshot is modified;
//   - the verdict is consistent (a drop has a reason, a forward has
//     somewhere to go, a consumed packet is not cacheable), the mask has
//     the ingress port, the tags name the ingress port;
//   - the mask is sound: any packet equal to this one in the masked
//     fields gets the same Result (checked by perturbing each unmasked
//     field), so the megaflow built from it is right for all of them.
func checkInvariants(t *testing.T, w *world, name string, pkt Packet) {
	t.Helper()
	var frameCopy []byte
	if pkt.Frame != nil {
		frameCopy = bytes.Clone(pkt.Frame)
	}
	before := dumpSnapshot(w.snap)
	tr := Trace(w.snap, w.local, pkt, w.st, 1)
	sim := Simulate(w.snap, w.local, pkt, w.st, 2)
	sim2 := Simulate(w.snap, w.local, pkt, w.st, 2)
	if !reflect.DeepEqual(sim, sim2) {
		t.Errorf("%s: Simulate is not deterministic:\n%+v\n%+v", name, sim, sim2)
	}
	if len(sim.Trace) != 0 {
		t.Errorf("%s: Simulate built a trace", name)
	}
	if len(tr.Trace) == 0 {
		t.Errorf("%s: Trace built no trace", name)
	}
	tr.Trace = nil
	if !reflect.DeepEqual(tr, sim) {
		t.Errorf("%s: Trace and Simulate differ:\n%s\n%s", name, w.render(tr), w.render(sim))
	}
	if pkt.Frame != nil && !bytes.Equal(frameCopy, pkt.Frame) {
		t.Errorf("%s: the frame was modified", name)
	}
	if after := dumpSnapshot(w.snap); after != before {
		t.Errorf("%s: the snapshot was modified", name)
	}
	switch sim.Verdict {
	case Drop:
		if sim.Reason == "" || len(sim.Outputs) != 0 || sim.Flood != nil {
			t.Errorf("%s: inconsistent drop: %s", name, w.render(sim))
		}
	case Forward:
		if sim.Reason != "" || (len(sim.Outputs) == 0 && sim.Flood == nil) {
			t.Errorf("%s: inconsistent forward: %s", name, w.render(sim))
		}
	case Consumed:
		if sim.Cacheable || sim.Reason != "" {
			t.Errorf("%s: inconsistent consumed: %s", name, w.render(sim))
		}
	}
	if sim.Verdict != Forward && len(sim.State) != 0 {
		t.Errorf("%s: state written for a packet not forwarded: %s", name, w.render(sim))
	}
	for _, st := range sim.State {
		if (st.Conn == nil) == (st.NAT == nil) || slices.Contains(st.Hosts, w.local) || !slices.IsSorted(st.Hosts) || len(slices.Compact(slices.Clone(st.Hosts))) != len(st.Hosts) {
			t.Errorf("%s: bad state write %+v (one of Conn and NAT; hosts sorted, unique, not the local host)", name, st)
		}
	}
	for _, e := range sim.Emit {
		if strings.Contains(describeFrame(e.Frame), "BAD csum") {
			t.Errorf("%s: emitted frame with a bad checksum: %s", name, describeFrame(e.Frame))
		}
	}
	if sim.Mask.InPort != ^uint32(0) {
		t.Errorf("%s: mask lacks in_port", name)
	}
	if !containsTag(sim.Tags, topology.TagPort(pkt.Ingress)) {
		t.Errorf("%s: tags lack the ingress port", name)
	}
	if sim.Cacheable {
		checkMaskSound(t, w, name, pkt, sim)
	}
}

func containsTag(tags []topology.Tag, t topology.Tag) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

// checkMaskSound perturbs every field of pkt.Match outside r.Mask, one at
// a time and all together, with values that matter to the pipeline, and
// checks the Result does not change.
func checkMaskSound(t *testing.T, w *world, name string, pkt Packet, r Result) {
	t.Helper()
	orig := pkt.Match
	want := orig.Masked(r.Mask)
	var macs [][6]byte
	var ips []netip16
	w.snap.Ports(func(p *topology.Port) {
		macs = append(macs, p.MAC)
		for _, f := range p.FixedIPs {
			ips = append(ips, f.Addr.As16())
		}
	})
	for _, a := range w.l3.addrs { // floating IPs, SNAT and next-hop addresses
		ips = append(ips, a.As16())
	}
	macs = append(macs, topology.BroadcastMAC, [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}, [6]byte{0xfa, 0x16, 0x3e, 0xde, 0xad, 0x01}, [6]byte{})
	ips = append(ips, addr16("0.0.0.0"), addr16("255.255.255.255"), addr16("10.0.0.2"), addr16("10.0.0.1"), addr16("fe80::1"), addr16("2001:db8::1"))
	var cands []packet.FlowMatch
	add := func(f func(m *packet.FlowMatch)) {
		c := orig
		f(&c)
		cands = append(cands, c)
	}
	for _, m := range macs {
		add(func(c *packet.FlowMatch) { c.EthSrc = m })
		add(func(c *packet.FlowMatch) { c.EthDst = m })
		add(func(c *packet.FlowMatch) { c.ARPSha = m })
	}
	for _, ip := range ips {
		add(func(c *packet.FlowMatch) { c.IPSrc = ip })
		add(func(c *packet.FlowMatch) { c.IPDst = ip })
	}
	for _, et := range []uint16{packet.EthTypeIPv4, packet.EthTypeARP, packet.EthTypeIPv6, 0x88cc} {
		add(func(c *packet.FlowMatch) { c.EthType = et })
	}
	for _, v := range []uint16{0, 10} {
		add(func(c *packet.FlowMatch) { c.VLAN = v })
	}
	for _, p := range []uint8{packet.ProtoICMP, packet.ProtoTCP, packet.ProtoUDP, packet.ARPRequest, packet.ARPReply} {
		add(func(c *packet.FlowMatch) { c.IPProto = p })
	}
	for _, p := range []uint16{0, 8, 67, 68, 80} {
		add(func(c *packet.FlowMatch) { c.SrcPort = p })
		add(func(c *packet.FlowMatch) { c.DstPort = p })
	}
	for _, ttl := range []uint8{0, 1, 2, 63, 64} {
		add(func(c *packet.FlowMatch) { c.IPTTL = ttl })
	}
	for _, id := range []uint16{0, 1, 7, 1000} {
		add(func(c *packet.FlowMatch) { c.ICMPID = id })
	}
	for _, p := range []uint16{0, 3, 11, 22, 53, 1024, 40000} {
		add(func(c *packet.FlowMatch) { c.SrcPort = p })
		add(func(c *packet.FlowMatch) { c.DstPort = p })
	}
	add(func(c *packet.FlowMatch) { c.IPFrag = packet.FragLater })
	if orig.CTState != 0 { // a datapath that tracks gives every IP packet a state
		for _, st := range []uint8{packet.CTNew, packet.CTEstablished, packet.CTEstablished | packet.CTReply} {
			add(func(c *packet.FlowMatch) { c.CTState = st })
		}
	}
	// Everything outside the mask at once.
	add(func(c *packet.FlowMatch) {
		rnd := packet.FlowMatch{EthSrc: macs[0], EthDst: [6]byte{0x01, 2, 3, 4, 5, 6}, EthType: packet.EthTypeARP, VLAN: 7,
			IPSrc: ips[0], IPDst: addr16("0.0.0.0"), IPProto: packet.ProtoUDP, IPTTL: 3, SrcPort: 68, DstPort: 67, ARPSha: macs[1]}
		*c = mergeMasked(orig, rnd, r.Mask)
	})
	for _, c := range cands {
		if c.Masked(r.Mask) != want || c == orig {
			continue // differs in a masked field: another flow
		}
		p := Packet{Ingress: pkt.Ingress, Match: c}
		got := Simulate(w.snap, w.local, p, w.st, 3)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: mask %s is unsound: changing unmasked fields\n  %+v\n  to %+v\ngives\n%s\ninstead of\n%s",
				name, maskString(r.Mask), orig, c, w.render(got), w.render(r))
			return
		}
	}
}

type netip16 = [16]byte

func addr16(s string) netip16 {
	return netip.MustParseAddr(s).As16()
}

// mergeMasked takes the masked bits from a and the others from b.
func mergeMasked(a, b, mask packet.FlowMatch) packet.FlowMatch {
	inv := invert(mask)
	am, bm := a.Masked(mask), b.Masked(inv)
	return orMatch(am, bm)
}

func invert(m packet.FlowMatch) packet.FlowMatch {
	r := m
	r.InPort = ^m.InPort
	for i := range r.EthSrc {
		r.EthSrc[i], r.EthDst[i], r.ARPSha[i] = ^m.EthSrc[i], ^m.EthDst[i], ^m.ARPSha[i]
	}
	r.EthType, r.VLAN = ^m.EthType, ^m.VLAN
	for i := range r.IPSrc {
		r.IPSrc[i], r.IPDst[i] = ^m.IPSrc[i], ^m.IPDst[i]
	}
	r.IPProto, r.IPTTL, r.IPFrag = ^m.IPProto, ^m.IPTTL, ^m.IPFrag
	r.SrcPort, r.DstPort = ^m.SrcPort, ^m.DstPort
	r.ICMPID = ^m.ICMPID
	return r
}

func orMatch(a, b packet.FlowMatch) packet.FlowMatch {
	r := a
	r.InPort |= b.InPort
	for i := range r.EthSrc {
		r.EthSrc[i] |= b.EthSrc[i]
		r.EthDst[i] |= b.EthDst[i]
		r.ARPSha[i] |= b.ARPSha[i]
	}
	r.EthType |= b.EthType
	r.VLAN |= b.VLAN
	for i := range r.IPSrc {
		r.IPSrc[i] |= b.IPSrc[i]
		r.IPDst[i] |= b.IPDst[i]
	}
	r.IPProto |= b.IPProto
	r.IPTTL |= b.IPTTL
	r.IPFrag |= b.IPFrag
	r.SrcPort |= b.SrcPort
	r.DstPort |= b.DstPort
	r.ICMPID |= b.ICMPID
	return r
}

// dumpSnapshot prints every object of s, sorted, to detect modification.
func dumpSnapshot(s *topology.Snapshot) string {
	var lines []string
	s.Ports(func(p *topology.Port) { lines = append(lines, fmt.Sprintf("port %+v", *p)) })
	s.Hosts(func(h *topology.Host) { lines = append(lines, fmt.Sprintf("host %+v", *h)) })
	s.Bridges(func(b *topology.Bridge) {
		lines = append(lines, fmt.Sprintf("bridge %+v", *b))
		for _, sn := range s.SubnetsOfBridge(b.ID) {
			lines = append(lines, fmt.Sprintf("subnet %+v", *sn))
		}
	})
	s.Ports(func(p *topology.Port) {
		if b := s.Binding(p.ID); b != nil {
			lines = append(lines, fmt.Sprintf("binding %+v", *b))
		}
		if e := s.LearnedMAC(p.BridgeID, p.MAC); e != nil {
			lines = append(lines, fmt.Sprintf("mac %+v", *e))
		}
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
