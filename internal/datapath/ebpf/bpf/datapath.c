// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// hivenet eBPF datapath: TC (tcx) programs.
//
//   hn_port        ingress of every bound interface: parse the frame into
//                  the flow key (a mirror of packet.FlowMatch), megaflow
//                  lookup (one hash probe per installed mask), execute
//                  the flow's actions (a mirror of flowtable.Actions);
//                  misses go up to the agent through the upcall TAP.
//   hn_tunnel      ingress of the collect_md VXLAN device: VNI -> local
//                  port or flood set; the flow-state VNI goes up.
//   hn_vxlan_out   egress of the VXLAN device: frames the agent sends
//                  (Execute) carry a mark naming an exec slot that gives
//                  the VNI, remote and flags; set the tunnel key (and
//                  the commit bit) from it.
//
// Connection tracking (as Open vSwitch's ct()): a port with a zone
// (port_info.zone != 0) looks every IPv4/IPv6 packet's conntrack key
// (struct ct_key = flowstate.Key, built as flowstate.KeyOf) up in hn_ct
// before the flow lookup and puts the state in flow_key.ct_state: CT_NEW
// when absent, else the entry's (CT_EST forward, CT_EST|CT_RPL reply);
// misses carry it in upcall_meta.ct_state. Other frames and ports in
// zone 0 have ct_state 0. ACT_CT_COMMIT records the packet's tuple as
// parsed (before rewrites) in zone a->key (and a->port if not 0): the
// key -> CT_EST and its reverse -> CT_EST|CT_RPL. A tunnel action with
// FLAG_COMMIT sets the commit bit: VXLAN-GBP (the device is created
// with GBP) Group Policy ID bit 0 (GBP_COMMIT), through
// bpf_skb_set_tunnel_opt; hn_tunnel, finding it on a packet for a
// local port, commits the inner frame's connection in that port's zone
// before delivering it, so the reply host knows the connection without
// a message or an upcall. Entries are LRU; idle ones are removed by the
// Go side.
//
// The layout of every struct shared with Go is checked against BTF by the
// Go tests (layout_test.go). Multi-byte fields of the flow key hold
// numbers in host order, as the Go struct does.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_ACTIONS 12
#define MAX_MASKS 16
#define MAX_FLOOD 32
#define STATE_KEY 0xFFFFFF
#define UPCALL_MAGIC 0x484e /* "HN" */
#define EXEC_MARK 0x484e0000
#define PASS_MARK 0x484f0000 /* a copy of a broadcast for the host stack */
#define OUT_NONE 0xffffffff

enum reason { R_MISS = 1, R_STATE = 2 };

enum act_kind {
	ACT_OUTPUT = 1,
	ACT_TUNNEL,
	ACT_FLOOD,
	ACT_SET_ETH_SRC,
	ACT_SET_ETH_DST,
	ACT_DEC_TTL,
	ACT_SET_IPV4_SRC,
	ACT_SET_IPV4_DST,
	ACT_SET_L4_SRC,
	ACT_SET_L4_DST,
	ACT_CT_COMMIT,
};

/* Action flags (flowtable.FlagCommit). */
#define FLAG_COMMIT 1

/* Connection-tracking states (packet.CTNew, CTEstablished, CTReply). */
#define CT_NEW 1
#define CT_EST 2
#define CT_RPL 4

/* The commit bit on the wire: VXLAN Group Based Policy (VXLAN-GBP, the
 * G flag 0x80 and the 16-bit Group Policy ID) carried in the collect_md
 * tunnel option struct vxlan_metadata. hivenet sets bit 0 of the Group
 * Policy ID (GBP_COMMIT) on a tunnelled packet whose connection the
 * receiving host must record; other bits are zero. */
#define GBP_COMMIT 0x1

struct vxlan_metadata {
	__u32 gbp;
};

enum stat {
	ST_RX,
	ST_TX,
	ST_HITS,
	ST_MISSES,
	ST_DROPS,
	ST_TUN_RX,
	ST_TUN_TX,
	ST_UNKNOWN_KEY,
	ST_STATE_RX,
	ST_UPCALL_FAIL,
	ST_CT_COMMIT,    /* connections committed by ct(commit) actions */
	ST_CT_COMMIT_RX, /* connections committed for a tunnel's commit bit */
	ST_MAX,
};

