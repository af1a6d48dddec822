package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Object is one API object as JSON: field name → value. Numbers decode as
// json.Number so they print and re-encode exactly as the server sent them.
type Object = map[string]any

// Resource describes one collection of the API: the JSON keys that wrap
// its bodies and its URL path.
type Resource struct {
	Singular string // body key of one object: "network", "security_group_rule"
	Plural   string // body key of a list: "networks", "security_group_rules"
	Path     string // collection path: "/v2.0/networks", "/v2.0/security-group-rules"
	// NameField is the field Resolve matches a name against: "name" for
	// most resources, "host" for agents.
	NameField string
}

// The resources of the API. Each new one is a line here.
var (
	Networks = Resource{Singular: "network", Plural: "networks", Path: "/v2.0/networks", NameField: "name"}
	Subnets  = Resource{Singular: "subnet", Plural: "subnets", Path: "/v2.0/subnets", NameField: "name"}
	Ports    = Resource{Singular: "port", Plural: "ports", Path: "/v2.0/ports", NameField: "name"}
	Agents   = Resource{Singular: "agent", Plural: "agents", Path: "/v2.0/agents", NameField: "host"}

	Routers            = Resource{Singular: "router", Plural: "routers", Path: "/v2.0/routers", NameField: "name"}
	FloatingIPs        = Resource{Singular: "floatingip", Plural: "floatingips", Path: "/v2.0/floatingips", NameField: "floating_ip_address"}
	SecurityGroups     = Resource{Singular: "security_group", Plural: "security_groups", Path: "/v2.0/security-groups", NameField: "name"}
	SecurityGroupRules = Resource{Singular: "security_group_rule", Plural: "security_group_rules", Path: "/v2.0/security-group-rules", NameField: "id"}
	LoadBalancers      = Resource{Singular: "loadbalancer", Plural: "loadbalancers", Path: "/v2/lbaas/loadbalancers", NameField: "name"}
)

// String returns the singular name with spaces: "security group rule".
func (r Resource) String() string { return strings.ReplaceAll(r.Singular, "_", " ") }

func (r Resource) itemPath(id string) string { return r.Path + "/" + url.PathEscape(id) }

// Create creates one object from the given fields and returns it as the
// server stored it.
func (c *Client) Create(ctx context.Context, r Resource, fields Object) (Object, error) {
	return c.one(ctx, http.MethodPost, r, r.Path, map[string]any{r.Singular: fields})
}

// Get returns the object with the given ID.
func (c *Client) Get(ctx context.Context, r Resource, id string) (Object, error) {
	if id == "" {
		return nil, fmt.Errorf("client: empty %s ID", r)
	}
	return c.one(ctx, http.MethodGet, r, r.itemPath(id), nil)
}

// Update changes the given fields of an object and returns the result.
func (c *Client) Update(ctx context.Context, r Resource, id string, fields Object) (Object, error) {
	if id == "" {
		return nil, fmt.Errorf("client: empty %s ID", r)
	}
	return c.one(ctx, http.MethodPut, r, r.itemPath(id), map[string]any{r.Singular: fields})
}

// Delete deletes the object with the given ID.
func (c *Client) Delete(ctx context.Context, r Resource, id string) error {
	if id == "" {
		return fmt.Errorf("client: empty %s ID", r)
	}
	return c.Do(ctx, http.MethodDelete, r.itemPath(id), nil, nil, nil)
}

func (c *Client) one(ctx context.Context, method string, r Resource, path string, in any) (Object, error) {
	var out map[string]json.RawMessage
	if err := c.Do(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	raw, ok := out[r.Singular]
	if !ok {
		return nil, fmt.Errorf("client: response to %s %s has no %q", method, path, r.Singular)
	}
	var obj Object
	if err := decodeNumbers(raw, &obj); err != nil {
		return nil, fmt.Errorf("client: decoding %s: %w", r, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("client: response to %s %s has a null %q", method, path, r.Singular)
	}
	return obj, nil
}

// List returns every object matching filters (field → values, sent as
// query parameters as in ?network_id=X&name=Y; "fields" selects fields).
// It follows the "<plural>_links" next links of a paginated answer.
func (c *Client) List(ctx context.Context, r Resource, filters url.Values) ([]Object, error) {
	u := c.base + r.Path
	if len(filters) > 0 {
		u += "?" + filters.Encode()
	}
	all := []Object{}
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("client: listing %s: more than %d pages", r.Plural, maxPages)
		}
		seen[u] = true
		var out map[string]json.RawMessage
		if err := c.doURL(ctx, http.MethodGet, u, nil, &out); err != nil {
			return nil, err
		}
		raw, ok := out[r.Plural]
		if !ok {
			return nil, fmt.Errorf("client: response to GET %s has no %q", r.Path, r.Plural)
		}
		var items []Object
		if err := decodeNumbers(raw, &items); err != nil {
			return nil, fmt.Errorf("client: decoding %s: %w", r.Plural, err)
		}
		all = append(all, items...)
		next, err := nextLink(u, out[r.Plural+"_links"])
		if err != nil {
			return nil, fmt.Errorf("client: listing %s: %w", r.Plural, err)
		}
		if next == "" || len(items) == 0 || seen[next] {
			return all, nil
		}
		u = next
	}
}

