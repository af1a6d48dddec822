package packet

import "encoding/binary"

// VXLAN header (RFC 7348 section 5), carried in UDP:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// VXLANHeaderLen is the length of the VXLAN header.
const VXLANHeaderLen = 8

// vxlanFlagI is the "VNI valid" flag.
const vxlanFlagI = 0x08

// MaxVNI is the largest 24-bit VNI.
const MaxVNI = 1<<24 - 1

// PutVXLAN writes a VXLAN header with the I flag and vni (its low 24 bits)
// into b[:8]; b must have at least VXLANHeaderLen bytes.
func PutVXLAN(b []byte, vni uint32) {
	_ = b[7]
	binary.BigEndian.PutUint32(b[0:4], vxlanFlagI<<24)
	binary.BigEndian.PutUint32(b[4:8], (vni&MaxVNI)<<8)
}

// ParseVXLAN returns the VNI of the VXLAN header at the start of b:
// ErrTruncated if b is shorter than VXLANHeaderLen, ErrMalformed if the I
// flag is clear. Reserved bits are ignored, as RFC 7348 requires.
func ParseVXLAN(b []byte) (vni uint32, err error) {
	if len(b) < VXLANHeaderLen {
		return 0, ErrTruncated
	}
	if b[0]&vxlanFlagI == 0 {
		return 0, ErrMalformed
	}
	return binary.BigEndian.Uint32(b[4:8]) >> 8, nil
}
