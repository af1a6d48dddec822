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
	KindRouter
	KindChain
	KindAddrGroup
	KindFloatingIP
	KindUplink
	KindARP
)

var kindNames = [...]string{"", "bridge", "port", "subnet", "host", "binding", "mac",
	"router", "chain", "addrgroup", "floatingip", "uplink", "arp"}

// IsState reports whether objects of kind k are runtime state owned by
// agents (under their leases) rather than configuration.
func (k Kind) IsState() bool {
	switch k {
	case KindHost, KindPortBinding, KindMAC, KindUplink, KindARP:
		return true
	}
	return false
}

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

	Router     *Router
	Chain      *Chain
	AddrGroup  *IPAddrGroup
	FloatingIP *FloatingIP
	Uplink     *Uplink
	ARP        *ARPEntry
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

// TagRouter covers a router: its config, routes, ports, NAT (gateway,
// SNAT, floating IPs).
func TagRouter(id string) Tag { return tag("router", id) }

// TagChain covers a chain's rules.
func TagChain(id string) Tag { return tag("chain", id) }

// TagAddrGroup covers an address group's membership.
func TagAddrGroup(id string) Tag { return tag("addrgroup", id) }

// TagUplinks covers the set of uplinks of a physical network.
func TagUplinks(physnet string) Tag { return tag("uplinks", physnet) }

// TagARP covers the resolution of ip on bridge.
func TagARP(bridgeID string, ip netip.Addr) Tag {
	b := ip.As16()
	h := hashString(hashString(offset64, "arp")*prime64, bridgeID) * prime64
	for _, x := range b {
		h = (h ^ uint64(x)) * prime64
	}
	return Tag(h)
}

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

	routers    map[string]*Router
	chains     map[string]*Chain
	addrGroups map[string]*addrGroup
	fips       map[string]*FloatingIP
	uplinks    map[string]*Uplink
	arps       map[bridgeIP]*ARPEntry

	// Derived indexes, rebuilt by Apply for the kinds that changed.
	portByKey     map[uint32]*Port
	bridgeByFlood map[uint32]*Bridge
	portByMAC     map[bridgeMAC]*Port // configured MACs (own and address pairs)
	portByIP      map[bridgeIP]*Port  // fixed IPs (for ARP suppression)
	portsOfBridge map[string][]*Port  // sorted by ID
	subnetsOf     map[string][]*Subnet
	routerPorts   map[string][]*Port // ports with RouterID, sorted by ID
	bridgeByPhys  map[string]*Bridge // external bridges by physnet
	fipByAddr     map[netip.Addr]*FloatingIP
	fipByFixed    map[routerIP]*FloatingIP // associated floating IPs by (router, fixed IP)
	uplinksOf     map[string][]*Uplink     // by physnet, sorted by host
	uplinkByKey   map[uint32]*Uplink
}

type routerIP struct {
	router string
	ip     netip.Addr
}

// addrGroup is an IPAddrGroup with a set for membership tests.
type addrGroup struct {
	g   *IPAddrGroup
	set map[netip.Addr]struct{}
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

		routers:    map[string]*Router{},
		chains:     map[string]*Chain{},
		addrGroups: map[string]*addrGroup{},
		fips:       map[string]*FloatingIP{},
		uplinks:    map[string]*Uplink{},
		arps:       map[bridgeIP]*ARPEntry{},
	}
	s.reindexPorts()
	s.reindexFIPs()
	s.reindexUplinks()
	s.reindexBridges()
	s.reindexSubnets()
	return s
}

