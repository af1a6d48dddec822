package ebpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// parseHarness runs hn_port with BPF_PROG_TEST_RUN on unpinned maps:
// slot 0 holds the exact-match (all-ones mask) flow of the frame's key as
// packet.Parse sees it, rewriting the source MAC to markExact; slot 1 a
// catch-all (zero mask) rewriting it to markOther. The MAC in the output
// frame tells what the program's parser produced.
type parseHarness struct {
	objs bpfObjects
}

var (
	markExact = [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	markOther = [6]byte{0x02, 0xaa, 0, 0, 0, 2}
)

func newParseHarness(t *testing.T) *parseHarness {
	t.Helper()
	h, err := loadParseHarness()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.objs.Close() })
	return h
}

func loadParseHarness() (*parseHarness, error) {
	spec, err := loadBpf()
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	h := &parseHarness{}
	if err := spec.LoadAndAssign(&h.objs, nil); err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	full := packet.MaskOf(^packet.Field(0))
	var zero packet.FlowMatch
	var other flowtable.Actions
	other.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: markOther})
	// test_run skbs have ingress_ifindex 0: bind "ifindex 0" as port 7.
	err = errors.Join(
		h.objs.HnIfports.Put(uint32(0), encodePortInfo(7, [6]byte{0x02, 0xbb, 0, 0, 0, 7}, 0)),
		h.objs.HnConfig.Put(uint32(0), encodeConfig(0, 0, 2)),
		h.objs.HnMasks.Put(uint32(0), encodeMask(&full)),
		h.objs.HnMasks.Put(uint32(1), encodeMask(&zero)),
		h.objs.HnFlows.Put(makeLookupKey(1, &zero), encodeFlowVal(&other)),
	)
	if err != nil {
		h.objs.Close()
		return nil, err
	}
	return h, nil
}

type parseOutcome int

const (
	outDeclined   parseOutcome = iota // the program sent it up (miss)
	outExact                          // the program's key equals packet.Parse's
	outOther                          // the program parsed a different key
	outUntestable                     // the kernel's test run refused the frame
)

func (o parseOutcome) String() string {
	return [...]string{"declined (upcall)", "same key", "DIFFERENT key", "untestable"}[o]
}

// run installs the exact flow of frame's Go key (if it parses) and
// returns what the program did with frame.
func (h *parseHarness) run(t *testing.T, frame []byte) (parseOutcome, error) {
	t.Helper()
	var m packet.FlowMatch
	perr := packet.Parse(frame, 7, &m)
	exact := &m
	if perr != nil {
		exact = nil
	}
	got, err := h.runExact(t, frame, exact)
	if err != nil {
		if errors.Is(err, unix.EINVAL) && len(frame) < 60 {
			return outUntestable, perr // BPF_PROG_TEST_RUN refuses some short frames
		}
		t.Fatalf("test run of %d-byte frame %x: %v", len(frame), frame, err)
	}
	return got, perr
}

// runExact installs the exact flow of m (unless nil) in slot 0 and runs
// the program on frame: outExact when that flow took it.
func (h *parseHarness) runExact(t *testing.T, frame []byte, m *packet.FlowMatch) (parseOutcome, error) {
	t.Helper()
	if m != nil {
		var a flowtable.Actions
		a.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: markExact})
		k := makeLookupKey(0, m)
		if err := h.objs.HnFlows.Put(k, encodeFlowVal(&a)); err != nil {
			t.Fatal(err)
		}
		defer h.objs.HnFlows.Delete(k)
	}
	out := make([]byte, len(frame)+64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	if _, err := h.objs.HnPort.Run(opts); err != nil {
		return outDeclined, err
	}
	switch {
	case len(opts.DataOut) >= 12 && bytes.Equal(opts.DataOut[6:12], markExact[:]):
		return outExact, nil
	case len(opts.DataOut) >= 12 && bytes.Equal(opts.DataOut[6:12], markOther[:]):
		return outOther, nil
	}
	return outDeclined, nil
}