struct flow_key {
	__u32 in_port;
	__u8 eth_src[6];
	__u8 eth_dst[6];
	__u16 eth_type;
	__u16 vlan;
	__u8 ip_src[16];
	__u8 ip_dst[16];
	__u8 ip_proto;
	__u8 ip_ttl;
	__u8 ip_frag;
	__u8 ct_state;
	__u16 src_port;
	__u16 dst_port;
	__u8 arp_sha[6];
	__u16 icmp_id;
};

struct lookup_key {
	__u32 mask_id;
	struct flow_key k;
};

struct action {
	__u8 kind;
	__u8 flags;
	__u16 remote_port;
	__u32 port;
	__u32 key;
	__u8 remote[4];
	__u8 mac[6];
	__u8 pad2[2];
};

struct actions {
	__u8 n;
	struct action a[MAX_ACTIONS];
};

struct flow_val {
	struct actions acts;
	__u32 last_out; /* index of the last output/tunnel action, OUT_NONE if none */
	__u64 packets;
	__u64 bytes;
	__u64 last_used; /* bpf_ktime_get_ns */
};

struct mask {
	__u32 used;
	struct flow_key m;
};

struct flood {
	__u32 n_local;
	__u32 n_remote;
	__u32 local[MAX_FLOOD];  /* port numbers */
	__u32 remote[MAX_FLOOD]; /* IPv4, host order */
};

/* A bound interface. */
struct port_info {
	__u32 port;   /* port number */
	__u8 mac[6];  /* the interface's own MAC: frames to it are the host's */
	__u8 pad[2];
	__u32 zone;   /* conntrack zone (0: packets entering here are not tracked) */
};

/* One direction of a connection in a zone: a byte-for-byte mirror of
 * flowstate.Key, built as flowstate.KeyOf does. */
struct ct_key {
	__u32 zone;
	__u8 proto;
	__u8 pad[3];
	__u8 src[16];
	__u8 dst[16];
	__u16 src_port;
	__u16 dst_port;
};

struct ct_val {
	__u8 state; /* CT_EST, or CT_EST|CT_RPL for the reply direction */
	__u8 pad[7];
	__u64 last_seen; /* bpf_ktime_get_ns */
};

struct config {
	__u32 upcall_ifindex;
	__u32 vxlan_ifindex;
	__u32 nmasks;
	__u32 pad;
};

struct exec_tun {
	__u32 vni;
	__u32 remote; /* IPv4, host order */
	__u32 flags;  /* FLAG_COMMIT: set the commit bit */
};

/* Prepended to every frame sent up through the upcall TAP. */
struct upcall_meta {
	__u16 magic;
	__u8 reason;
	__u8 ct_state; /* the state the packet was looked up with */
	__u32 in_port;
	__u16 vlan_tci;   /* the offloaded 802.1Q tag, removed from the skb */
	__u16 vlan_proto; /* host order; 0: no tag */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lookup_key);
	__type(value, struct flow_val);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct mask);
	__uint(max_entries, MAX_MASKS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_masks SEC(".maps");

/* port number -> ifindex */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_ports SEC(".maps");

/* ifindex -> port */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct port_info);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_ifports SEC(".maps");

/* tunnel key -> port number */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_tunkeys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct flood);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_floods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct exec_tun);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_exec SEC(".maps");

/* Connection tracker: ct_key -> ct_val; least recently used entries go
 * when full, idle ones are removed by the Go side (Config.ConnIdle). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_ct SEC(".maps");

/* Per-CPU room for conntrack keys: hn_port's (k) and ct_commit's two
 * (f, r); the programs' stacks are nearly full. Only hn_port and
 * hn_tunnel use it, and neither runs nested in the other on one CPU
 * (a redirect from hn_port may run hn_vxlan_out, which does not use it). */
struct ct_scratch {
	struct ct_key k, f, r;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ct_scratch);
	__uint(max_entries, 1);
} hn_ct_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, ST_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hn_stats SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&hn_stats, &i);
	if (v)
		*v += 1;
}

static __always_inline struct config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&hn_config, &zero);
}

/* Header offsets found by parse. */
struct hdr {
	__u32 l3;
	__u32 l4; /* 0: no transport header */
};