// nextLink returns the absolute URL of the rel="next" link in an OpenStack
// links list, or "" when there is none.
func nextLink(current string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var links []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	}
	if err := json.Unmarshal(raw, &links); err != nil {
		return "", fmt.Errorf("decoding links: %w", err)
	}
	for _, l := range links {
		if l.Rel != "next" || l.Href == "" {
			continue
		}
		base, err := url.Parse(current)
		if err != nil {
			return "", err
		}
		ref, err := url.Parse(l.Href)
		if err != nil {
			return "", fmt.Errorf("next link %q: %w", l.Href, err)
		}
		next := base.ResolveReference(ref)
		if next.Scheme != base.Scheme || next.Host != base.Host {
			return "", fmt.Errorf("next link %q leaves %s://%s", l.Href, base.Scheme, base.Host)
		}
		return next.String(), nil
	}
	return "", nil
}

// Resolve returns the ID of the object named or identified by ref: an
// object whose ID is ref, else the one object whose NameField equals ref.
// No match gives an error wrapping ErrNotFound; several, ErrAmbiguous.
func (c *Client) Resolve(ctx context.Context, r Resource, ref string) (string, error) {
	return c.ResolveIn(ctx, r, ref, nil)
}

// ResolveIn is Resolve among the objects whose fields equal scope (for
// example the subnets of one network: {"network_id": {id}}); names need
// only be unique within the scope.
func (c *Client) ResolveIn(ctx context.Context, r Resource, ref string, scope url.Values) (string, error) {
	obj, err := c.FindIn(ctx, r, ref, scope)
	if err != nil {
		return "", err
	}
	id, _ := obj["id"].(string)
	if id == "" {
		return "", fmt.Errorf("client: %s %q has no id", r, ref)
	}
	return id, nil
}

// Find is Resolve returning the whole object.
func (c *Client) Find(ctx context.Context, r Resource, ref string) (Object, error) {
	return c.FindIn(ctx, r, ref, nil)
}

// FindIn is ResolveIn returning the whole object.
func (c *Client) FindIn(ctx context.Context, r Resource, ref string, scope url.Values) (Object, error) {
	if ref == "" {
		return nil, fmt.Errorf("client: empty %s name or ID", r)
	}
	obj, err := c.Get(ctx, r, ref)
	if err == nil {
		if !inScope(obj, scope) {
			return nil, fmt.Errorf("%w: %s %s is not in %s", ErrNotFound, r, ref, describeScope(scope))
		}
		return obj, nil
	}
	// A server may answer 400 for a string that cannot be an ID; then
	// (or on a 404) ref may still be a name.
	var apiErr *Error
	if !errors.As(err, &apiErr) || (apiErr.Status != http.StatusNotFound && apiErr.Status != http.StatusBadRequest) {
		return nil, err
	}
	if r.NameField == "" || r.NameField == "id" {
		return nil, fmt.Errorf("%w: no %s with ID %q", ErrNotFound, r, ref)
	}
	q := url.Values{r.NameField: {ref}}
	for k, v := range scope {
		q[k] = v
	}
	items, err := c.List(ctx, r, q)
	if err != nil {
		return nil, err
	}
	// Keep only exact matches, in case the server ignores a filter.
	var match []Object
	for _, it := range items {
		if v, _ := it[r.NameField].(string); v == ref && inScope(it, scope) {
			match = append(match, it)
		}
	}
	switch len(match) {
	case 0:
		if len(scope) > 0 {
			return nil, fmt.Errorf("%w: no %s with name or ID %q in %s", ErrNotFound, r, ref, describeScope(scope))
		}
		return nil, fmt.Errorf("%w: no %s with name or ID %q", ErrNotFound, r, ref)
	case 1:
		return match[0], nil
	}
	ids := make([]string, 0, len(match))
	for _, m := range match {
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return nil, fmt.Errorf("%w: %d %s objects have %s %q (%s); use an ID",
		ErrAmbiguous, len(match), r, r.NameField, ref, strings.Join(ids, ", "))
}

func decodeNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// inScope reports whether obj's string fields match every scope field
// (one of its values).
func inScope(obj Object, scope url.Values) bool {
	for k, vs := range scope {
		v, _ := obj[k].(string)
		if !slices.Contains(vs, v) {
			return false
		}
	}
	return true
}

func describeScope(scope url.Values) string {
	keys := slices.Sorted(maps.Keys(scope))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strings.Join(scope[k], "|")
	}
	return strings.Join(parts, ", ")
}
