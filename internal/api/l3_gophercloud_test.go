package api

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"hivenet/internal/topology"
)

// flatOpts adds the provider attributes of a flat network (gophercloud's
// provider package only speaks multi-segment "segments").
type flatOpts struct {
	networks.CreateOptsBuilder
	PhysNet string
}

func (o flatOpts) ToNetworkCreateMap() (map[string]any, error) {
	m, err := o.CreateOptsBuilder.ToNetworkCreateMap()
	if err != nil {
		return nil, err
	}
	n := m["network"].(map[string]any)
	n["provider:network_type"] = "flat"
	n["provider:physical_network"] = o.PhysNet
	return m, nil
}

type externalNetwork struct {
	networks.Network
	external.NetworkExternalExt
}

// providerAttrs are decoded apart: networks.Network's UnmarshalJSON,
// promoted through embedding, would swallow them.
type providerView struct {
	NetworkType string `json:"provider:network_type"`
	PhysNet     string `json:"provider:physical_network"`
}

// The OpenStack Go SDK drives routers, floating IPs, security groups and
// rules unchanged, and each write shows in the topology.
func TestGophercloudL3(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, sc := e.networkClient(adminTok), e.networkClient(tokA)

	// The admin creates the external network.
	var ext externalNetwork
	var prov providerView
	res := networks.Create(ctx, admin, flatOpts{
		CreateOptsBuilder: external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: gophercloud.Enabled},
		PhysNet:           "physnet1",
	})
	if err := res.ExtractInto(&ext); err != nil {
		t.Fatalf("create external network: %v", err)
	}
	if err := res.ExtractIntoStructPtr(&prov, "network"); err != nil {
		t.Fatal(err)
	}
	if !ext.External || prov.NetworkType != "flat" || prov.PhysNet != "physnet1" {
		t.Fatalf("external network = %+v %+v", ext, prov)
	}
	gw := "203.0.113.1"
	extSub, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: ext.ID, CIDR: "203.0.113.0/24", IPVersion: gophercloud.IPv4, GatewayIP: &gw, EnableDHCP: gophercloud.Disabled}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	// Members see external networks (to pick one for a gateway).
	pages, err := networks.List(sc, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: gophercloud.Enabled}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := networks.ExtractNetworks(pages); len(all) != 1 || all[0].ID != ext.ID {
		t.Errorf("member's external networks = %+v", all)
	}

	// A tenant network, a router with a gateway and an interface.
	n, err := networks.Create(ctx, sc, networks.CreateOpts{Name: "private"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.0.0.0/24", IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r, err := routers.Create(ctx, sc, routers.CreateOpts{Name: "r1", GatewayInfo: &routers.GatewayInfo{NetworkID: ext.ID}}).Extract()
	if err != nil {
		t.Fatalf("routers.Create: %v", err)
	}
	if r.Status != "ACTIVE" || r.GatewayInfo.NetworkID != ext.ID || r.GatewayInfo.EnableSNAT == nil || !*r.GatewayInfo.EnableSNAT ||
		len(r.GatewayInfo.ExternalFixedIPs) != 1 || r.GatewayInfo.ExternalFixedIPs[0].SubnetID != extSub.ID || r.ProjectID != "project-a" {
		t.Fatalf("router = %+v", r)
	}
	gwAddr := r.GatewayInfo.ExternalFixedIPs[0].IPAddress
	iface, err := routers.AddInterface(ctx, sc, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract()
	if err != nil {
		t.Fatalf("AddInterface: %v", err)
	}
	if iface.ID != r.ID || iface.SubnetID != sub.ID || iface.PortID == "" || iface.TenantID != "project-a" {
		t.Errorf("interface = %+v", iface)
	}
	rp, err := ports.Get(ctx, sc, iface.PortID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rp.DeviceOwner != "network:router_interface" || rp.DeviceID != r.ID || rp.FixedIPs[0].IPAddress != "10.0.0.1" {
		t.Errorf("interface port = %+v", rp)
	}
	routes := []routers.Route{{DestinationCIDR: "192.168.0.0/16", NextHop: "10.0.0.254"}}
	r, err = routers.Update(ctx, sc, r.ID, routers.UpdateOpts{Routes: &routes}).Extract()
	if err != nil || len(r.Routes) != 1 || r.Routes[0].NextHop != "10.0.0.254" {
		t.Fatalf("routers.Update routes = %+v, %v", r, err)
	}

	// Security groups: the default group exists on first list.
	gpages, err := groups.List(sc, groups.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := groups.ExtractGroups(gpages)
	if len(all) != 1 || all[0].Name != "default" || len(all[0].Rules) != 4 {
		t.Fatalf("groups = %+v", all)
	}
	def := all[0]
	web, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "web", Description: "http"}).Extract()
	if err != nil {
		t.Fatalf("groups.Create: %v", err)
	}
	if len(web.Rules) != 2 {
		t.Errorf("new group rules = %+v, want the two egress rules", web.Rules)
	}
	rule, err := rules.Create(ctx, sc, rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: web.ID,
		Protocol: rules.ProtocolTCP, PortRangeMin: 80, PortRangeMax: 80, RemoteIPPrefix: "198.51.100.0/24"}).Extract()
	if err != nil {
		t.Fatalf("rules.Create: %v", err)
	}
	if rule.Protocol != "tcp" || rule.PortRangeMin != 80 || rule.RemoteIPPrefix != "198.51.100.0/24" || rule.SecGroupID != web.ID {
		t.Errorf("rule = %+v", rule)
	}
	if got, err := rules.Get(ctx, sc, rule.ID).Extract(); err != nil || got.ID != rule.ID {
		t.Errorf("rules.Get = %+v, %v", got, err)
	}
	name := "web2"
	if g, err := groups.Update(ctx, sc, web.ID, groups.UpdateOpts{Name: name}).Extract(); err != nil || g.Name != name {
		t.Errorf("groups.Update = %+v, %v", g, err)
	}

	// A VM port in both groups, with a floating IP.
	vm, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: n.ID, Name: "vm1", SecurityGroups: &[]string{def.ID, web.ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	fip, err := floatingips.Create(ctx, sc, floatingips.CreateOpts{FloatingNetworkID: ext.ID, PortID: vm.ID}).Extract()
	if err != nil {
		t.Fatalf("floatingips.Create: %v", err)
	}
	if fip.Status != "ACTIVE" || fip.RouterID != r.ID || fip.PortID != vm.ID || fip.FixedIP != vm.FixedIPs[0].IPAddress || fip.FloatingIP == "" {
		t.Errorf("floating IP = %+v", fip)
	}

	snap, _, err := e.st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := snap.Router(r.ID)
	if tr == nil || !tr.SNAT || tr.SNATAddr != netip.MustParseAddr(gwAddr) || tr.DefaultNextHop != netip.MustParseAddr(gw) || len(tr.Routes) != 1 {
		t.Fatalf("topology router = %+v", tr)
	}
	if rps := snap.RouterPorts(r.ID); len(rps) != 2 {
		t.Errorf("router ports = %d, want interface and gateway", len(rps))
	}
	if b := snap.ExternalBridge("physnet1"); b == nil || b.ID != ext.ID || !b.External {
		t.Errorf("external bridge = %+v", b)
	}
	tvm := snap.Port(vm.ID)
	in, out := snap.Chain(tvm.InboundChain), snap.Chain(tvm.OutboundChain)
	if in == nil || out == nil || in.Default != topology.RuleDrop {
		t.Fatalf("chains of %+v: %+v %+v", tvm, in, out)
	}
	if !slices.ContainsFunc(in.Rules, func(x topology.Rule) bool { return x.Action == topology.RuleJump && x.JumpChain == "sg-in-"+web.ID }) {
		t.Errorf("inbound chain does not jump to web's ingress chain: %+v", in.Rules)
	}
	webIn := snap.Chain("sg-in-" + web.ID)
	if webIn == nil || !slices.ContainsFunc(webIn.Rules, func(x topology.Rule) bool {
		return x.ID == rule.ID && x.DstPorts.Min == 80 && x.Comment == "sg web2 rule "+rule.ID[:8]
	}) {
		t.Errorf("web's ingress chain lacks the port-80 rule: %+v", webIn)
	}
	vmAddr := netip.MustParseAddr(vm.FixedIPs[0].IPAddress)
	if !snap.InAddrGroup(def.ID, vmAddr) || !snap.InAddrGroup(web.ID, vmAddr) {
		t.Errorf("address groups miss %s", vmAddr)
	}
	if f := snap.FloatingIPByAddr(netip.MustParseAddr(fip.FloatingIP)); f == nil || f.PortID != vm.ID || f.RouterID != r.ID || f.FixedIP != vmAddr {
		t.Errorf("topology floating IP = %+v", f)
	}

	// Disassociate, re-associate to another port, delete.
	empty := ""
	fip, err = floatingips.Update(ctx, sc, fip.ID, floatingips.UpdateOpts{PortID: &empty}).Extract()
	if err != nil || fip.Status != "DOWN" || fip.PortID != "" || fip.RouterID != "" {
		t.Fatalf("disassociate = %+v, %v", fip, err)
	}
	vm2, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: n.ID, Name: "vm2"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	fip, err = floatingips.Update(ctx, sc, fip.ID, floatingips.UpdateOpts{PortID: &vm2.ID}).Extract()
	if err != nil || fip.Status != "ACTIVE" || fip.PortID != vm2.ID {
		t.Fatalf("re-associate = %+v, %v", fip, err)
	}
	fpages, err := floatingips.List(sc, floatingips.ListOpts{PortID: vm2.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := floatingips.ExtractFloatingIPs(fpages); len(l) != 1 || l[0].ID != fip.ID {
		t.Errorf("floating IPs of vm2 = %+v", l)
	}
	checkConsistency(t, e.dump())

	// Tear down in Neutron's order.
	if err := floatingips.Delete(ctx, sc, fip.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := rules.Delete(ctx, sc, rule.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := routers.Delete(ctx, sc, r.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Errorf("delete router with an interface = %v, want 409", err)
	}
	if _, err := routers.RemoveInterface(ctx, sc, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Errorf("remove interface a route needs = %v, want 409", err)
	}
	none := []routers.Route{}
	if _, err := routers.Update(ctx, sc, r.ID, routers.UpdateOpts{Routes: &none}).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := routers.RemoveInterface(ctx, sc, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract(); err != nil {
		t.Fatalf("RemoveInterface: %v", err)
	}
	if err := routers.Delete(ctx, sc, r.ID).ExtractErr(); err != nil {
		t.Fatalf("routers.Delete: %v", err)
	}
	for _, p := range []string{vm.ID, vm2.ID} {
		if err := ports.Delete(ctx, sc, p).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := groups.Delete(ctx, sc, web.ID).ExtractErr(); err != nil {
		t.Fatalf("groups.Delete: %v", err)
	}
	if err := groups.Delete(ctx, sc, def.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Errorf("member deletes default group = %v, want 409", err)
	}
	checkConsistency(t, e.dump())
	snap, _, _ = e.st.LoadTopology(ctx)
	if snap.Router(r.ID) != nil || len(snap.RouterPorts(r.ID)) != 0 {
		t.Error("router left in the topology")
	}
}