static __always_inline void mapped4(__u8 *dst, const __u8 *a)
{
	dst[10] = 0xff;
	dst[11] = 0xff;
	dst[12] = a[0];
	dst[13] = a[1];
	dst[14] = a[2];
	dst[15] = a[3];
}

/* parse_l4 mirrors packet.parseL4: len is the length of the IP payload at off. */
static __always_inline int parse_l4(struct __sk_buff *skb, struct flow_key *k, struct hdr *h, __u32 off,
				    __u32 len, __u8 icmp)
{
	__u8 b[20];

	h->l4 = off;
	switch (k->ip_proto) {
	case IPPROTO_TCP: {
		if (len < 20 || bpf_skb_load_bytes(skb, off, b, 20))
			return -1;
		__u32 doff = (b[12] >> 4) * 4;
		if (doff < 20 || len < doff)
			return -1;
		k->src_port = (b[0] << 8) | b[1];
		k->dst_port = (b[2] << 8) | b[3];
		return 0;
	}
	case IPPROTO_UDP: {
		if (len < 8 || bpf_skb_load_bytes(skb, off, b, 8))
			return -1;
		__u32 ul = (b[4] << 8) | b[5];
		if (ul != 0 && (ul < 8 || (ul > len && k->ip_frag == 0)))
			return -1;
		k->src_port = (b[0] << 8) | b[1];
		k->dst_port = (b[2] << 8) | b[3];
		return 0;
	}
	}
	if (k->ip_proto == icmp) {
		if (len < 8 || bpf_skb_load_bytes(skb, off, b, 8))
			return -1;
		k->src_port = b[0];
		k->dst_port = b[1];
		if ((icmp == IPPROTO_ICMP && (b[0] == 8 || b[0] == 0)) ||
		    (icmp == IPPROTO_ICMPV6 && (b[0] == 128 || b[0] == 129)))
			k->icmp_id = (b[4] << 8) | b[5];
	}
	return 0;
}

/* parse mirrors packet.Parse for the frames it accepts; it returns -1 for
 * anything it does not handle exactly as the Go parser does (VLAN tags,
 * IPv6 extension headers, errors), and such frames go up to the agent. */
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *k, struct hdr *h)
{
	__u8 b[40];
	__u32 len = skb->len;

	if (skb->vlan_present)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, b, 14))
		return -1;
	__builtin_memcpy(k->eth_dst, b, 6);
	__builtin_memcpy(k->eth_src, b + 6, 6);
	__u16 et = (b[12] << 8) | b[13];
	k->eth_type = et;
	h->l3 = 14;
	h->l4 = 0;
	switch (et) {
	case ETH_P_8021Q:
	case ETH_P_8021AD:
		return -1;
	case ETH_P_ARP:
		if (len < 14 + 28 || bpf_skb_load_bytes(skb, 14, b, 28))
			return -1;
		if (b[0] != 0 || b[1] != 1 || b[2] != 0x08 || b[3] != 0 || b[4] != 6 || b[5] != 4 || b[6] != 0)
			return -1;
		k->ip_proto = b[7];
		__builtin_memcpy(k->arp_sha, b + 8, 6);
		mapped4(k->ip_src, b + 14);
		mapped4(k->ip_dst, b + 24);
		return 0;
	case ETH_P_IP: {
		if (len < 14 + 20 || bpf_skb_load_bytes(skb, 14, b, 20))
			return -1;
		if ((b[0] >> 4) != 4)
			return -1;
		__u32 ihl = (b[0] & 0x0f) * 4;
		__u32 plen = len - 14;
		if (ihl < 20 || plen < ihl)
			return -1;
		__u32 total = (b[2] << 8) | b[3];
		if (total == 0)
			total = plen;
		else if (total < ihl || total > plen)
			return -1;
		k->ip_ttl = b[8];
		k->ip_proto = b[9];
		mapped4(k->ip_src, b + 12);
		mapped4(k->ip_dst, b + 16);
		__u16 frag = (b[6] << 8) | b[7];
		if (frag & 0x1fff) {
			k->ip_frag = 2;
			return 0;
		}
		if (frag & 0x2000)
			k->ip_frag = 1;
		return parse_l4(skb, k, h, 14 + ihl, total - ihl, IPPROTO_ICMP);
	}
	case ETH_P_IPV6: {
		if (len < 14 + 40 || bpf_skb_load_bytes(skb, 14, b, 40))
			return -1;
		if ((b[0] >> 4) != 6)
			return -1;
		__u32 plen = (b[4] << 8) | b[5];
		if (plen == 0)
			plen = len - 14 - 40;
		else if (40 + plen > len - 14)
			return -1;
		k->ip_ttl = b[7];
		__builtin_memcpy(k->ip_src, b + 8, 16);
		__builtin_memcpy(k->ip_dst, b + 24, 16);
		__u8 nh = b[6];
		switch (nh) {
		case 0:
		case 43:
		case 44:
		case 51:
		case 60:
		case 135:
			return -1; /* extension headers: the agent parses them */
		}
		k->ip_proto = nh;
		return parse_l4(skb, k, h, 14 + 40, plen, IPPROTO_ICMPV6);
	}
	}
	return 0;
}

