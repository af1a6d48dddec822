package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// networkClient is a static-token gophercloud client for the test server,
// as an operator's existing tooling would build it.
func (e *testEnv) networkClient(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	pc.SetToken(token)
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: e.srv.URL + "/", ResourceBase: e.srv.URL + "/v2.0/", Type: "network"}
}

// hostListOpts adds a binding:host_id filter, as tooling that lists a
// hypervisor's ports does.
type hostListOpts struct {
	ports.ListOpts
	HostID string
}

func (o hostListOpts) ToPortListQuery() (string, error) {
	q, err := o.ListOpts.ToPortListQuery()
	if err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(q, "?") {
		sep = "&"
	}
	return q + sep + "binding%3Ahost_id=" + url.QueryEscape(o.HostID), nil
}

type portWithExt struct {
	ports.Port
	portsbinding.PortsBindingExt
	portsecurity.PortSecurityExt
}

type networkWithExt struct {
	networks.Network
	portsecurity.PortSecurityExt
}

// The real OpenStack Go SDK drives the whole life cycle unchanged.
func TestGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.networkClient(tokA)

	// Networks.
	var net networkWithExt
	err := networks.Create(ctx, sc, portsecurity.NetworkCreateOptsExt{
		CreateOptsBuilder:   networks.CreateOpts{Name: "tenant-net", AdminStateUp: gophercloud.Enabled},
		PortSecurityEnabled: gophercloud.Enabled,
	}).ExtractInto(&net)
	if err != nil {
		t.Fatalf("networks.Create: %v", err)
	}
	if net.Name != "tenant-net" || !net.AdminStateUp || net.Status != "ACTIVE" || net.ProjectID != "project-a" || !net.PortSecurityEnabled {
		t.Errorf("created network = %+v", net)
	}
	other, err := networks.Create(ctx, sc, networks.CreateOpts{Name: "other-net"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := networks.List(sc, networks.ListOpts{Name: "tenant-net"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("networks.List: %v", err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil || len(all) != 1 || all[0].ID != net.ID {
		t.Fatalf("networks.List(name=tenant-net) = %v, %v", all, err)
	}
	// Paginated listing through gophercloud's pager.
	pages, err = networks.List(sc, networks.ListOpts{Limit: 1, SortKey: "name", SortDir: "asc"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("networks.List(limit=1): %v", err)
	}
	if all, _ = networks.ExtractNetworks(pages); len(all) != 2 || all[0].Name != "other-net" || all[1].Name != "tenant-net" {
		t.Errorf("paged list = %v", all)
	}
	name := "renamed"
	upd, err := networks.Update(ctx, sc, net.ID, networks.UpdateOpts{Name: &name}).Extract()
	if err != nil || upd.Name != "renamed" {
		t.Fatalf("networks.Update = %+v, %v", upd, err)
	}
	got, err := networks.Get(ctx, sc, net.ID).Extract()
	if err != nil || got.Name != "renamed" {
		t.Fatalf("networks.Get = %+v, %v", got, err)
	}

	// Subnets.
	gw := "10.20.0.1"
	sub, err := subnets.Create(ctx, sc, subnets.CreateOpts{
		NetworkID: net.ID, CIDR: "10.20.0.0/24", IPVersion: gophercloud.IPv4, GatewayIP: &gw, Name: "tenant-sub",
		DNSNameservers:  []string{"10.20.0.53"},
		AllocationPools: []subnets.AllocationPool{{Start: "10.20.0.100", End: "10.20.0.200"}},
		HostRoutes:      []subnets.HostRoute{{DestinationCIDR: "192.168.0.0/16", NextHop: "10.20.0.254"}},
	}).Extract()
	if err != nil {
		t.Fatalf("subnets.Create: %v", err)
	}
	if sub.GatewayIP != gw || !sub.EnableDHCP || len(sub.AllocationPools) != 1 || sub.AllocationPools[0].Start != "10.20.0.100" || len(sub.HostRoutes) != 1 {
		t.Errorf("created subnet = %+v", sub)
	}
	noGW := ""
	sub2, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: other.ID, CIDR: "10.20.0.0/24", IPVersion: gophercloud.IPv4, GatewayIP: &noGW}).Extract()
	if err != nil || sub2.GatewayIP != "" {
		t.Fatalf("subnet without gateway = %+v, %v", sub2, err)
	}
	pages, err = subnets.List(sc, subnets.ListOpts{NetworkID: net.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if subs, _ := subnets.ExtractSubnets(pages); len(subs) != 1 || subs[0].ID != sub.ID {
		t.Errorf("subnets.List(network) = %v", subs)
	}
	subName := "renamed-sub"
	dns := []string{"10.20.0.54", "10.20.0.55"}
	if s, err := subnets.Update(ctx, sc, sub.ID, subnets.UpdateOpts{Name: &subName, DNSNameservers: &dns}).Extract(); err != nil || s.Name != subName || len(s.DNSNameservers) != 2 {
		t.Errorf("subnets.Update = %+v, %v", s, err)
	}
	if s, err := subnets.Get(ctx, sc, sub.ID).Extract(); err != nil || s.Name != subName {
		t.Errorf("subnets.Get = %+v, %v", s, err)
	}

	// Ports, with the binding and port-security extensions.
	// Binding is admin-only (Neutron's policy): the admin creates the
	// bound port in the tenant's project.
	var p portWithExt
	off := false
	admin := e.networkClient(adminTok)
	err = ports.Create(ctx, admin, portsecurity.PortCreateOptsExt{
		CreateOptsBuilder: portsbinding.CreateOptsExt{
			CreateOptsBuilder: ports.CreateOpts{NetworkID: net.ID, Name: "vm1-port", ProjectID: "project-a", AdminStateUp: gophercloud.Enabled,
				FixedIPs: []ports.IP{{SubnetID: sub.ID, IPAddress: "10.20.0.150"}}, DeviceID: "vm1", DeviceOwner: "compute:nova"},
			HostID:  "host1",
			Profile: map[string]any{"interface_name": "veth-vm1"},
		},
		PortSecurityEnabled: &off,
	}).ExtractInto(&p)
	if err != nil {
		t.Fatalf("ports.Create: %v", err)
	}
	if p.HostID != "host1" || p.Profile["interface_name"] != "veth-vm1" || p.VIFType != "ovs" || p.VNICType != "normal" ||
		p.PortSecurityEnabled || len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != "10.20.0.150" || p.Status != "DOWN" || p.MACAddress == "" {
		t.Errorf("created port = %+v", p)
	}
	p2, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: net.ID, Name: "vm2-port",
		AllowedAddressPairs: []ports.AddressPair{{IPAddress: "10.20.0.0/24"}}}).Extract()
	if err != nil {
		t.Fatalf("ports.Create vm2: %v", err)
	}
	if len(p2.FixedIPs) != 1 || p2.FixedIPs[0].IPAddress != "10.20.0.101" || len(p2.AllowedAddressPairs) != 1 || p2.AllowedAddressPairs[0].MACAddress != p2.MACAddress {
		t.Errorf("vm2 port = %+v (want .101: .100 is the DHCP server)", p2)
	}
	// Filters: by name, by fixed IP, by binding host.
	for _, tt := range []struct {
		name string
		opts ports.ListOptsBuilder
		want string
	}{
		{name: "name", opts: ports.ListOpts{Name: "vm2-port"}, want: p2.ID},
		{name: "fixed ip", opts: ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.20.0.150"}}}, want: p.ID},
		{name: "device", opts: ports.ListOpts{DeviceID: "vm1", NetworkID: net.ID}, want: p.ID},
		{name: "host", opts: hostListOpts{HostID: "host1"}, want: p.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pages, err := ports.List(sc, tt.opts).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ports.ExtractPorts(pages)
			if err != nil || len(l) != 1 || l[0].ID != tt.want {
				t.Errorf("ports.List(%+v) = %v, %v; want [%s]", tt.opts, l, err, tt.want)
			}
		})
	}
	var up portWithExt
	newName := "vm1-renamed"
	err = ports.Update(ctx, admin, p.ID, portsbinding.UpdateOptsExt{
		UpdateOptsBuilder: ports.UpdateOpts{Name: &newName, AdminStateUp: gophercloud.Disabled},
		HostID:            new("host2"),
	}).ExtractInto(&up)
	if err != nil || up.Name != newName || up.AdminStateUp || up.HostID != "host2" {
		t.Fatalf("ports.Update = %+v, %v", up, err)
	}
	if err := ports.Update(ctx, sc, p.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, HostID: new("host3")}).Err; !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("member rebinding its port: %v, want 403", err)
	}
	if g, err := ports.Get(ctx, sc, p.ID).Extract(); err != nil || g.Name != newName {
		t.Errorf("ports.Get = %+v, %v", g, err)
	}

	// Bad token: 401 through the SDK.
	bad := e.networkClient("wrong")
	if _, err := networks.Get(ctx, bad, net.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("bad token: err %v, want 401", err)
	}
	// Member isolation: B sees nothing of A's and gets 404s.
	scB := e.networkClient(tokB)
	pages, err = networks.List(scB, networks.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := networks.ExtractNetworks(pages); len(l) != 0 {
		t.Errorf("member B lists A's networks: %v", l)
	}
	if _, err := ports.Get(ctx, scB, p.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("member B GET A's port: %v, want 404", err)
	}
	if err := networks.Delete(ctx, scB, net.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("member B DELETE A's network: %v, want 404", err)
	}
	// Admin sees everything.
	pages, err = networks.List(e.networkClient(adminTok), networks.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := networks.ExtractNetworks(pages); len(l) != 2 {
		t.Errorf("admin lists %d networks, want 2", len(l))
	}

	// Deletes: the network is in use until its ports are gone.
	if err := networks.Delete(ctx, sc, net.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("delete network with ports: %v, want 409", err)
	}
	for _, id := range []string{p.ID, p2.ID} {
		if err := ports.Delete(ctx, sc, id).ExtractErr(); err != nil {
			t.Errorf("ports.Delete: %v", err)
		}
	}
	if err := subnets.Delete(ctx, sc, sub.ID).ExtractErr(); err != nil {
		t.Errorf("subnets.Delete: %v", err)
	}
	for _, id := range []string{net.ID, other.ID} {
		if err := networks.Delete(ctx, sc, id).ExtractErr(); err != nil {
			t.Errorf("networks.Delete: %v", err)
		}
	}
	if _, err := networks.Get(ctx, sc, net.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("GET deleted network: %v, want 404", err)
	}
}
