package ebpf

// The programs in bpf/datapath.c compiled by bpf2go; the generated
// bpf_bpfel.go and bpf_bpfel.o are committed so that building needs no
// clang. scripts/check-bpf-generated.sh checks they match the sources.
//go:generate go tool bpf2go -target bpfel -no-global-types bpf bpf/datapath.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