/* ct_key_of fills ck with the conntrack key of the packet k in zone,
 * exactly as flowstate.KeyOf: TCP and UDP keep their ports; an ICMPv4
 * echo request puts its identifier in src_port, an echo reply in
 * dst_port; anything else has ports 0. */
static __always_inline void ct_key_of(const struct flow_key *k, __u32 zone, struct ct_key *ck)
{
	ck->zone = zone;
	ck->proto = k->ip_proto;
	ck->pad[0] = ck->pad[1] = ck->pad[2] = 0;
	__builtin_memcpy(ck->src, k->ip_src, 16);
	__builtin_memcpy(ck->dst, k->ip_dst, 16);
	ck->src_port = 0;
	ck->dst_port = 0;
	switch (k->ip_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		ck->src_port = k->src_port;
		ck->dst_port = k->dst_port;
		break;
	case IPPROTO_ICMP:
		if (k->src_port == 8)
			ck->src_port = k->icmp_id;
		else if (k->src_port == 0)
			ck->dst_port = k->icmp_id;
		break;
	}
}

static __always_inline int is_ip(const struct flow_key *k)
{
	return k->eth_type == ETH_P_IP || k->eth_type == ETH_P_IPV6;
}

/* ct_state looks ck up: its state (the entry's last_seen refreshed) or
 * CT_NEW when neither direction was committed. last_seen takes the
 * coarse clock (the same CLOCK_MONOTONIC, a tick's resolution: plenty
 * for an idle time of minutes), written only when it moved, so a busy
 * connection does not dirty the entry's cache line on every packet. */
static __always_inline __u8 ct_state(const struct ct_key *ck)
{
	struct ct_val *v = bpf_map_lookup_elem(&hn_ct, ck);
	if (!v)
		return CT_NEW;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (v->last_seen != now)
		v->last_seen = now;
	return v->state;
}

/* ct_commit records the connection of ck (its zone replaced by zone):
 * ck -> CT_EST, its reverse -> CT_EST|CT_RPL. A global function:
 * verified once, not per call site; the keys are built in a per-CPU
 * scratch entry, since its callers' stacks are nearly full. */
__attribute__((noinline)) int ct_commit(const struct ct_key *ck, __u32 zone)
{
	__u32 zero = 0;
	struct ct_scratch *s = bpf_map_lookup_elem(&hn_ct_scratch, &zero);
	if (!ck || !s)
		return -1;
	struct ct_val v = {.state = CT_EST, .last_seen = bpf_ktime_get_ns()};

	s->f = *ck;
	s->f.zone = zone;
	s->r.zone = zone;
	s->r.proto = ck->proto;
	__builtin_memcpy(s->r.src, ck->dst, 16);
	__builtin_memcpy(s->r.dst, ck->src, 16);
	s->r.src_port = ck->dst_port;
	s->r.dst_port = ck->src_port;
	int err = bpf_map_update_elem(&hn_ct, &s->f, &v, BPF_ANY);
	v.state = CT_EST | CT_RPL;
	err |= bpf_map_update_elem(&hn_ct, &s->r, &v, BPF_ANY);
	return err;
}

