package cli

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// parseKV parses a flag value of the form "key=value,key=value" (as in
// --allocation-pool start=10.0.0.10,end=10.0.0.99). Every key must be in
// allowed and appear at most once; every key in required must appear.
func parseKV(flag, s string, allowed, required []string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want %s", flag, s, kvUsage(allowed, required))
		}
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("--%s %q: unknown key %q; want %s", flag, s, k, kvUsage(allowed, required))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--%s %q: key %q given twice", flag, s, k)
		}
		out[k] = v
	}
	for _, k := range required {
		if out[k] == "" {
			return nil, fmt.Errorf("--%s %q: missing %s=; want %s", flag, s, k, kvUsage(allowed, required))
		}
	}
	return out, nil
}

func kvUsage(allowed, required []string) string {
	parts := make([]string, 0, len(allowed))
	for _, k := range allowed {
		p := k + "=..."
		if !slices.Contains(required, k) {
			p = "[" + p + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// checkIP reports whether s is an IP address, naming the flag if not.
func checkIP(flag, s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("--%s: %q is not an IP address", flag, s)
	}
	return nil
}

// checkCIDR reports whether s is a network in CIDR notation.
func checkCIDR(flag, s string) error {
	if _, err := netip.ParsePrefix(s); err != nil {
		return fmt.Errorf("--%s: %q is not a CIDR (such as 10.0.0.0/24)", flag, s)
	}
	return nil
}

// checkMAC reports whether s is an Ethernet MAC address.
func checkMAC(flag, s string) error {
	if hw, err := net.ParseMAC(s); err != nil || len(hw) != 6 {
		return fmt.Errorf("--%s: %q is not a MAC address (such as fa:16:3e:12:34:56)", flag, s)
	}
	return nil
}
