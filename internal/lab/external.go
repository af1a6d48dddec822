package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
)

// The outside namespace: the upstream router and "the internet" of the
// external network, wired to every gateway host. With Gateways [host3]:
//
//	┌ netns <prefix>out ─────────────────────────────────┐
//	│ lo     198.51.100.1/32        (Config.Internet)    │
//	│ br-ext 203.0.113.1/24         (the upstream router)│
//	│   └─ host3 ─┐   (one veth per gateway host)        │
//	└─────────────┼──────────────────────────────────────┘
//	┌ netns <prefix>host3 ─┐
//	│ ext0 ────────────────┘  hivenet agent --bridge-mappings physnet1:ext0
//	└──────────────────────┘
//
// The external network (router:external, flat, provider:physical_network
// physnet1, subnet ExternalCIDR with gateway ExternalGateway) is created
// through the API by CreateExternalNetwork; router gateways and floating
// IPs take their addresses from it, and the outside namespace reaches them
// on-link.

// outNS is the outside namespace's name.
func (l *Lab) outNS() string { return l.cfg.Prefix + "out" }

// OutsideNetns is the outside namespace ("" when the lab has no gateway).
func (l *Lab) OutsideNetns() string {
	if len(l.cfg.Gateways) == 0 {
		return ""
	}
	return l.outNS()
}

// Gateways returns the gateway hosts.
func (l *Lab) Gateways() []string { return slices.Clone(l.cfg.Gateways) }

// IsGateway reports whether host is wired to the outside namespace.
func (l *Lab) IsGateway(host string) bool { return slices.Contains(l.cfg.Gateways, host) }

// PhysNet is the external network's physical network name.
func (l *Lab) PhysNet() string { return l.cfg.PhysNet }

// ExternalCIDR is the external network's subnet.
func (l *Lab) ExternalCIDR() netip.Prefix { return l.cfg.ExternalCIDR }

// ExternalGateway is the upstream router's address on the external network,
// held by the outside namespace.
func (l *Lab) ExternalGateway() netip.Addr { return ExternalGateway(l.cfg.ExternalCIDR) }

// Internet is the address behind the upstream router (outside namespace's
// loopback).
func (l *Lab) Internet() netip.Addr { return l.cfg.Internet }

// addOutside builds the outside namespace and one veth per gateway host
// (UplinkIf in the host, the host's name in the outside bridge).
func (l *Lab) addOutside(ctx context.Context) error {
	if len(l.cfg.Gateways) == 0 {
		return nil
	}
	out := l.outNS()
	if err := addNetns(ctx, out); err != nil {
		return err
	}
	cidr := l.cfg.ExternalCIDR
	cmds := []string{
		"-n " + out + " link add br-ext type bridge",
		"-n " + out + " link set br-ext up",
		"-n " + out + " addr add " + l.ExternalGateway().String() + "/" + strconv.Itoa(cidr.Bits()) + " dev br-ext",
		"-n " + out + " addr add " + l.cfg.Internet.String() + "/32 dev lo",
	}
	for _, g := range l.cfg.Gateways {
		h, err := l.Host(g)
		if err != nil {
			return err
		}
		cmds = append(cmds,
			"link add "+UplinkIf+" netns "+h.Netns+" type veth peer "+h.Name+" netns "+out,
			"-n "+out+" link set "+h.Name+" master br-ext up",
			"-n "+h.Netns+" link set "+UplinkIf+" up",
		)
	}
	if err := ipBatch(ctx, cmds); err != nil {
		return fmt.Errorf("building the outside namespace: %w", err)
	}
	l.log.Info("outside up", "netns", out, "gateways", l.cfg.Gateways, "external", cidr, "internet", l.cfg.Internet)
	return nil
}

// ExternalNetwork is what CreateExternalNetwork made.
type ExternalNetwork struct {
	Network Network
	Subnet  Subnet
}

// CreateExternalNetwork creates, as admin, the lab's external network: flat
// on PhysNet, router:external, shared so every project can use it for
// router gateways and floating IPs, with subnet ExternalCIDR whose gateway
// is the outside namespace and whose allocation pool leaves the first 9
// addresses out (room for static addresses of the outside side).
func (l *Lab) CreateExternalNetwork(ctx context.Context, name string) (ExternalNetwork, error) {
	if len(l.cfg.Gateways) == 0 {
		return ExternalNetwork{}, fmt.Errorf("lab: no gateway hosts: the external network would have no uplink")
	}
	api := l.api()
	var out struct{ Network Network }
	body := map[string]any{"network": map[string]any{
		"name": name, "router:external": true, "shared": true,
		"provider:network_type": "flat", "provider:physical_network": l.cfg.PhysNet,
	}}
	if err := api.Do(ctx, http.MethodPost, "/v2.0/networks", body, &out); err != nil {
		return ExternalNetwork{}, fmt.Errorf("creating external network: %w", err)
	}
	cidr := l.cfg.ExternalCIDR
	last := addN(cidr.Addr(), uint32(1)<<(32-cidr.Bits())-2)
	no := false
	var sub struct{ Subnet Subnet }
	sbody := map[string]any{"subnet": map[string]any{
		"name": name + "-subnet", "network_id": out.Network.ID, "ip_version": 4,
		"cidr": cidr.String(), "gateway_ip": l.ExternalGateway().String(), "enable_dhcp": &no,
		"allocation_pools": []map[string]string{{"start": addN(cidr.Addr(), 10).String(), "end": last.String()}},
	}}
	if err := api.Do(ctx, http.MethodPost, "/v2.0/subnets", sbody, &sub); err != nil {
		return ExternalNetwork{}, fmt.Errorf("creating external subnet: %w", err)
	}
	return ExternalNetwork{Network: out.Network, Subnet: sub.Subnet}, nil
}