// Apply returns a new snapshot with changes applied in order, and the tags
// of everything that changed. s is not modified.
func (s *Snapshot) Apply(changes []Change) (*Snapshot, []Tag) {
	n := *s
	var tags []Tag
	var dirtyPorts, dirtyBridges, dirtySubnets, dirtyFIPs, dirtyUplinks bool
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
		case KindRouter:
			n.routers = maps.Clone(n.routers)
		case KindChain:
			n.chains = maps.Clone(n.chains)
		case KindAddrGroup:
			n.addrGroups = maps.Clone(n.addrGroups)
		case KindFloatingIP:
			n.fips = maps.Clone(n.fips)
		case KindUplink:
			n.uplinks = maps.Clone(n.uplinks)
		case KindARP:
			n.arps = maps.Clone(n.arps)
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
		case KindRouter:
			tags = append(tags, TagRouter(c.ID))
			if c.Router != nil {
				n.routers[c.ID] = c.Router
			} else {
				delete(n.routers, c.ID)
			}
		case KindChain:
			tags = append(tags, TagChain(c.ID))
			if c.Chain != nil {
				n.chains[c.ID] = c.Chain
			} else {
				delete(n.chains, c.ID)
			}
		case KindAddrGroup:
			tags = append(tags, TagAddrGroup(c.ID))
			if c.AddrGroup != nil {
				g := &addrGroup{g: c.AddrGroup, set: make(map[netip.Addr]struct{}, len(c.AddrGroup.Addrs))}
				for _, a := range c.AddrGroup.Addrs {
					g.set[a] = struct{}{}
				}
				n.addrGroups[c.ID] = g
			} else {
				delete(n.addrGroups, c.ID)
			}
		case KindFloatingIP:
			if old := n.fips[c.ID]; old != nil && old.RouterID != "" {
				tags = append(tags, TagRouter(old.RouterID))
			}
			if c.FloatingIP != nil {
				n.fips[c.ID] = c.FloatingIP
				if c.FloatingIP.RouterID != "" {
					tags = append(tags, TagRouter(c.FloatingIP.RouterID))
				}
			} else {
				delete(n.fips, c.ID)
			}
			dirtyFIPs = true
		case KindUplink:
			if old := n.uplinks[c.ID]; old != nil {
				tags = append(tags, TagUplinks(old.PhysNet))
			}
			if c.Uplink != nil {
				n.uplinks[c.ID] = c.Uplink
				tags = append(tags, TagUplinks(c.Uplink.PhysNet))
			} else {
				delete(n.uplinks, c.ID)
			}
			dirtyUplinks = true
		case KindARP:
			if old := s.arpByID(c.ID); old != nil {
				delete(n.arps, bridgeIP{old.BridgeID, old.IP})
				tags = append(tags, TagARP(old.BridgeID, old.IP))
			}
			if c.ARP != nil {
				n.arps[bridgeIP{c.ARP.BridgeID, c.ARP.IP}] = c.ARP
				tags = append(tags, TagARP(c.ARP.BridgeID, c.ARP.IP))
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
	if dirtyFIPs {
		n.reindexFIPs()
	}
	if dirtyUplinks {
		n.reindexUplinks()
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

func (s *Snapshot) arpByID(id string) *ARPEntry {
	i := len(id) - 1
	for i >= 0 && id[i] != '/' {
		i--
	}
	if i < 0 {
		return nil
	}
	ip, err := netip.ParseAddr(id[i+1:])
	if err != nil {
		return nil
	}
	return s.arps[bridgeIP{id[:i], ip}]
}

func portTags(p *Port) []Tag {
	t := []Tag{TagFlood(p.BridgeID), TagMAC(p.BridgeID, p.MAC)}
	if p.RouterID != "" {
		t = append(t, TagRouter(p.RouterID))
	}
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
	s.routerPorts = map[string][]*Port{}
	for _, p := range s.ports {
		if p.RouterID != "" {
			s.routerPorts[p.RouterID] = append(s.routerPorts[p.RouterID], p)
		}
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
	for _, ps := range s.routerPorts {
		slices.SortFunc(ps, func(a, b *Port) int { return cmpString(a.ID, b.ID) })
	}
}

func (s *Snapshot) reindexFIPs() {
	s.fipByAddr = make(map[netip.Addr]*FloatingIP, len(s.fips))
	s.fipByFixed = make(map[routerIP]*FloatingIP, len(s.fips))
	for _, f := range s.fips {
		s.fipByAddr[f.Addr] = f
		if f.RouterID != "" && f.PortID != "" && f.FixedIP.IsValid() {
			s.fipByFixed[routerIP{f.RouterID, f.FixedIP}] = f
		}
	}
}

func (s *Snapshot) reindexUplinks() {
	s.uplinksOf = map[string][]*Uplink{}
	s.uplinkByKey = make(map[uint32]*Uplink, len(s.uplinks))
	for _, u := range s.uplinks {
		s.uplinksOf[u.PhysNet] = append(s.uplinksOf[u.PhysNet], u)
		s.uplinkByKey[u.TunnelKey] = u
	}
	for _, l := range s.uplinksOf {
		slices.SortFunc(l, func(a, b *Uplink) int { return cmpString(a.Host, b.Host) })
	}
}

func (s *Snapshot) reindexBridges() {
	s.bridgeByFlood = make(map[uint32]*Bridge, len(s.bridges))
	s.bridgeByPhys = map[string]*Bridge{}
	for _, b := range s.bridges {
		s.bridgeByFlood[b.FloodKey] = b
		if b.External && b.PhysNet != "" {
			if old := s.bridgeByPhys[b.PhysNet]; old == nil || b.ID < old.ID {
				s.bridgeByPhys[b.PhysNet] = b
			}
		}
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

// Router returns the router with id, or nil.
func (s *Snapshot) Router(id string) *Router { return s.routers[id] }

// RouterPorts returns the interior ports of router id, sorted by ID. Do
// not modify.
func (s *Snapshot) RouterPorts(id string) []*Port { return s.routerPorts[id] }

// Routers calls f for every router, in no particular order.
func (s *Snapshot) Routers(f func(*Router)) {
	for _, r := range s.routers {
		f(r)
	}
}

// Chain returns the chain with id, or nil.
func (s *Snapshot) Chain(id string) *Chain { return s.chains[id] }

// AddrGroup returns the address group with id, or nil.
func (s *Snapshot) AddrGroup(id string) *IPAddrGroup {
	if g := s.addrGroups[id]; g != nil {
		return g.g
	}
	return nil
}

// InAddrGroup reports whether ip is a member of address group id.
func (s *Snapshot) InAddrGroup(id string, ip netip.Addr) bool {
	g := s.addrGroups[id]
	if g == nil {
		return false
	}
	_, ok := g.set[ip]
	return ok
}

// FloatingIP returns the floating IP with id, or nil.
func (s *Snapshot) FloatingIP(id string) *FloatingIP { return s.fips[id] }

// FloatingIPByAddr returns the floating IP whose external address is a.
func (s *Snapshot) FloatingIPByAddr(a netip.Addr) *FloatingIP { return s.fipByAddr[a] }

// FloatingIPOf returns the floating IP router maps to fixed address ip,
// or nil.
func (s *Snapshot) FloatingIPOf(router string, ip netip.Addr) *FloatingIP {
	return s.fipByFixed[routerIP{router, ip}]
}

// ExternalBridge returns the external bridge on physical network physnet.
func (s *Snapshot) ExternalBridge(physnet string) *Bridge { return s.bridgeByPhys[physnet] }

// Uplinks returns the live uplinks of physical network physnet, sorted by
// host. Do not modify.
func (s *Snapshot) Uplinks(physnet string) []*Uplink { return s.uplinksOf[physnet] }

// Uplink returns the uplink with id (Uplink.ID()), or nil.
func (s *Snapshot) Uplink(id string) *Uplink { return s.uplinks[id] }

// UplinkByTunnelKey returns the uplink whose tunnel key is key, or nil.
func (s *Snapshot) UplinkByTunnelKey(key uint32) *Uplink { return s.uplinkByKey[key] }

// ARP returns the resolved MAC of ip on bridge, or nil.
func (s *Snapshot) ARP(bridge string, ip netip.Addr) *ARPEntry { return s.arps[bridgeIP{bridge, ip}] }
