package store

import (
	"testing"

	"hivenet/internal/topology"
)

func TestDecodeChange(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		value    string // "" = delete
		wantOK   bool
		wantKind topology.Kind
		wantID   string
		wantErr  bool
	}{
		{name: "bridge put", key: PrefixTopo + "bridge/b1", value: `{"id":"b1","flood_key":7}`, wantOK: true, wantKind: topology.KindBridge, wantID: "b1"},
		{name: "port delete", key: PrefixTopo + "port/p1", wantOK: true, wantKind: topology.KindPort, wantID: "p1"},
		{name: "binding", key: PrefixState + "binding/p1", value: `{"port_id":"p1","host":"h"}`, wantOK: true, wantKind: topology.KindPortBinding, wantID: "p1"},
		{name: "mac id has a slash", key: PrefixState + "mac/b1/fa:16:3e:00:00:01", value: `{"bridge_id":"b1","mac":"fa:16:3e:00:00:01","port_id":"p"}`, wantOK: true, wantKind: topology.KindMAC, wantID: "b1/fa:16:3e:00:00:01"},
		{name: "api key", key: PrefixAPI + "networks/n1", value: `{}`},
		{name: "index key", key: PrefixIndex + "ip/n/10.0.0.1", value: `p`},
		{name: "unknown kind", key: PrefixTopo + "widget/w1", value: `{}`},
		{name: "no id", key: PrefixTopo + "bridge", value: `{}`},
		{name: "corrupt", key: PrefixTopo + "bridge/b1", value: `{`, wantErr: true},
		{name: "bad mac", key: PrefixState + "mac/b1/x", value: `{"mac":"zz"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v []byte
			if tt.value != "" {
				v = []byte(tt.value)
			}
			c, ok, err := DecodeChange(tt.key, v)
			if (err != nil) != tt.wantErr || ok != tt.wantOK {
				t.Fatalf("DecodeChange(%q, %q) = %+v, %v, %v; want ok %v err %v", tt.key, tt.value, c, ok, err, tt.wantOK, tt.wantErr)
			}
			if ok && (c.Kind != tt.wantKind || c.ID != tt.wantID) {
				t.Errorf("DecodeChange(%q) = kind %v id %q, want %v %q", tt.key, c.Kind, c.ID, tt.wantKind, tt.wantID)
			}
		})
	}
}

// FuzzDecodeChange: any key and value decode without panicking; a put of
// a topology key sets exactly the pointer of its kind, a delete none, and
// an error gives the zero Change and a non-topology key no object.
func FuzzDecodeChange(f *testing.F) {
	f.Add(PrefixTopo+"bridge/b1", []byte(`{"id":"b1"}`), false)
	f.Add(PrefixTopo+"port/p1", []byte(`{"id":"p1","mac":"fa:16:3e:00:00:01","fixed_ips":[{"subnet_id":"s","ip_address":"10.0.0.1"}]}`), false)
	f.Add(PrefixTopo+"subnet/s1", []byte(`{"cidr":"10.0.0.0/24","gateway_ip":"10.0.0.1"}`), false)
	f.Add(PrefixState+"host/h1", []byte(`{"name":"h1","tunnel_ip":"192.0.2.1"}`), false)
	f.Add(PrefixState+"mac/b/fa:16:3e:00:00:01", []byte(`{"mac":"fa:16:3e:00:00:01"}`), false)
	f.Add(PrefixState+"binding/p1", []byte(nil), true) // delete
	f.Add(PrefixTopo+"subnet/s1", []byte(`{"cidr":"10.0.0.0/99"}`), false)
	f.Add(Root+"x", []byte(`null`), false)
	f.Fuzz(func(t *testing.T, key string, value []byte, del bool) {
		if del {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		c, ok, err := DecodeChange(key, value)
		if err != nil {
			if c != (topology.Change{}) || ok {
				t.Fatalf("DecodeChange(%q) = %+v, %v, %v: want the zero Change with an error", key, c, ok, err)
			}
			return
		}
		set := 0
		for _, p := range []bool{c.Bridge != nil, c.Port != nil, c.Subnet != nil, c.Host != nil, c.Binding != nil, c.MAC != nil,
			c.Router != nil, c.Chain != nil, c.AddrGroup != nil, c.FloatingIP != nil, c.Uplink != nil, c.ARP != nil} {
			if p {
				set++
			}
		}
		if !ok {
			if set != 0 {
				t.Fatalf("DecodeChange(%q) not ok but set %d pointers", key, set)
			}
			return
		}
		if (value == nil && set != 0) || (value != nil && set != 1) {
			t.Fatalf("DecodeChange(%q, %q) = %+v: %d pointers set", key, value, c, set)
		}
	})
}
