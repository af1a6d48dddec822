package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Sentinels for conditions callers branch on. Test with errors.Is.
var (
	// ErrNotFound: the server answered 404, or no object has the given
	// name or ID.
	ErrNotFound = errors.New("client: not found")
	// ErrAmbiguous: several objects have the given name.
	ErrAmbiguous = errors.New("client: ambiguous name")
)

// Error is an error answered by the API server: its HTTP status and the
// NeutronError type and message (or, for servers that answer otherwise,
// the start of the body).
type Error struct {
	Status  int
	Type    string // NeutronError type, e.g. "NetworkNotFound"; may be empty
	Message string // NeutronError message, meant for people
	Detail  string // NeutronError detail; usually empty
}

// Error returns the server's message followed by the status and type, as
// in "Network foo could not be found. (HTTP 404 NetworkNotFound)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Message != "" {
		b.WriteString(e.Message)
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "(HTTP %d", e.Status)
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	b.WriteString(")")
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// maxPlainMessage bounds how much of a non-JSON error body is kept.
const maxPlainMessage = 512

// parseError turns an error response into an *Error. It understands the
// NeutronError body, the Octavia/wsme body ({"faultstring": ...}) and
// falls back to the body text or the status text.
func parseError(status int, body []byte) *Error {
	e := &Error{Status: status}
	var v struct {
		NeutronError *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"NeutronError"`
		FaultString string `json:"faultstring"`
		Description string `json:"description"`
	}
	if json.Unmarshal(body, &v) == nil {
		switch {
		case v.NeutronError != nil:
			e.Type = v.NeutronError.Type
			e.Message = v.NeutronError.Message
			switch d := v.NeutronError.Detail.(type) {
			case nil:
			case string:
				e.Detail = d
			default:
				b, _ := json.Marshal(d)
				e.Detail = string(b)
			}
		case v.FaultString != "":
			e.Message = v.FaultString
		case v.Description != "":
			e.Message = v.Description
		}
	}
	if e.Message == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > maxPlainMessage {
			msg = msg[:maxPlainMessage]
			for !utf8.ValidString(msg) {
				msg = msg[:len(msg)-1]
			}
			msg += "..."
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		e.Message = msg
	}
	return e
}
