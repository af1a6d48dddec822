package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

// Input limits (Neutron's).
const (
	maxNameLen = 255
	maxDescLen = 255
	maxTags    = 50
	maxTagLen  = 255
)

// seqTunnelKey is the counter of the last allocated tunnel key.
const seqTunnelKey = store.PrefixSeq + "tunnelkey"

func newID() string { return uuid.NewString() }

// validID reports whether id can be an object ID (a path element we put
// in etcd keys).
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// ownerProject resolves project_id / tenant_id of a create request.
func ownerProject(c *caller, a attrs) (string, error) {
	var p, t string
	if err := a.str("project_id", &p, maxNameLen); err != nil {
		return "", err
	}
	if err := a.str("tenant_id", &t, maxNameLen); err != nil {
		return "", err
	}
	if p != "" && t != "" && p != t {
		return "", invalidInput("project_id", "project_id %q and tenant_id %q differ", p, t)
	}
	if p == "" {
		p = t
	}
	if p == "" {
		return c.Project, nil
	}
	if p != c.Project && !c.Admin {
		return "", forbidden("Only an admin may create resources for another project (project_id %s)", p)
	}
	return p, nil
}

func decodeTags(a attrs, dst *[]string) error {
	if err := a.strList("tags", dst); err != nil {
		return err
	}
	if len(*dst) > maxTags {
		return invalidInput("tags", "%d tags exceed the maximum of %d", len(*dst), maxTags)
	}
	for _, t := range *dst {
		if t == "" || len(t) > maxTagLen {
			return invalidInput("tags", "tag '%s' is empty or longer than %d", clip([]byte(t)), maxTagLen)
		}
	}
	return nil
}

// getObj reads an API object in a transaction; found is false if absent.
func getObj[T any](tx *store.Tx, resource, id string) (*T, error) {
	v := new(T)
	found, err := tx.GetJSON(store.APIKey(resource, id), v)
	if err != nil || !found {
		return nil, err
	}
	return v, nil
}

// listObjs reads every object of an API resource (one range read).
func listObjs[T any](ctx context.Context, st *store.Store, resource string) ([]*T, error) {
	resp, err := st.Client().Get(ctx, store.PrefixAPI+resource+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("api: listing %s: %w", resource, err)
	}
	out := make([]*T, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v := new(T)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, fmt.Errorf("api: decoding %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// owned is a pointer to an API object owned by one project and seen by
// that project (and admins) only.
type owned[T any] interface {
	*T
	Owner() string
}

// visibleObj reads resource/id and returns it when c may see it; a
// missing or foreign object is the same 404 naming kind, as in Neutron.
func visibleObj[T any, P owned[T]](tx *store.Tx, c *caller, resource, kind, id string) (*T, error) {
	if !validID(id) {
		return nil, notFound(kind, id)
	}
	v, err := getObj[T](tx, resource, id)
	if err != nil {
		return nil, err
	}
	if v == nil || !c.canSee(P(v).Owner(), false) {
		return nil, notFound(kind, id)
	}
	return v, nil
}

// listVisible lists the objects of resource that c may see.
func listVisible[T any, P owned[T]](ctx context.Context, st *store.Store, c *caller, resource string) ([]*T, error) {
	all, err := listObjs[T](ctx, st, resource)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, v := range all {
		if c.canSee(P(v).Owner(), false) {
			out = append(out, v)
		}
	}
	return out, nil
}

// visibleResource fills r's list and show with the objects of resource
// that the caller may see (see visibleObj, listVisible).
func visibleResource[T any, P owned[T]](r *resource, st *store.Store, resource, kind string) *resource {
	r.list = func(ctx context.Context, c *caller) ([]any, error) {
		l, err := listVisible[T, P](ctx, st, c, resource)
		return anys(l), err
	}
	r.show = func(ctx context.Context, c *caller, id string) (any, error) {
		var v *T
		_, err := st.View(ctx, func(tx *store.Tx) (err error) {
			v, err = visibleObj[T, P](tx, c, resource, kind, id)
			return err
		})
		return v, err
	}
	return r
}

// anys converts a typed list for a resource's list func.
func anys[T any](l []*T) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

// writeIndexes deletes the index keys in old but not in new and creates
// those in new but not in old, with owner as value. A new key held by
// another owner is a 409 naming it (callers check the common cases first
// with friendlier messages); the read guards the commit.
func writeIndexes(tx *store.Tx, old, new []string, owner string) error {
	for _, k := range old {
		if !slices.Contains(new, k) {
			tx.Delete(store.PrefixIndex + k)
		}
	}
	var fresh []string
	for _, k := range new {
		if !slices.Contains(old, k) {
			fresh = append(fresh, store.PrefixIndex+k)
		}
	}
	if err := tx.Prefetch(fresh...); err != nil {
		return err
	}
	for _, k := range new {
		if slices.Contains(old, k) {
			continue
		}
		cur, err := tx.Get(store.PrefixIndex + k)
		if err != nil {
			return err
		}
		if cur != nil && string(cur) != owner {
			return indexConflict(k, string(cur))
		}
		tx.Create(store.PrefixIndex+k, []byte(owner))
	}
	return nil
}

func indexConflict(key, owner string) *Error {
	kind, rest, _ := strings.Cut(key, "/")
	switch kind {
	case "ip":
		return conflict("IpAddressInUse", "The IP address %s is in use (by %s).", rest, owner)
	case "mac":
		return conflict("MacAddressInUse", "The mac address %s is in use (by %s).", rest, owner)
	case "iface":
		return conflict("InterfaceInUse", "Interface %s (binding:host_id / binding:profile interface_name) is already bound to port %s.", rest, owner)
	}
	return conflict("Conflict", "%s is in use by %s.", key, owner)
}

// allocTunnelKey takes the next free tunnel key after the counter and
// advances the counter; the caller creates its TunnelKeyIndex.
func allocTunnelKey(tx *store.Tx) (uint32, error) {
	b, err := tx.Get(seqTunnelKey)
	if err != nil {
		return 0, err
	}
	var last uint64
	if b != nil {
		if last, err = strconv.ParseUint(string(b), 10, 32); err != nil {
			return 0, fmt.Errorf("api: corrupt %s: %w", seqTunnelKey, err)
		}
	}
	var gerr error
	k, err := translate.NextTunnelKey(uint32(last), func(k uint32) bool {
		if gerr != nil {
			return true
		}
		v, err := tx.Get(store.PrefixIndex + translate.TunnelKeyIndex(k))
		if err != nil {
			gerr = err
			return true
		}
		return v != nil
	})
	if gerr != nil {
		return 0, gerr
	}
	if err != nil {
		return 0, conflict("TunnelKeyExhausted", "no free tunnel key: %v", err)
	}
	tx.Put(seqTunnelKey, []byte(strconv.FormatUint(uint64(k), 10)))
	return k, nil
}

func putTopo(tx *store.Tx, kind topology.Kind, id string, v any) error {
	return tx.PutJSON(store.TopoKey(kind, id), v)
}

func clientv3WithPrefixKeysOnly() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}
}