static __always_inline struct flow_val *lookup_flow(const struct flow_key *k, __u32 nmasks)
{
	struct lookup_key lk;

	for (__u32 i = 0; i < MAX_MASKS; i++) {
		if (i >= nmasks)
			break;
		__u32 id = i;
		struct mask *m = bpf_map_lookup_elem(&hn_masks, &id);
		if (!m || !m->used)
			continue;
		lk.mask_id = i;
		const __u32 *src = (const __u32 *)k;
		const __u32 *mw = (const __u32 *)&m->m;
		__u32 *dst = (__u32 *)&lk.k;
#pragma unroll
		for (int j = 0; j < (int)(sizeof(struct flow_key) / 4); j++)
			dst[j] = src[j] & mw[j];
		struct flow_val *v = bpf_map_lookup_elem(&hn_flows, &lk);
		if (v)
			return v;
	}
	return 0;
}

static __always_inline int upcall(struct __sk_buff *skb, __u8 reason, __u32 in_port, __u8 ct_state)
{
	struct config *c = config();
	struct upcall_meta m = {
		.magic = UPCALL_MAGIC,
		.reason = reason,
		.ct_state = ct_state,
		.in_port = in_port,
	};

	if (!c || !c->upcall_ifindex)
		goto fail;
	if (skb->vlan_present) {
		m.vlan_tci = skb->vlan_tci;
		m.vlan_proto = bpf_ntohs(skb->vlan_proto);
		if (bpf_skb_vlan_pop(skb))
			goto fail;
	}
	if (bpf_skb_change_head(skb, sizeof(m), 0))
		goto fail;
	if (bpf_skb_store_bytes(skb, 0, &m, sizeof(m), 0))
		goto fail;
	return bpf_redirect(c->upcall_ifindex, 0);
fail:
	count(ST_UPCALL_FAIL);
	return TC_ACT_SHOT;
}

static __always_inline __u32 port_ifindex(__u32 port)
{
	__u32 *ifx = bpf_map_lookup_elem(&hn_ports, &port);
	return ifx ? *ifx : 0;
}

/* set_tunnel sets the tunnel key and, with FLAG_COMMIT, the commit bit
 * (a VXLAN-GBP option; set_tunnel_key clears any earlier one). */
static __always_inline int set_tunnel(struct __sk_buff *skb, __u32 vni, __u32 remote, __u32 flags)
{
	struct bpf_tunnel_key tk = {
		.tunnel_id = vni,
		.remote_ipv4 = remote,
		.tunnel_ttl = 64,
	};
	if (bpf_skb_set_tunnel_key(skb, &tk, sizeof(tk), BPF_F_ZERO_CSUM_TX))
		return -1;
	if (flags & FLAG_COMMIT) {
		struct vxlan_metadata md = {.gbp = GBP_COMMIT};
		return bpf_skb_set_tunnel_opt(skb, &md, sizeof(md));
	}
	return 0;
}

/* flood clones the frame to the flood set's local ports other than
 * in_ifindex and, when vx_ifindex is set, tunnels it to its remote hosts.
 * A global function: verified once, not per call site. */
__attribute__((noinline)) int flood(struct __sk_buff *skb, __u32 key, __u32 in_ifindex, __u32 vx_ifindex)
{
	if (!skb)
		return 0;
	struct flood *f = bpf_map_lookup_elem(&hn_floods, &key);
	if (!f)
		return 0;
	for (__u32 i = 0; i < MAX_FLOOD; i++) {
		if (i >= f->n_local)
			break;
		__u32 ifx = port_ifindex(f->local[i]);
		if (ifx && ifx != in_ifindex && bpf_clone_redirect(skb, ifx, 0) == 0)
			count(ST_TX);
	}
	if (!vx_ifindex)
		return 0;
	for (__u32 i = 0; i < MAX_FLOOD; i++) {
		if (i >= f->n_remote)
			break;
		if (set_tunnel(skb, key, f->remote[i], 0) == 0 && bpf_clone_redirect(skb, vx_ifindex, 0) == 0)
			count(ST_TUN_TX);
	}
	return 0;
}

/* Packet facts the rewrites need, packed in scalars so that rewrite()
 * can be a global function (verified once). */
