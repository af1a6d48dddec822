package topology

import (
	"maps"
	"net/netip"
	"slices"
)

// Kind names a class of topology object (and its etcd key space).
type Kind uint8

const (
	KindBridge Kind = iota + 1
	KindPort
	KindSubnet
	KindHost
	KindPortBinding
	KindMAC
)

var kindNames = [...]string{"", "bridge", "port", "subnet", "host", "binding", "mac"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Change is one object put or deleted. Exactly one of the pointers that
// matches Kind is set for a put; all are nil for a delete. ID is the
// object's key within its kind (for MAC entries, MACEntry.ID()).
type Change struct {
	Kind    Kind
	ID      string
	Bridge  *Bridge
	Port    *Port
	Subnet  *Subnet
	Host    *Host
	Binding *PortBinding
	MAC     *MACEntry
}

// Tag names something a flow depends on. Apply returns the tags of what
// changed; a flow table drops every flow carrying one of them.
type Tag uint64

// FNV-1a (64 bit) parameters.
const (
	offset64 = 14695981039346656037
	prime64  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * prime64
	}
	return h
}

// tag hashes kind and parts with FNV-1a, a zero byte between parts. It
// allocates nothing: it runs on every simulation.
func tag(kind string, parts ...string) Tag {
	h := hashString(offset64, kind)
	for _, p := range parts {
		h = hashString(h*prime64, p) // h*prime64 hashes the zero separator
	}
	return Tag(h)
}

// TagPort covers everything about one port: its config, its binding and
// the host it is bound on.
func TagPort(id string) Tag { return tag("port", id) }

// TagBridge covers a bridge's own config (admin state, MTU).
func TagBridge(id string) Tag { return tag("bridge", id) }

// TagFlood covers the flood set of a bridge: which ports it has where.
func TagFlood(bridgeID string) Tag { return tag("flood", bridgeID) }

// TagMAC covers the destination lookup of one MAC on one bridge.
func TagMAC(bridgeID string, m MAC) Tag {
	h := hashString(hashString(offset64, "mac")*prime64, bridgeID) * prime64
	for _, b := range m {
		h = (h ^ uint64(b)) * prime64
	}
	return Tag(h)
}

// TagHost covers a host's tunnel endpoint.
func TagHost(name string) Tag { return tag("host", name) }

// TagSubnet covers a subnet's addressing and DHCP settings.
func TagSubnet(id string) Tag { return tag("subnet", id) }

type bridgeMAC struct {
	bridge string
	mac    MAC
}

type bridgeIP struct {
	bridge string
	ip     netip.Addr
}

// Snapshot is an immutable view of the whole topology. The zero value is
// not usable; start from Empty. All returned pointers are shared and must
// not be modified.
type Snapshot struct {
	// Rev is the store revision this snapshot reflects (set by the caller).
	Rev int64

	bridges  map[string]*Bridge
	ports    map[string]*Port
	subnets  map[string]*Subnet
	hosts    map[string]*Host
	bindings map[string]*PortBinding
	macs     map[bridgeMAC]*MACEntry

	// Derived indexes, rebuilt by Apply for the kinds that changed.
	portByKey     map[uint32]*Port
	bridgeByFlood map[uint32]*Bridge
	portByMAC     map[bridgeMAC]*Port // configured MACs (own and address pairs)
	portByIP      map[bridgeIP]*Port  // fixed IPs (for ARP suppression)
	portsOfBridge map[string][]*Port  // sorted by ID
	subnetsOf     map[string][]*Subnet
}

// Empty returns a snapshot with no objects.
func Empty() *Snapshot {
	s := &Snapshot{
		bridges:  map[string]*Bridge{},
		ports:    map[string]*Port{},
		subnets:  map[string]*Subnet{},
		hosts:    map[string]*Host{},
		bindings: map[string]*PortBinding{},
		macs:     map[bridgeMAC]*MACEntry{},
	}
	s.reindexPorts()
	s.reindexBridges()
	s.reindexSubnets()
	return s
}

