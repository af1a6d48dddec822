package api

import (
	"errors"
	"testing"

	"hivenet/internal/translate"
)

// decodeCreate runs everything a create request goes through before the
// store: body decoding, attribute checks and value validation.
func decodeCreate(body []byte, kind uint8) error {
	s := &Server{mtu: 1450}
	c := &caller{Project: "p"}
	switch kind % 3 {
	case 0:
		a, err := decodeBytes(body, "network")
		if err != nil {
			return err
		}
		if err := a.check(networkCreateAttrs, nil); err != nil {
			return err
		}
		if _, err := ownerProject(c, a); err != nil {
			return err
		}
		n := translate.Network{MTU: 1450}
		return s.networkAttrs(c, a, &n)
	case 1:
		a, err := decodeBytes(body, "subnet")
		if err != nil {
			return err
		}
		if err := a.check(subnetCreateAttrs, nil); err != nil {
			return err
		}
		sn := translate.Subnet{IPVersion: 4}
		if err := a.str("cidr", &sn.CIDR, 64); err != nil {
			return err
		}
		if err := a.integer("ip_version", &sn.IPVersion); err != nil {
			return err
		}
		given, serr := subnetAttrs(a, &sn)
		if serr != nil {
			return serr
		}
		return translate.PrepareSubnet(&sn, given, nil)
	default:
		a, err := decodeBytes(body, "port")
		if err != nil {
			return err
		}
		if err := a.check(portCreateAttrs, nil); err != nil {
			return err
		}
		p := translate.Port{VNICType: "normal", PortSecurityEnabled: true}
		if err := portAttrs(a, &p); err != nil {
			return err
		}
		var ips []translate.FixedIP
		if err := a.list("fixed_ips", &ips); err != nil {
			return err
		}
		return finishPort(&p)
	}
}

// FuzzDecodeRequest: arbitrary bodies never panic; they decode, or fail
// with a 4xx API error (never a 500).
func FuzzDecodeRequest(f *testing.F) {
	seeds := []struct {
		body string
		kind uint8
	}{
		{`{"network": {"name": "n", "admin_state_up": true, "mtu": 1400, "tags": ["a"]}}`, 0}, // valid network
		{`{"network": {"admin_state_up": "False", "shared": "1"}}`, 0},                        // string booleans
		{`{"network": {"mtu": 1e400}}`, 0},                                                    // huge number
		{`{"network": {"name": "\ud800"}}`, 0},                                                // lone surrogate
		{`{"network": null}`, 0},                                                              // null resource
		{`{"network": {}, "network": {}}`, 0},                                                 // duplicate key
		{`{"subnet": {"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.5", "end": "10.0.0.9"}]}}`, 1},
		{`{"subnet": {"cidr": "10.0.0.0/8", "gateway_ip": null, "host_routes": [null]}}`, 1}, // null list entry
		{`{"subnet": {"cidr": "0.0.0.0/0"}}`, 1},                                             // everything
		{`{"subnet": {"cidr": "255.255.255.252/30", "allocation_pools": [{"start": "255.255.255.253", "end": "255.255.255.254"}]}}`, 1},
		{`{"subnet": {"ip_version": "4", "cidr": "10.0.0.0/24", "dns_nameservers": [1]}}`, 1},
		{`{"port": {"network_id": "x", "fixed_ips": [{"ip_address": "10.0.0.5"}], "mac_address": "fa:16:3e:00:00:01"}}`, 2},
		{`{"port": {"binding:profile": {"interface_name": 7}}}`, 2}, // non-string ifname
		{`{"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "fa:16:3e:00:00:02"}]}}`, 2},
		{`{"port": {"allowed_address_pairs": [{}]}}`, 2},                                                        // empty pair
		{`{"port": {"port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "1.2.3.4"}]}}`, 2}, // 409
		{`[`, 2}, {``, 0}, {`{}`, 1}, {`{"port": [1, 2]}`, 2}, {"{\"port\": {}}\x00", 2},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.kind)
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		err := decodeCreate(body, kind)
		if err == nil {
			return
		}
		ae, known := asError(err)
		if !known || ae.Status < 400 || ae.Status >= 500 {
			t.Fatalf("decodeCreate(%q, %d) = %v: status %d, want a 4xx", body, kind, err, ae.Status)
		}
		var fe *translate.FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			t.Fatalf("field error without a field: %v", err)
		}
	})
}