#define INFO(k, h) (((__u64)(k)->eth_type << 48) | ((__u64)(k)->ip_proto << 40) | ((__u64)(h)->l3 << 20) | (h)->l4)
#define INFO_ETH(i) ((__u16)((i) >> 48))
#define INFO_PROTO(i) ((__u8)((i) >> 40))
#define INFO_L3(i) ((__u32)((i) >> 20) & 0xfffff)
#define INFO_L4(i) ((__u32)(i) & 0xfffff)

static __always_inline int set_ipv4(struct __sk_buff *skb, __u64 info, __u32 at, __u32 nw)
{
	__u32 old, l3 = INFO_L3(info), l4 = INFO_L4(info);
	__u8 proto = INFO_PROTO(info);

	if (INFO_ETH(info) != ETH_P_IP)
		return -1;
	if (bpf_skb_load_bytes(skb, l3 + at, &old, 4))
		return -1;
	if (old == nw)
		return 0;
	if (l4) {
		if (proto == IPPROTO_TCP) {
			if (bpf_l4_csum_replace(skb, l4 + 16, old, nw, BPF_F_PSEUDO_HDR | 4))
				return -1;
		} else if (proto == IPPROTO_UDP) {
			if (bpf_l4_csum_replace(skb, l4 + 6, old, nw, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
				return -1;
		}
	}
	if (bpf_l3_csum_replace(skb, l3 + 10, old, nw, 4))
		return -1;
	return bpf_skb_store_bytes(skb, l3 + at, &nw, 4, 0);
}

static __always_inline int set_l4(struct __sk_buff *skb, __u64 info, int dst, __u16 port)
{
	__u32 at, csum, flags = 2, l4 = INFO_L4(info);
	__u8 proto = INFO_PROTO(info), typ;
	__u16 eth = INFO_ETH(info);

	if (!l4)
		return 0;
	if (proto == IPPROTO_TCP) {
		at = dst ? 2 : 0;
		csum = 16;
	} else if (proto == IPPROTO_UDP) {
		at = dst ? 2 : 0;
		csum = 6;
		flags |= BPF_F_MARK_MANGLED_0;
	} else if ((eth == ETH_P_IP && proto == IPPROTO_ICMP) || (eth == ETH_P_IPV6 && proto == IPPROTO_ICMPV6)) {
		if (bpf_skb_load_bytes(skb, l4, &typ, 1))
			return -1;
		int req = typ == 8 || typ == 128;
		int rep = typ == 0 || typ == 129;
		if (!(req && !dst) && !(rep && dst))
			return 0;
		at = 4;
		csum = 2;
	} else {
		return 0;
	}
	__u16 old, nw = bpf_htons(port);
	if (bpf_skb_load_bytes(skb, l4 + at, &old, 2))
		return -1;
	if (old == nw)
		return 0;
	if (bpf_l4_csum_replace(skb, l4 + csum, old, nw, flags))
		return -1;
	return bpf_skb_store_bytes(skb, l4 + at, &nw, 2, 0);
}

static __always_inline int dec_ttl(struct __sk_buff *skb, __u64 info, __u32 n)
{
	__u32 l3 = INFO_L3(info);

	if (n == 0)
		return 0;
	if (n > 255)
		n = 255;
	if (INFO_ETH(info) == ETH_P_IP) {
		__u16 old, nw;
		if (bpf_skb_load_bytes(skb, l3 + 8, &old, 2))
			return -1;
		__u8 ttl = old & 0xff; /* first byte in memory */
		if (ttl <= n)
			return -1;
		nw = (old & 0xff00) | (__u8)(ttl - n);
		if (bpf_l3_csum_replace(skb, l3 + 10, old, nw, 2))
			return -1;
		return bpf_skb_store_bytes(skb, l3 + 8, &nw, 2, 0);
	}
	if (INFO_ETH(info) == ETH_P_IPV6) {
		__u8 hl;
		if (bpf_skb_load_bytes(skb, l3 + 7, &hl, 1) || hl <= n)
			return -1;
		hl -= n;
		return bpf_skb_store_bytes(skb, l3 + 7, &hl, 1, 0);
	}
	return -1;
}

/* rewrite applies one L3/L4 rewrite action; arg is the TTL decrement,
 * the IPv4 address (network order in memory) or the port. Non-zero:
 * drop the frame. */
__attribute__((noinline)) int rewrite(struct __sk_buff *skb, __u32 kind, __u32 arg, __u64 info)
{
	if (!skb)
		return -1;
	switch (kind) {
	case ACT_DEC_TTL:
		return dec_ttl(skb, info, arg);
	case ACT_SET_IPV4_SRC:
		return set_ipv4(skb, info, 12, arg);
	case ACT_SET_IPV4_DST:
		return set_ipv4(skb, info, 16, arg);
	case ACT_SET_L4_SRC:
		return set_l4(skb, info, 0, arg);
	case ACT_SET_L4_DST:
		return set_l4(skb, info, 1, arg);
	}
	return -1;
}

/* run_actions executes the flow's actions; ck is the packet's conntrack
 * key (NULL for frames other than IP ones, which ct(commit) ignores). */
static __always_inline int run_actions(struct __sk_buff *skb, struct flow_val *v, const struct flow_key *k,
				       const struct hdr *h, const struct ct_key *ck, __u32 in_ifindex,
				       __u32 vx_ifindex)
{
	__u32 n = v->acts.n;
	__u32 last = v->last_out;
	__u64 info = INFO(k, h);
	int sent = 0;

	for (__u32 i = 0; i < MAX_ACTIONS; i++) {
		if (i >= n)
			break;
		struct action *a = &v->acts.a[i];
		switch (a->kind) {
		case ACT_OUTPUT: {
			__u32 ifx = port_ifindex(a->port);
			if (!ifx)
				break;
			count(ST_TX);
			sent = 1;
			if (i == last)
				return bpf_redirect(ifx, 0);
			bpf_clone_redirect(skb, ifx, 0);
			break;
		}
		case ACT_TUNNEL: {
			__u32 remote = ((__u32)a->remote[0] << 24) | ((__u32)a->remote[1] << 16) |
				       ((__u32)a->remote[2] << 8) | a->remote[3];
			if (!vx_ifindex || set_tunnel(skb, a->key, remote, a->flags))
				break;
			count(ST_TUN_TX);
			sent = 1;
			if (i == last)
				return bpf_redirect(vx_ifindex, 0);
			bpf_clone_redirect(skb, vx_ifindex, 0);
			break;
		}
		case ACT_FLOOD:
			flood(skb, a->key, in_ifindex, vx_ifindex);
			sent = 1;
			break;
		case ACT_SET_ETH_SRC:
			if (bpf_skb_store_bytes(skb, 6, a->mac, 6, 0))
				goto drop;
			break;
		case ACT_SET_ETH_DST:
			if (bpf_skb_store_bytes(skb, 0, a->mac, 6, 0))
				goto drop;
			break;
		case ACT_DEC_TTL:
			if (rewrite(skb, ACT_DEC_TTL, a->port, info))
				goto drop;
			break;
		case ACT_SET_IPV4_SRC:
		case ACT_SET_IPV4_DST: {
			__u32 nw;
			__builtin_memcpy(&nw, a->remote, 4);
			if (rewrite(skb, a->kind, nw, info))
				goto drop;
			break;
		}
		case ACT_SET_L4_SRC:
		case ACT_SET_L4_DST:
			if (rewrite(skb, a->kind, a->remote_port, info))
				goto drop;
			break;
		case ACT_CT_COMMIT:
			if (!ck)
				break;
			if (ct_commit(ck, a->key) == 0)
				count(ST_CT_COMMIT);
			if (a->port && ct_commit(ck, a->port) == 0)
				count(ST_CT_COMMIT);
			break;
		default:
			goto drop;
		}
	}
	if (!sent)
		count(ST_DROPS);
	return TC_ACT_SHOT;
drop:
	count(ST_DROPS);
	return TC_ACT_SHOT;
}

SEC("tc")
int hn_port(struct __sk_buff *skb)
{
	if (skb->mark == PASS_MARK) {
		skb->mark = 0;
		return TC_ACT_OK;
	}
	__u32 ifx = skb->ingress_ifindex;
	struct port_info *pi = bpf_map_lookup_elem(&hn_ifports, &ifx);
	if (!pi)
		return TC_ACT_OK; /* not bound (any more): leave it to the stack */
	__u32 in_port = pi->port, zone = pi->zone;
	/* The host may use the interface too (a gateway's uplink NIC): frames
	 * to the interface's own MAC are its own, and broadcasts and
	 * multicasts go to it as well (a copy re-entering this hook marked),
	 * as with the userspace datapath's AF_PACKET tap. */
	__u8 dst[6];
	if (bpf_skb_load_bytes(skb, 0, dst, 6))
		return TC_ACT_SHOT;
	if (dst[0] == pi->mac[0] && dst[1] == pi->mac[1] && dst[2] == pi->mac[2] && dst[3] == pi->mac[3] &&
	    dst[4] == pi->mac[4] && dst[5] == pi->mac[5])
		return TC_ACT_OK;
	if (dst[0] & 1) {
		skb->mark = PASS_MARK;
		bpf_clone_redirect(skb, ifx, BPF_F_INGRESS);
		skb->mark = 0;
	}
	count(ST_RX);
	struct config *c = config();
	if (!c)
		return TC_ACT_SHOT;
	__u32 nmasks = c->nmasks, vx = c->vxlan_ifindex;

	struct flow_key k = {};
	struct hdr h = {};
	if (parse(skb, &k, &h)) {
		count(ST_MISSES);
		return upcall(skb, R_MISS, in_port, 0);
	}
	k.in_port = in_port;
	/* Connection tracking, before the lookup: flows match ct_state. */
	const struct ct_key *ckp = 0;
	if (is_ip(&k)) {
		__u32 zero = 0;
		struct ct_scratch *cs = bpf_map_lookup_elem(&hn_ct_scratch, &zero);
		if (!cs)
			return TC_ACT_SHOT;
		ct_key_of(&k, zone, &cs->k);
		ckp = &cs->k;
		if (zone)
			k.ct_state = ct_state(&cs->k);
	}
	struct flow_val *v = lookup_flow(&k, nmasks);
	if (!v) {
		count(ST_MISSES);
		return upcall(skb, R_MISS, in_port, k.ct_state);
	}
	count(ST_HITS);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, skb->len);
	v->last_used = bpf_ktime_get_ns();
	return run_actions(skb, v, &k, &h, ckp, ifx, vx);
}

/* commit_rx commits the connection of the tunnelled frame (the commit
 * bit was set) in the zone of the port at ifindex it is delivered to. */
static __always_inline void commit_rx(struct __sk_buff *skb, __u32 ifindex)
{
	struct port_info *pi = bpf_map_lookup_elem(&hn_ifports, &ifindex);
	if (!pi || !pi->zone)
		return;
	__u32 zone = pi->zone;
	struct flow_key k = {};
	struct hdr h = {};
	if (parse(skb, &k, &h) || !is_ip(&k))
		return;
	struct ct_key ck = {};
	ct_key_of(&k, zone, &ck);
	if (ct_commit(&ck, zone) == 0)
		count(ST_CT_COMMIT_RX);
}

SEC("tc")
int hn_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tk = {};

	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0))
		return TC_ACT_SHOT;
	count(ST_TUN_RX);
	__u32 vni = tk.tunnel_id;
	if (vni == STATE_KEY) {
		count(ST_STATE_RX);
		return upcall(skb, R_STATE, 0, 0);
	}
	__u32 *port = bpf_map_lookup_elem(&hn_tunkeys, &vni);
	if (port) {
		__u32 ifx = port_ifindex(*port);
		if (ifx) {
			struct vxlan_metadata md = {};
			if (bpf_skb_get_tunnel_opt(skb, &md, sizeof(md)) == sizeof(md) && (md.gbp & GBP_COMMIT))
				commit_rx(skb, ifx);
			count(ST_TX);
			return bpf_redirect(ifx, 0);
		}
	}
	if (bpf_map_lookup_elem(&hn_floods, &vni)) {
		flood(skb, vni, 0, 0);
		return TC_ACT_SHOT;
	}
	count(ST_UNKNOWN_KEY);
	return TC_ACT_SHOT;
}

SEC("tc")
int hn_vxlan_out(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;

	if ((mark & 0xffff0000) != EXEC_MARK)
		return TC_ACT_OK;
	__u32 slot = mark & 0xffff;
	struct exec_tun *e = bpf_map_lookup_elem(&hn_exec, &slot);
	if (!e || set_tunnel(skb, e->vni, e->remote, e->flags))
		return TC_ACT_SHOT;
	skb->mark = 0;
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
