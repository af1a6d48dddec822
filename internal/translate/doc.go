// Package translate turns the OpenStack Networking objects the API accepts
// (Network, Subnet, Port, Router, FloatingIP, SecurityGroup and its rules:
// the wire shape, also what is stored under store.PrefixAPI) into the
// low-level topology objects agents execute (topology.Bridge, Subnet,
// Port, Router, FloatingIP, Chain, IPAddrGroup) and the index keys that
// keep addresses, MACs and tunnel keys unique and make memberships
// (router ports, group members, floating IP associations) one range
// read. It also holds the pure parts of validation and allocation: subnet
// defaults and checks, security group rule checks, the first free address
// of a subnet, the next tunnel key.
//
// It performs no I/O and draws no random numbers: the api package reads
// the store, supplies randomness (MAC addresses) and commits the result.
//
//	br := translate.Bridge(&network)
//	sn, err := translate.TopoSubnet(&subnet)
//	idx := translate.PortIndexes(&port) // under store.PrefixIndex
//	in, out := translate.PortChains(&port) // jump to each group's chains
//	ingress, egress, err := translate.GroupChains(&group)
package translate
