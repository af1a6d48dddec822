package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// attrs is the attribute object of a request body, undecoded.
type attrs map[string]json.RawMessage

// decodeBody reads a request body of the form {"<resource>": {...}} and
// returns the inner attributes. Anything else is a 400.
func decodeBody(r io.Reader, resource string) (attrs, *Error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	return decodeBytes(body, resource)
}

func decodeBytes(body []byte, resource string) (attrs, *Error) {
	if len(body) > MaxBodyBytes {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "request body larger than %d bytes", MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("Resource body required")
	}
	var outer map[string]json.RawMessage
	if err := strictUnmarshal(body, &outer); err != nil || outer == nil {
		return nil, badRequest("Malformed request body: %s", jsonReason(err))
	}
	inner, ok := outer[resource]
	if !ok || len(outer) != 1 {
		keys := make([]string, 0, len(outer))
		for k := range outer {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return nil, badRequest("Malformed request body: expected one key %q, got %q", resource, keys)
	}
	var a attrs
	if err := strictUnmarshal(inner, &a); err != nil || a == nil {
		return nil, badRequest("Malformed request body: %q must be an object", resource)
	}
	return a, nil
}

func jsonReason(err error) string {
	if err == nil {
		return "not a JSON object"
	}
	return err.Error()
}

// strictUnmarshal is json.Unmarshal that also rejects trailing data and
// duplicate-looking garbage after the value.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errTrailing
	}
	return nil
}

type decodeErr string

func (e decodeErr) Error() string { return string(e) }

const errTrailing = decodeErr("trailing data after the JSON value")

// check rejects attributes not in allowed (400 naming them), and those in
// readOnly with "Cannot update read-only attribute".
func (a attrs) check(allowed, readOnly []string) *Error {
	var unknown []string
	for k := range a {
		if slices.Contains(allowed, k) {
			continue
		}
		if slices.Contains(readOnly, k) {
			return invalidInput(k, "cannot update read-only attribute %s", k)
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return badRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return nil
}

func (a attrs) has(name string) bool { _, ok := a[name]; return ok }

func (a attrs) isNull(name string) bool {
	v, ok := a[name]
	return ok && string(bytes.TrimSpace(v)) == "null"
}

// str decodes a string attribute, if present, into dst. Strings are
// limited to max bytes (Neutron's 255 for names).
func (a attrs) str(name string, dst *string, max int) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return invalidInput(name, "'%s' is not a valid string", clip(v))
	}
	if max > 0 && len(s) > max {
		return invalidInput(name, "'%s' exceeds maximum length of %d", clip([]byte(s)), max)
	}
	*dst = s
	return nil
}

// boolean decodes a boolean attribute, accepting true/false and the
// strings "true"/"false" (any case), as Neutron does.
func (a attrs) boolean(name string, dst *bool) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		*dst = b
		return nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch strings.ToLower(s) {
		case "true", "1":
			*dst = true
			return nil
		case "false", "0":
			*dst = false
			return nil
		}
	}
	return invalidInput(name, "'%s' is not a valid boolean value", clip(v))
}

// integer decodes an integer attribute.
func (a attrs) integer(name string, dst *int) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	var f json.Number
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return invalidInput(name, "'%s' is not an integer", clip(v))
		}
		f = json.Number(s)
	}
	n, err := f.Int64()
	if err != nil || n > 1<<31 || n < -(1<<31) {
		return invalidInput(name, "'%s' is not an integer", clip(v))
	}
	*dst = int(n)
	return nil
}

// strList decodes a list of strings.
func (a attrs) strList(name string, dst *[]string) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return invalidInput(name, "'%s' is not a list of strings", clip(v))
	}
	if l == nil {
		l = []string{}
	}
	*dst = l
	return nil
}

// object decodes a JSON object attribute; null gives an empty object.
func (a attrs) object(name string, dst *map[string]any) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		return invalidInput(name, "'%s' is not a dictionary", clip(v))
	}
	if m == nil {
		m = map[string]any{}
	}
	*dst = m
	return nil
}

// list decodes a list of objects into dst (a pointer to a slice of
// structs), rejecting unknown keys in the objects.
func (a attrs) list(name string, dst any) *Error {
	v, ok := a[name]
	if !ok {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return invalidInput(name, "'%s' is not valid: %v", clip(v), err)
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
