// Package lab builds a multi-host hivenet deployment on one machine out of
// network namespaces: N "hosts" joined by an underlay, a control namespace
// running `hivenet server` (with its embedded etcd), one `hivenet agent` per
// host, and "VM" namespaces attached to the hosts the way hypervisors attach
// guests. The demo (`hivenet lab demo`), the end-to-end tests (test/e2e) and
// the benchmarks (bench/) all run on it.
//
// # The picture
//
// With Prefix "hn-", 3 hosts and the default underlay 10.250.0.0/24:
//
//	root namespace                 (only one link is added here: the API leg)
//	  hn-api 10.251.K.1/30 ─────────────┐  http://10.251.K.2:9696 (API, CLI, tests)
//	                                    │
//	  ┌ netns hn-ctl ──────────────────┐│
//	  │ api0 10.251.K.2/30 ────────────┘│
//	  │ hivenet server :9696           │
//	  │   embedded etcd                │
//	  │   http://10.250.0.254:2379     │
//	  │ ul0  10.250.0.254/24 ─┐        │
//	  └───────────────────────┼────────┘
//	  ┌ netns hn-ul ──────────┼─────────────────────┐
//	  │ br0 (Linux bridge): ctl  host1 host2 host3  │   the "physical" underlay
//	  └────────────────────────┼─────┼─────┼────────┘
//	  ┌ netns hn-host1 ────────┼┐    │     │   (hn-host2, hn-host3 alike)
//	  │ ul0 10.250.0.1/24 ─────┘│  ...
//	  │ hivenet agent --host host1 --tunnel-ip 10.250.0.1
//	  │     --etcd-endpoints http://10.250.0.254:2379
//	  │ tapXXXXXXXXXXX ─┐       │   VXLAN (UDP 4789) between hosts over ul0
//	  └─────────────────┼───────┘
//	  ┌ netns hn-red1 ──┼───────┐   a "VM": veth eth0 <-> the port's interface
//	  │ eth0 (port MAC) ┘ dhclient (lab script), ping, iperf3
//	  └─────────────────────────┘
//
// Hosts get underlay addresses .1..N of UnderlayCIDR, the control
// namespace the last usable address. The server lives in its own namespace,
// as a controller node would, so the root namespace keeps its addresses and
// routes: the only thing added there is the veth leg "<prefix>api" with a
// /30 taken from 10.251.0.0/16 (the first one no root address overlaps, picked
// under a lock so parallel labs differ). Every lab with a distinct prefix is
// independent of the others: its etcd, API and underlay live in its own
// namespaces. Cleanup matches names by string prefix, so no running lab's
// prefix may start with another's ("hn-" and "hn-x-" clash).
//
// With Config.Gateways (e.g. [host3]) the lab also builds an "outside"
// namespace, <prefix>out, playing the upstream router (203.0.113.1 on
// bridge br-ext) and the internet (198.51.100.1 on its loopback), wired to
// each gateway host by a veth whose host end, ext0, that host's agent binds
// with --bridge-mappings physnet1:ext0. CreateExternalNetwork creates the
// matching flat router:external network through the API; ServeTCP,
// DialTCP, StartIperfServer and Iperf run traffic inside any lab namespace.
//
// # Lifecycle and leftovers
//
// Processes are started with `ip netns exec NS ...` in their own session,
// their stdout/stderr go to RunDir/logs/NAME.log and their PIDs to
// RunDir/pids/NAME.pid; the lab's description (hosts, VMs, API URL, admin
// token) is kept in RunDir/lab.json, so a later process (`hivenet lab down`,
// `hivenet lab status`) can pick the lab up with Load. Down stops processes by
// PID (SIGTERM, SIGKILL after a grace period), deletes the namespaces and the
// root link, and removes RunDir. Cleanup removes what a crashed run left
// behind: namespaces and root links with the prefix, processes living in those
// namespaces, and processes named in the pid files, but only after checking
// in /proc that they are hivenet or dhclient processes of this lab.
//
// # Usage
//
//	l, err := lab.New(lab.Config{Prefix: "hn-", Hosts: 3, Logger: log})
//	if err := l.Up(ctx); err != nil { ... }
//	defer l.Down(context.WithoutCancel(ctx))
//	err = l.AddVM(ctx, "red1", "host1", "tap0123456789a", mac)
//	lease, err := l.DHCP(ctx, "red1")
//	ok, rtt, err := l.Ping(ctx, "red1", peer, 3, 2*time.Second)
//
// The package shells out to iproute2 (`ip`), dhclient (isc-dhcp-client) and
// ping (iputils-ping); it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
package lab
