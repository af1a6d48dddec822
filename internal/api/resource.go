package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// resource is one collection of the API: how to read and write its
// objects. The generic handlers below do the wire conventions (body
// wrapping, filters, fields, sorting, pagination) for all of them.
type resource struct {
	singular, plural string
	// attrs is every attribute of the view (valid filter and sort keys).
	attrs []string
	// list returns the objects visible to the caller.
	list func(ctx context.Context, c *caller) ([]any, error)
	// show returns one object, or a 404 *Error.
	show   func(ctx context.Context, c *caller, id string) (any, error)
	create func(ctx context.Context, c *caller, a attrs) (any, error) // nil: 405
	update func(ctx context.Context, c *caller, id string, a attrs) (any, error)
	delete func(ctx context.Context, c *caller, id string) error
}

// view turns a stored object into its wire map (numbers stay exact).
func view(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	return m
}

func attrNames(zero any) []string {
	var out []string
	for k := range view(zero) {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fieldsOf returns the fields= selection (repeated or comma-separated).
func fieldsOf(q url.Values) []string {
	var out []string
	for _, f := range q["fields"] {
		for _, p := range strings.Split(f, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func selectFields(m map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return m
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out
}

// Query parameters that are not attribute filters.
var controlParams = []string{"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "tags", "tags-any", "not-tags", "not-tags-any"}

func (s *Server) serveList(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, res *resource) error {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(controlParams, k) && !slices.Contains(res.attrs, k) {
			return badRequest("%s is invalid attribute for filtering", k)
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("Invalid input for limit. Reason: '%s' is not a non-negative integer.", v)
		}
		limit = n
	}
	keys := q["sort_key"]
	dirs := q["sort_dir"]
	for _, k := range keys {
		if !slices.Contains(res.attrs, k) {
			return badRequest("%s is invalid attribute for sort_key", k)
		}
	}
	for _, d := range dirs {
		if d != "asc" && d != "desc" {
			return badRequest("%s is invalid value for sort_dir, valid values are 'asc' and 'desc'", d)
		}
	}
	if len(dirs) > len(keys) {
		return badRequest("The number of sort_keys and sort_dirs must be the same")
	}

	objs, err := res.list(ctx, c)
	if err != nil {
		return err
	}
	var items []map[string]any
	for _, o := range objs {
		m := view(o)
		if matches(m, q) {
			items = append(items, m)
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		for n, k := range keys {
			d := cmpValue(items[i][k], items[j][k])
			if n < len(dirs) && dirs[n] == "desc" {
				d = -d
			}
			if d != 0 {
				return d < 0
			}
		}
		return cmpValue(items[i]["id"], items[j]["id"]) < 0
	})
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(items, func(x map[string]any) bool { return x["id"] == m })
		if i < 0 {
			return Errorf(http.StatusNotFound, "MarkerNotFound", "Marker %s could not be found.", m)
		}
		items = items[i+1:]
	}
	out := map[string]any{}
	if limit > 0 && len(items) > limit {
		items = items[:limit]
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("marker", items[len(items)-1]["id"].(string))
		nq.Set("limit", strconv.Itoa(limit))
		out[res.plural+"_links"] = []any{map[string]string{
			"rel": "next", "href": baseURL(r) + r.URL.Path + "?" + nq.Encode(),
		}}
	}
	fields := fieldsOf(q)
	list := make([]any, 0, len(items))
	for _, m := range items {
		list = append(list, selectFields(m, fields))
	}
	out[res.plural] = list
	writeJSON(w, http.StatusOK, out)
	return nil
}

// matches applies the attribute and tag filters of q to m. Repeated
// values of one attribute are alternatives (OR); attributes are ANDed.
func matches(m map[string]any, q url.Values) bool {
	for k, wants := range q {
		if slices.Contains(controlParams, k) {
			continue
		}
		if k == "fixed_ips" {
			if !matchFixedIPs(m[k], wants) {
				return false
			}
			continue
		}
		if !slices.ContainsFunc(wants, func(w string) bool { return matchValue(m[k], w) }) {
			return false
		}
	}
	tags := map[string]bool{}
	if l, ok := m["tags"].([]any); ok {
		for _, t := range l {
			if s, ok := t.(string); ok {
				tags[s] = true
			}
		}
	}
	split := func(k string) []string {
		var out []string
		for _, v := range q[k] {
			out = append(out, strings.Split(v, ",")...)
		}
		return out
	}
	all := func(l []string) bool {
		for _, t := range l {
			if !tags[t] {
				return false
			}
		}
		return true
	}
	any_ := func(l []string) bool { return slices.ContainsFunc(l, func(t string) bool { return tags[t] }) }
	if l := split("tags"); len(l) > 0 && !all(l) {
		return false
	}
	if l := split("tags-any"); len(l) > 0 && !any_(l) {
		return false
	}
	if l := split("not-tags"); len(l) > 0 && all(l) {
		return false
	}
	if l := split("not-tags-any"); len(l) > 0 && any_(l) {
		return false
	}
	return true
}

// matchFixedIPs applies fixed_ips=key=value filters as Neutron does: one
// address of the port must match every key given, values of one key
// being alternatives.
func matchFixedIPs(v any, wants []string) bool {
	groups := map[string][]string{}
	for _, w := range wants {
		k, val, ok := strings.Cut(w, "=")
		if !ok {
			return false
		}
		groups[k] = append(groups[k], k+"="+val)
	}
	l, _ := v.([]any)
	return slices.ContainsFunc(l, func(ip any) bool {
		for _, alts := range groups {
			if !slices.ContainsFunc(alts, func(w string) bool { return matchValue(ip, w) }) {
				return false
			}
		}
		return true
	})
}

// matchValue compares an attribute value with a filter string. Lists
// match if any element does; objects take "key=value" filters (as
// fixed_ips=ip_address=10.0.0.5).
func matchValue(v any, want string) bool {
	switch x := v.(type) {
	case nil:
		return want == "" || strings.EqualFold(want, "none") || want == "null"
	case string:
		return x == want
	case bool:
		return strings.EqualFold(want, strconv.FormatBool(x)) || (want == "1" && x) || (want == "0" && !x)
	case json.Number:
		return x.String() == want
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { return matchValue(e, want) })
	case map[string]any:
		k, val, ok := strings.Cut(want, "=")
		if k == "ip_address_substr" {
			ip, _ := x["ip_address"].(string)
			return ok && strings.Contains(ip, val)
		}
		return ok && matchValue(x[k], val)
	}
	return false
}

// cmpValue orders attribute values: null first, then by type.
func cmpValue(a, b any) int {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 0
		}
		return -1
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	case json.Number:
		if y, ok := b.(json.Number); ok {
			fx, _ := x.Float64()
			fy, _ := y.Float64()
			switch {
			case fx < fy:
				return -1
			case fx > fy:
				return 1
			}
			return 0
		}
	}
	if b == nil {
		return 1
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Compare(ja, jb)
}

func (s *Server) serveShow(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, res *resource, id string) error {
	o, err := res.show(ctx, c, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{res.singular: selectFields(view(o), fieldsOf(r.URL.Query()))})
	return nil
}

func (s *Server) serveCreate(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, res *resource) error {
	if res.create == nil {
		return methodNotAllowed(r)
	}
	a, derr := decodeBody(r.Body, res.singular)
	if derr != nil {
		return derr
	}
	o, err := res.create(ctx, c, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{res.singular: view(o)})
	return nil
}

func (s *Server) serveUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, res *resource, id string) error {
	if res.update == nil {
		return methodNotAllowed(r)
	}
	a, derr := decodeBody(r.Body, res.singular)
	if derr != nil {
		return derr
	}
	o, err := res.update(ctx, c, id, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{res.singular: view(o)})
	return nil
}

func (s *Server) serveDelete(ctx context.Context, w http.ResponseWriter, c *caller, res *resource, id string) error {
	if res.delete == nil {
		return Errorf(http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "%s cannot be deleted", res.plural)
	}
	if err := res.delete(ctx, c, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
