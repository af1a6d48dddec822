package client

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseError feeds arbitrary error bodies to parseError. Invariants:
// it never panics, keeps the status, always has a message for people,
// and never keeps more than maxPlainMessage bytes of a body it does not
// understand.
func FuzzParseError(f *testing.F) {
	seeds := []string{
		// A NeutronError with and without detail.
		`{"NeutronError": {"type": "NetworkNotFound", "message": "Network x could not be found.", "detail": ""}}`,
		`{"NeutronError": {"type": "InvalidInput", "message": "bad", "detail": {"field": ["cidr"]}}}`,
		// NeutronError with the wrong types.
		`{"NeutronError": {"type": 1, "message": ["m"]}}`,
		`{"NeutronError": null}`,
		// Octavia's body.
		`{"faultcode": "Client", "faultstring": "Load Balancer x not found."}`,
		// Not JSON, empty, truncated, invalid UTF-8, very long.
		"502 Bad Gateway", "", `{"NeutronError": {`, "\xff\xfe", strings.Repeat("x", 2000),
	}
	for _, s := range seeds {
		f.Add(404, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError(status, body)
		if e.Status != status {
			t.Fatalf("parseError(%d, %q).Status = %d", status, body, e.Status)
		}
		if e.Message == "" && (status >= 100 && status < 600) && len(strings.TrimSpace(string(body))) > 0 {
			t.Fatalf("parseError(%d, %q) has no message", status, body)
		}
		if !strings.Contains(string(body), e.Message) && len(e.Message) > maxPlainMessage+len("...") {
			t.Fatalf("parseError(%d, %q) kept %d bytes of an unknown body", status, body, len(e.Message))
		}
		if utf8.Valid(body) && !utf8.ValidString(e.Message) {
			t.Fatalf("parseError(%d, %q) cut a valid body into invalid UTF-8: %q", status, body, e.Message)
		}
		_ = e.Error()
	})
}
