package cli

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseKV feeds arbitrary flag values to parseKV. Invariants: on
// success every key is allowed and every required key has a value, and
// writing the map back as key=value pairs parses to the same map; on
// failure the result is nil.
func FuzzParseKV(f *testing.F) {
	for _, s := range []string{
		"start=10.0.0.10,end=10.0.0.99",  // a whole allocation pool
		"start=10.0.0.10",                // a required key missing
		"start=1,start=2",                // a key twice
		"bogus=1",                        // an unknown key
		"=,=", "", ",", "start==x,end=y", // degenerate separators
	} {
		f.Add(s)
	}
	allowed, required := []string{"start", "end", "opt"}, []string{"start", "end"}
	f.Fuzz(func(t *testing.T, s string) {
		kv, err := parseKV("f", s, allowed, required)
		if err != nil {
			if kv != nil {
				t.Fatalf("parseKV(%q) = %v with error %v", s, kv, err)
			}
			return
		}
		var parts []string
		for k, v := range kv {
			if !slices.Contains(allowed, k) {
				t.Fatalf("parseKV(%q) accepted key %q", s, k)
			}
			parts = append(parts, k+"="+v)
		}
		for _, k := range required {
			if kv[k] == "" {
				t.Fatalf("parseKV(%q) lacks required %q", s, k)
			}
		}
		again, err := parseKV("f", strings.Join(parts, ","), allowed, required)
		if err != nil || !mapsEqual(again, kv) {
			t.Fatalf("parseKV(%q) = %v, but its rewrite parses to %v, %v", s, kv, again, err)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