// Apply returns a new snapshot with changes applied in order, and the tags
// of everything that changed. s is not modified.
func (s *Snapshot) Apply(changes []Change) (*Snapshot, []Tag) {
	n := *s
	var tags []Tag
	var dirtyPorts, dirtyBridges, dirtySubnets bool
	cloned := map[Kind]bool{}
	clone := func(k Kind) {
		if cloned[k] {
			return
		}
		cloned[k] = true
		switch k {
		case KindBridge:
			n.bridges = maps.Clone(n.bridges)
		case KindPort:
			n.ports = maps.Clone(n.ports)
		case KindSubnet:
			n.subnets = maps.Clone(n.subnets)
		case KindHost:
			n.hosts = maps.Clone(n.hosts)
		case KindPortBinding:
			n.bindings = maps.Clone(n.bindings)
		case KindMAC:
			n.macs = maps.Clone(n.macs)
		}
	}
	for _, c := range changes {
		clone(c.Kind)
		switch c.Kind {
		case KindBridge:
			tags = append(tags, TagBridge(c.ID), TagFlood(c.ID))
			if c.Bridge != nil {
				n.bridges[c.ID] = c.Bridge
			} else {
				delete(n.bridges, c.ID)
			}
			dirtyBridges = true
		case KindPort:
			if old := n.ports[c.ID]; old != nil {
				tags = append(tags, portTags(old)...)
			}
			if c.Port != nil {
				n.ports[c.ID] = c.Port
				tags = append(tags, portTags(c.Port)...)
			} else {
				delete(n.ports, c.ID)
			}
			tags = append(tags, TagPort(c.ID))
			dirtyPorts = true
		case KindSubnet:
			tags = append(tags, TagSubnet(c.ID))
			if c.Subnet != nil {
				n.subnets[c.ID] = c.Subnet
			} else {
				delete(n.subnets, c.ID)
			}
			dirtySubnets = true
		case KindHost:
			tags = append(tags, TagHost(c.ID))
			if c.Host != nil {
				n.hosts[c.ID] = c.Host
			} else {
				delete(n.hosts, c.ID)
			}
		case KindPortBinding:
			tags = append(tags, TagPort(c.ID))
			if p := n.ports[c.ID]; p != nil {
				tags = append(tags, TagFlood(p.BridgeID))
			}
			if c.Binding != nil {
				n.bindings[c.ID] = c.Binding
			} else {
				delete(n.bindings, c.ID)
			}
		case KindMAC:
			var k bridgeMAC
			if old := s.macByID(c.ID); old != nil {
				k = bridgeMAC{old.BridgeID, old.MAC}
				delete(n.macs, k)
				tags = append(tags, TagMAC(old.BridgeID, old.MAC))
			}
			if c.MAC != nil {
				n.macs[bridgeMAC{c.MAC.BridgeID, c.MAC.MAC}] = c.MAC
				tags = append(tags, TagMAC(c.MAC.BridgeID, c.MAC.MAC))
			}
		}
	}
	if dirtyPorts {
		n.reindexPorts()
	}
	if dirtyBridges {
		n.reindexBridges()
	}
	if dirtySubnets {
		n.reindexSubnets()
	}
	return &n, dedupTags(tags)
}

func (s *Snapshot) macByID(id string) *MACEntry {
	// id is "bridge/mac"; the MAC is the last 17 characters.
	if len(id) < 18 {
		return nil
	}
	m, err := ParseMAC(id[len(id)-17:])
	if err != nil {
		return nil
	}
	return s.macs[bridgeMAC{id[:len(id)-18], m}]
}

func portTags(p *Port) []Tag {
	t := []Tag{TagFlood(p.BridgeID), TagMAC(p.BridgeID, p.MAC)}
	for _, ap := range p.AllowedAddressPairs {
		if ap.MAC != (MAC{}) {
			t = append(t, TagMAC(p.BridgeID, ap.MAC))
		}
	}
	return t
}

func dedupTags(t []Tag) []Tag {
	slices.Sort(t)
	return slices.Compact(t)
}

func (s *Snapshot) reindexPorts() {
	s.portByKey = make(map[uint32]*Port, len(s.ports))
	s.portByMAC = make(map[bridgeMAC]*Port, len(s.ports))
	s.portByIP = make(map[bridgeIP]*Port, len(s.ports))
	s.portsOfBridge = map[string][]*Port{}
	for _, p := range s.ports {
		s.portByKey[p.TunnelKey] = p
		s.portByMAC[bridgeMAC{p.BridgeID, p.MAC}] = p
		for _, ap := range p.AllowedAddressPairs {
			if ap.MAC != (MAC{}) {
				s.portByMAC[bridgeMAC{p.BridgeID, ap.MAC}] = p
			}
		}
		for _, ip := range p.FixedIPs {
			s.portByIP[bridgeIP{p.BridgeID, ip.Addr}] = p
		}
		s.portsOfBridge[p.BridgeID] = append(s.portsOfBridge[p.BridgeID], p)
	}
	for _, ps := range s.portsOfBridge {
		slices.SortFunc(ps, func(a, b *Port) int { return cmpString(a.ID, b.ID) })
	}
}