func testFrames() map[string][]byte {
	mac1, mac2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	udp := packet.AppendUDP4(nil, mac1, mac2, netip.AddrPortFrom(a1, 68), netip.AddrPortFrom(a2, 67), 64, []byte("hello"))
	echo := packet.AppendICMP4Echo(nil, mac1, mac2, a1, a2, 64, packet.ICMPEchoRequest, 0x1234, 1, []byte("ping"))
	reply := packet.AppendICMP4Echo(nil, mac1, mac2, a1, a2, 3, packet.ICMPEchoReply, 0x4321, 9, nil)
	arp := packet.AppendARPRequest(nil, mac1, a1, a2)
	arpReply := packet.AppendARPReply(nil, mac1, a1, mac2, a2)
	tcp := tcp4(mac1, mac2, a1, a2, 40000, 80, 0)
	frag1 := tcp4(mac1, mac2, a1, a2, 1, 2, 0x2000) // MF: first fragment
	fragN := tcp4(mac1, mac2, a1, a2, 1, 2, 0x0010) // offset: later fragment
	opts := tcp4opt(mac1, mac2, a1, a2)             // IHL 6
	unknownProto := tcp4(mac1, mac2, a1, a2, 5, 6, 0)
	unknownProto[14+9] = 99
	ipv6udp := udp6(mac1, mac2, 17)
	ipv6icmp := udp6(mac1, mac2, 58)
	ipv6ext := udp6(mac1, mac2, 0) // hop-by-hop: the program declines
	vlan := append(append(append([]byte{}, udp[:12]...), 0x81, 0, 0, 5), udp[12:]...)
	other := append(append([]byte{}, udp[:12]...), 0x88, 0xcc, 1, 2, 3)
	padded := append(append([]byte{}, echo...), make([]byte, 20)...) // Ethernet padding after the IP packet
	return map[string][]byte{
		"udp": udp, "echo request": echo, "echo reply": reply, "arp request": arp, "arp reply": arpReply,
		"tcp": tcp, "first fragment": frag1, "later fragment": fragN, "ip options": opts,
		"unknown ip proto": unknownProto, "ipv6 udp": ipv6udp, "ipv6 icmp": ipv6icmp, "ipv6 ext header": ipv6ext,
		"vlan": vlan, "lldp ethertype": other, "padded": padded,
	}
}

func tcp4(src, dst [6]byte, a, b netip.Addr, sp, dp uint16, frag uint16) []byte {
	f := packet.AppendUDP4(nil, src, dst, netip.AddrPortFrom(a, sp), netip.AddrPortFrom(b, dp), 64, make([]byte, 12))
	// Turn the UDP datagram (8 + 12 bytes) into a 20-byte TCP header.
	ip := f[14:]
	ip[9] = packet.ProtoTCP
	binary.BigEndian.PutUint16(ip[6:], frag)
	tcp := ip[20:]
	tcp[12] = 5 << 4
	return f
}

func tcp4opt(src, dst [6]byte, a, b netip.Addr) []byte {
	f := tcp4(src, dst, a, b, 7, 8, 0)
	// Insert 4 bytes of options (NOPs) after the IPv4 header.
	out := append(append(append([]byte{}, f[:34]...), 1, 1, 1, 1), f[34:]...)
	ip := out[14:]
	ip[0] = 0x46
	binary.BigEndian.PutUint16(ip[2:], uint16(len(out)-14))
	return out
}

