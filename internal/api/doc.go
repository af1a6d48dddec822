// Package api is hivenet's REST API: OpenStack Networking v2.0
// (/v2.0/networks, subnets, ports, agents, extensions; routers with
// add_router_interface/remove_router_interface, floatingips,
// security-groups, security-group-rules) with the wire
// conventions existing clients expect (bodies wrapped in the resource
// name, filters on any attribute with repeated values ORed, fields=,
// limit/marker/sort_key/sort_dir with <resource>_links, NeutronError
// bodies with Neutron's statuses and types), plus the hivenet trace
// extension (POST /v2.0/hivenet/trace, through Config.Trace).
//
// Every write validates its input before touching the store, then runs
// one store.Update: it reads what it depends on, allocates (addresses,
// MACs, tunnel keys) and commits the API object, its translation (package
// translate) and its index keys in a single etcd transaction guarded by
// the revisions it read. A concurrent writer makes the transaction retry
// on fresh data; a failed request writes nothing.
//
// L3 (routers.go, floatingips.go, secgroups.go): router interfaces and
// gateways are ports the router API makes (device_owner
// network:router_interface / network:router_gateway); security groups
// compile into per-group chains that each member port's chains jump to,
// and per-group address sets; external networks are flat networks on a
// physical network. Every L3 write translates, in the same transaction,
// everything it changes (router, chains, address groups, floating IPs).
//
// Auth is X-Auth-Token: Config.AdminToken is the admin (project
// AdminProject), Config.Tokens map more tokens to a project and a role. A
// member sees and changes only its project's objects (plus shared
// networks, read-only); others' are 404, as in Neutron.
//
//	srv, err := api.New(api.Config{Store: st, AdminToken: tok})
//	http.ListenAndServe(":9696", srv)
//
// Run wraps that into a whole server process (embedded etcd or an
// external cluster, listener, clean shutdown) for `hivenet server`.
package api
