package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/ebpf"
	"hivenet/internal/datapath/fake"
)

// The datapath selection: ebpf by default, userspace on request, the
// fallback from ebpf to userspace only where the kernel lacks support,
// announced by exactly one warning.
func TestOpenDatapath(t *testing.T) {
	errBroken := errors.New("pin directory unwritable")
	tests := []struct {
		name      string
		flag      string
		ebpfErr   error
		userErr   error
		wantName  string
		wantErr   error // errors.Is; nil: no error
		wantEBPF  bool  // the ebpf datapath was tried
		wantUser  bool  // the userspace datapath was opened
		wantWarns int
	}{
		{name: "ebpf supported", flag: "ebpf", wantName: "ebpf", wantEBPF: true},
		{name: "ebpf unsupported falls back", flag: "ebpf", ebpfErr: fmt.Errorf("%w: no tcx", ebpf.ErrUnsupported),
			wantName: "userspace", wantEBPF: true, wantUser: true, wantWarns: 1},
		{name: "ebpf other error does not fall back", flag: "ebpf", ebpfErr: errBroken, wantErr: errBroken, wantEBPF: true},
		{name: "fallback that fails too", flag: "ebpf", ebpfErr: ebpf.ErrUnsupported, userErr: errBroken,
			wantErr: errBroken, wantEBPF: true, wantUser: true, wantWarns: 1},
		{name: "userspace asked", flag: "userspace", wantName: "userspace", wantUser: true},
		{name: "unknown name", flag: "dpdk", wantErr: errUnknownForTest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			var triedEBPF, openedUser bool
			dp, name, err := openDatapath(tt.flag, log,
				func() (datapath.Datapath, error) {
					triedEBPF = true
					if tt.ebpfErr != nil {
						return nil, tt.ebpfErr
					}
					return fake.New(fake.Config{}), nil
				},
				func() (datapath.Datapath, error) {
					openedUser = true
					if tt.userErr != nil {
						return nil, tt.userErr
					}
					return fake.New(fake.Config{}), nil
				})
			switch {
			case tt.wantErr == errUnknownForTest:
				if err == nil || !strings.Contains(err.Error(), "not supported") {
					t.Errorf("openDatapath(%q) = %v, want a not-supported error", tt.flag, err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("openDatapath(%q) = %v, want %v", tt.flag, err, tt.wantErr)
				}
			case err != nil || dp == nil || name != tt.wantName:
				t.Errorf("openDatapath(%q) = %v, %q, %v; want a datapath, %q", tt.flag, dp, name, err, tt.wantName)
			}
			if triedEBPF != tt.wantEBPF || openedUser != tt.wantUser {
				t.Errorf("ebpf tried %v, userspace opened %v; want %v, %v", triedEBPF, openedUser, tt.wantEBPF, tt.wantUser)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != tt.wantWarns || n != strings.Count(logs.String(), "\n") {
				t.Errorf("log:\n%s\nwant %d warning line(s) and nothing else", logs.String(), tt.wantWarns)
			}
			if tt.wantWarns > 0 && !strings.Contains(logs.String(), "falling back to the userspace datapath") {
				t.Errorf("the fallback warning does not say so:\n%s", logs.String())
			}
		})
	}
}

// errUnknownForTest marks the case expecting the unknown-name error.
var errUnknownForTest = errors.New("unknown datapath name")

// The flag's default is ebpf.
func TestAgentDatapathDefault(t *testing.T) {
	f := findCommand(root, "agent").Flags().Lookup("datapath")
	if f == nil || f.DefValue != "ebpf" {
		t.Fatalf("--datapath default = %v, want ebpf", f)
	}
}
