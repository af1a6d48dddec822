package datapath

import "encoding/binary"

// VnetHdrLen is the size of struct virtio_net_hdr (without num_buffers),
// the header that travels before a frame on AF_PACKET sockets with
// PACKET_VNET_HDR and on TAP devices with IFF_VNET_HDR.
const VnetHdrLen = 10

// DecodeVnetHdr reads a virtio_net_hdr (little-endian, as the kernel
// writes it on x86 and arm64) from b, which holds at least VnetHdrLen bytes.
func DecodeVnetHdr(b []byte) GSO {
	return GSO{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// EncodeVnetHdr writes g as a virtio_net_hdr into b (at least VnetHdrLen
// bytes).
func EncodeVnetHdr(b []byte, g GSO) {
	b[0], b[1] = g.Flags, g.GSOType
	binary.LittleEndian.PutUint16(b[2:], g.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], g.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], g.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], g.CsumOffset)
}
