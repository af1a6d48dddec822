// Package topology is the low-level virtual network model that agents
// execute: bridges, ports, subnets (DHCP and addressing), hosts and the
// runtime state agents publish (port bindings, learned MAC entries).
//
// The API server translates OpenStack resources into these objects and
// stores them in etcd (package store) as JSON. Agents replay the etcd watch
// stream into a Snapshot with Apply: a Snapshot is immutable, so readers
// (the simulation, in many goroutines) take no lock, and each Apply returns
// the new Snapshot together with the invalidation Tags of what changed.
//
// This package performs no I/O, reads no clock and keeps no globals.
//
//	snap := topology.Empty()
//	snap, tags := snap.Apply([]topology.Change{{Kind: topology.KindBridge, ID: b.ID, Bridge: &b}})
//	flows.Invalidate(tags)
package topology
