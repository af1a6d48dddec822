package store

import (
	"encoding/json"
	"fmt"
	"strings"

	"hivenet/internal/topology"
)

// Key spaces. Every key is Root + one of the prefixes below + an ID.
const (
	Root = "/hivenet/v1/"

	// PrefixAPI holds what the API accepted: PrefixAPI + "<resource>/<id>",
	// resource being the plural API name ("networks", "subnets", "ports").
	PrefixAPI = Root + "api/"
	// PrefixTopo holds the low-level topology: PrefixTopo + "<kind>/<id>".
	PrefixTopo = Root + "topo/"
	// PrefixState holds agent-owned runtime state under agent leases:
	// PrefixState + "<kind>/<id>" for hosts, bindings and MACs.
	PrefixState = Root + "state/"
	// PrefixIndex holds uniqueness guards written in the same transaction
	// as the objects they guard, each valued with its owner's ID:
	// "ip/<network>/<addr>" (port, or "dhcp:<subnet>" for a subnet's DHCP
	// server address), "mac/<network>/<mac>", "tunnelkey/<n>",
	// "netport/<network>/<port>", "iface/<host>/<interface>". The
	// translate package builds them.
	PrefixIndex = Root + "index/"
	// PrefixSeq holds counters: "tunnelkey", the last tunnel key allocated.
	PrefixSeq = Root + "seq/"
)

// TopoKey returns the etcd key of a topology object of kind k. Config
// kinds (bridge, port, subnet) live under PrefixTopo; runtime kinds (host,
// binding, mac) under PrefixState.
func TopoKey(k topology.Kind, id string) string {
	if k.IsState() {
		return PrefixState + k.String() + "/" + id
	}
	return PrefixTopo + k.String() + "/" + id
}

// APIKey returns the etcd key of an API object.
func APIKey(resource, id string) string { return PrefixAPI + resource + "/" + id }

// DecodeChange turns one etcd key (and value; nil for a delete) under
// PrefixTopo or PrefixState into a topology.Change. ok is false for keys
// that are not topology objects.
func DecodeChange(key string, value []byte) (c topology.Change, ok bool, err error) {
	var rest string
	switch {
	case strings.HasPrefix(key, PrefixTopo):
		rest = key[len(PrefixTopo):]
	case strings.HasPrefix(key, PrefixState):
		rest = key[len(PrefixState):]
	default:
		return c, false, nil
	}
	kind, id, found := strings.Cut(rest, "/")
	if !found {
		return c, false, nil
	}
	c.ID = id
	var v any
	switch kind {
	case "bridge":
		c.Kind = topology.KindBridge
		if value != nil {
			c.Bridge = new(topology.Bridge)
			v = c.Bridge
		}
	case "port":
		c.Kind = topology.KindPort
		if value != nil {
			c.Port = new(topology.Port)
			v = c.Port
		}
	case "subnet":
		c.Kind = topology.KindSubnet
		if value != nil {
			c.Subnet = new(topology.Subnet)
			v = c.Subnet
		}
	case "host":
		c.Kind = topology.KindHost
		if value != nil {
			c.Host = new(topology.Host)
			v = c.Host
		}
	case "binding":
		c.Kind = topology.KindPortBinding
		if value != nil {
			c.Binding = new(topology.PortBinding)
			v = c.Binding
		}
	case "mac":
		c.Kind = topology.KindMAC
		if value != nil {
			c.MAC = new(topology.MACEntry)
			v = c.MAC
		}
	case "router":
		c.Kind = topology.KindRouter
		if value != nil {
			c.Router = new(topology.Router)
			v = c.Router
		}
	case "chain":
		c.Kind = topology.KindChain
		if value != nil {
			c.Chain = new(topology.Chain)
			v = c.Chain
		}
	case "addrgroup":
		c.Kind = topology.KindAddrGroup
		if value != nil {
			c.AddrGroup = new(topology.IPAddrGroup)
			v = c.AddrGroup
		}
	case "floatingip":
		c.Kind = topology.KindFloatingIP
		if value != nil {
			c.FloatingIP = new(topology.FloatingIP)
			v = c.FloatingIP
		}
	case "uplink":
		c.Kind = topology.KindUplink
		if value != nil {
			c.Uplink = new(topology.Uplink)
			v = c.Uplink
		}
	case "arp":
		c.Kind = topology.KindARP
		if value != nil {
			c.ARP = new(topology.ARPEntry)
			v = c.ARP
		}
	default:
		return c, false, nil
	}
	if v != nil {
		if err := json.Unmarshal(value, v); err != nil {
			return topology.Change{}, false, fmt.Errorf("store: decoding %s: %w", key, err)
		}
	}
	return c, true, nil
}
