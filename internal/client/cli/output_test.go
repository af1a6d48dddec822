package cli

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "null", v: nil, want: "None"},
		{name: "string", v: "blue", want: "blue"},
		{name: "true", v: true, want: "True"},
		{name: "false", v: false, want: "False"},
		{name: "number kept as sent", v: json.Number("1e3"), want: "1e3"},
		{name: "empty list", v: []any{}, want: ""},
		{name: "scalars", v: []any{"10.0.0.2", json.Number("7")}, want: "10.0.0.2, 7"},
		{name: "objects one per line", v: []any{map[string]any{"b": "2", "a": "1"}, map[string]any{"a": "3"}}, want: "a='1', b='2'\na='3'"},
		{name: "object with non-strings", v: map[string]any{"on": true, "n": json.Number("5"), "x": nil}, want: "n=5, on=True, x=None"},
		{name: "empty object", v: map[string]any{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatValue(tt.v); got != tt.want {
				t.Errorf("formatValue(%#v) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

func TestParseKV(t *testing.T) {
	allowed := []string{"ip-address", "mac-address"}
	required := []string{"ip-address"}
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "both", in: "ip-address=10.0.0.5,mac-address=fa:16:3e:00:00:01", want: map[string]string{"ip-address": "10.0.0.5", "mac-address": "fa:16:3e:00:00:01"}},
		{name: "required only, spaces trimmed", in: " ip-address = 10.0.0.5 ", want: map[string]string{"ip-address": "10.0.0.5"}},
		{name: "missing required", in: "mac-address=fa:16:3e:00:00:01", wantErr: `--x "mac-address=fa:16:3e:00:00:01": missing ip-address=; want ip-address=...,[mac-address=...]`},
		{name: "empty required", in: "ip-address=", wantErr: `--x "ip-address=": missing ip-address=; want ip-address=...,[mac-address=...]`},
		{name: "no equals", in: "10.0.0.5", wantErr: `--x "10.0.0.5": want ip-address=...,[mac-address=...]`},
		{name: "unknown key", in: "ip=10.0.0.5", wantErr: `--x "ip=10.0.0.5": unknown key "ip"; want ip-address=...,[mac-address=...]`},
		{name: "duplicate key", in: "ip-address=1.1.1.1,ip-address=2.2.2.2", wantErr: `--x "ip-address=1.1.1.1,ip-address=2.2.2.2": key "ip-address" given twice`},
		{name: "empty", in: "", wantErr: `--x "": want ip-address=...,[mac-address=...]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKV("x", tt.in, allowed, required)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseKV(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseKV(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