func udp6(src, dst [6]byte, next uint8) []byte {
	f := make([]byte, 14+40+8+8)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], packet.EthTypeIPv6)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 16)
	ip[6], ip[7] = next, 64
	copy(ip[8:], netip.MustParseAddr("fd00::1").AsSlice())
	copy(ip[24:], netip.MustParseAddr("fd00::2").AsSlice())
	l4 := ip[40:]
	switch next {
	case 0: // hop-by-hop (8 bytes) then UDP
		l4[0] = 17
		binary.BigEndian.PutUint16(ip[4:], 16)
	case 17:
		binary.BigEndian.PutUint16(l4[0:], 546)
		binary.BigEndian.PutUint16(l4[2:], 547)
		binary.BigEndian.PutUint16(l4[4:], 16)
	case 58:
		l4[0] = 128
		binary.BigEndian.PutUint16(l4[4:], 0x77)
	}
	return f
}

// TestPrivilegedParseMatchesGo: for every frame packet.Parse accepts, the
// program computes exactly the same flow key or sends the frame up; for
// every frame it rejects, the program sends it up. Named frames first,
// then deterministic random mutations (byte flips, truncation) of them.
func TestPrivilegedParseMatchesGo(t *testing.T) {
	requireRoot(t)
	h := newParseHarness(t)
	// Frames the program must handle itself (not decline).
	mustHit := map[string]bool{"udp": true, "echo request": true, "echo reply": true, "arp request": true,
		"arp reply": true, "tcp": true, "first fragment": true, "later fragment": true, "ip options": true,
		"unknown ip proto": true, "ipv6 udp": true, "ipv6 icmp": true, "lldp ethertype": true, "padded": true}
	frames := testFrames()
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			got, perr := h.run(t, f)
			if perr != nil {
				t.Fatalf("packet.Parse: %v (test frame broken)", perr)
			}
			want := outDeclined
			if mustHit[name] {
				want = outExact
			}
			if got != want {
				t.Errorf("program: %v, want %v", got, want)
			}
		})
	}
	t.Run("mutations", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		var names []string
		for n := range frames {
			names = append(names, n)
		}
		counts := map[parseOutcome]int{}
		goErr := 0
		for i := range 3000 {
			base := frames[names[i%len(names)]]
			f := append([]byte{}, base...)
			for range 1 + r.IntN(3) {
				f[14+r.IntN(len(f)-14)] ^= byte(1 << r.IntN(8))
			}
			if r.IntN(4) == 0 {
				f = f[:14+r.IntN(len(f)-13)]
			}
			got, perr := h.run(t, f)
			counts[got]++
			if perr != nil {
				goErr++
			}
			// outOther: a key unlike Go's, or a key for a frame Go rejects.
			if got == outOther {
				t.Errorf("frame %x: the program parsed a key packet.Parse does not give (Go error: %v)", f, perr)
			}
		}
		t.Logf("3000 mutated frames: %d same key, %d declined, %d refused by the test run; packet.Parse rejected %d",
			counts[outExact], counts[outDeclined], counts[outUntestable], goErr)
		if counts[outExact] < 1000 {
			t.Errorf("only %d mutated frames handled by the program", counts[outExact])
		}
	})
}

// FuzzParseMatchesGo: for any frame, the program either computes the key
// packet.Parse computes or sends the frame up; it never forwards a frame
// on a key Go would not give it. Needs root (BPF_PROG_TEST_RUN); the
// seeds (the named test frames) run in plain `go test` as root.
func FuzzParseMatchesGo(f *testing.F) {
	for _, fr := range testFrames() {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to load BPF programs")
		}
		if len(frame) < 14 || len(frame) > 1500 {
			return
		}
		h := fuzzHarness(t)
		got, perr := h.run(t, frame)
		if got == outOther {
			t.Errorf("frame %x: the program parsed a key packet.Parse does not give (Go error: %v)", frame, perr)
		}
	})
}

var (
	fuzzOnce sync.Once
	fuzzH    *parseHarness
	fuzzErr  error
)

// fuzzHarness loads the programs once for the whole fuzzing run (they
// live until the process exits).
func fuzzHarness(t *testing.T) *parseHarness {
	t.Helper()
	fuzzOnce.Do(func() { fuzzH, fuzzErr = loadParseHarness() })
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	return fuzzH
}