func (s *Snapshot) reindexBridges() {
	s.bridgeByFlood = make(map[uint32]*Bridge, len(s.bridges))
	for _, b := range s.bridges {
		s.bridgeByFlood[b.FloodKey] = b
	}
}

func (s *Snapshot) reindexSubnets() {
	s.subnetsOf = map[string][]*Subnet{}
	for _, sn := range s.subnets {
		s.subnetsOf[sn.BridgeID] = append(s.subnetsOf[sn.BridgeID], sn)
	}
	for _, l := range s.subnetsOf {
		slices.SortFunc(l, func(a, b *Subnet) int { return cmpString(a.ID, b.ID) })
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Bridge returns the bridge with id, or nil.
func (s *Snapshot) Bridge(id string) *Bridge { return s.bridges[id] }

// Port returns the port with id, or nil.
func (s *Snapshot) Port(id string) *Port { return s.ports[id] }

// Subnet returns the subnet with id, or nil.
func (s *Snapshot) Subnet(id string) *Subnet { return s.subnets[id] }

// Host returns the live host named name, or nil.
func (s *Snapshot) Host(name string) *Host { return s.hosts[name] }

// Binding returns where port id is bound (active), or nil.
func (s *Snapshot) Binding(portID string) *PortBinding { return s.bindings[portID] }

// PortByTunnelKey returns the port whose tunnel key is key, or nil.
func (s *Snapshot) PortByTunnelKey(key uint32) *Port { return s.portByKey[key] }

// BridgeByFloodKey returns the bridge whose flood key is key, or nil.
func (s *Snapshot) BridgeByFloodKey(key uint32) *Bridge { return s.bridgeByFlood[key] }

// PortByMAC returns the port configured with MAC m (its own MAC or an
// allowed address pair's) on bridge, or nil.
func (s *Snapshot) PortByMAC(bridge string, m MAC) *Port { return s.portByMAC[bridgeMAC{bridge, m}] }

// LearnedMAC returns the learned entry for m on bridge, or nil.
func (s *Snapshot) LearnedMAC(bridge string, m MAC) *MACEntry { return s.macs[bridgeMAC{bridge, m}] }

// PortByIP returns the port with fixed IP ip on bridge, or nil.
func (s *Snapshot) PortByIP(bridge string, ip netip.Addr) *Port {
	return s.portByIP[bridgeIP{bridge, ip}]
}

// PortsOfBridge returns the ports on bridge, sorted by ID. Do not modify.
func (s *Snapshot) PortsOfBridge(bridge string) []*Port { return s.portsOfBridge[bridge] }

// SubnetsOfBridge returns the subnets on bridge, sorted by ID. Do not modify.
func (s *Snapshot) SubnetsOfBridge(bridge string) []*Subnet { return s.subnetsOf[bridge] }

// Ports calls f for every port, in no particular order.
func (s *Snapshot) Ports(f func(*Port)) {
	for _, p := range s.ports {
		f(p)
	}
}

// Hosts calls f for every live host, in no particular order.
func (s *Snapshot) Hosts(f func(*Host)) {
	for _, h := range s.hosts {
		f(h)
	}
}

// Bridges calls f for every bridge, in no particular order.
func (s *Snapshot) Bridges(f func(*Bridge)) {
	for _, b := range s.bridges {
		f(b)
	}
}

// PortHost returns the live host port id is active on, or nil when the
// port is not bound or its host is gone.
func (s *Snapshot) PortHost(portID string) *Host {
	b := s.bindings[portID]
	if b == nil {
		return nil
	}
	return s.hosts[b.Host]
}

// FloodHosts returns the names of the live hosts, other than local, that
// have at least one active port on bridge, sorted.
func (s *Snapshot) FloodHosts(bridge, local string) []string {
	var out []string
	for _, p := range s.portsOfBridge[bridge] {
		b := s.bindings[p.ID]
		if b == nil || b.Host == local || s.hosts[b.Host] == nil {
			continue
		}
		if !slices.Contains(out, b.Host) {
			out = append(out, b.Host)
		}
	}
	slices.Sort(out)
	return out
}
