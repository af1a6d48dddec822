package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"hivenet/internal/store"
	"hivenet/internal/translate"
)

// Role names. A token with RoleAdmin sees and changes every project's
// resources; any other role is a member of its project.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Token maps an X-Auth-Token value to a project and a role.
type Token struct {
	Token     string `json:"token"`
	ProjectID string `json:"project_id"`
	Role      string `json:"role"`
}

// TraceRequest is what the trace hook receives: the "trace" object of the
// request body, whose port the caller is allowed to see.
type TraceRequest struct {
	PortID string
	Body   json.RawMessage
}

// TraceFunc simulates a described packet and returns the object answered
// as {"trace": ...}. Returning an *Error chooses the status; other errors
// are 500.
type TraceFunc func(ctx context.Context, req TraceRequest) (any, error)

// Config configures the API handler.
type Config struct {
	// Store is where everything lives. Required.
	Store *store.Store
	// UnderlayMTU is the MTU of the hosts' tunnel network; networks get
	// UnderlayMTU - translate.TunnelOverhead. Default 1500.
	UnderlayMTU int
	// AdminToken is the token of the admin (project AdminProject).
	AdminToken string
	// AdminProject is the admin's project. Default "admin".
	AdminProject string
	// Tokens are more tokens (see LoadTokens).
	Tokens []Token
	// InsecureNoAuth accepts requests without a token as the admin. For
	// development only; New refuses a Config with neither this nor a
	// token.
	InsecureNoAuth bool
	// Trace implements POST /v2.0/hivenet/trace; nil answers 501.
	Trace TraceFunc
	// RequestTimeout bounds each request's store work; a request that
	// cannot reach etcd in time gets 503. Default 30s.
	RequestTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for timestamps; default time.Now.
	Now func() time.Time
	// Rand is the source of MAC addresses; default crypto/rand.Reader.
	Rand io.Reader
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("api: Store is required")
	}
	if c.UnderlayMTU != 0 && (c.UnderlayMTU < 576+translate.TunnelOverhead || c.UnderlayMTU > 65535) {
		return fmt.Errorf("api: UnderlayMTU %d out of range [%d, 65535]", c.UnderlayMTU, 576+translate.TunnelOverhead)
	}
	if c.RequestTimeout < 0 {
		return errors.New("api: RequestTimeout is negative")
	}
	if c.AdminToken == "" && len(c.Tokens) == 0 && !c.InsecureNoAuth {
		return errors.New("api: no admin token and no tokens configured (set one, or InsecureNoAuth)")
	}
	seen := map[string]bool{c.AdminToken: c.AdminToken != ""}
	for i, t := range c.Tokens {
		if t.Token == "" || t.ProjectID == "" {
			return fmt.Errorf("api: token %d: token and project_id are required", i+1)
		}
		if seen[t.Token] {
			return fmt.Errorf("api: token %d: duplicate token", i+1)
		}
		seen[t.Token] = true
	}
	return nil
}

// LoadTokens parses a tokens file: either JSON (a list of Token, or
// {"tokens": [...]}) or lines "token project_id [role]" (role defaults to
// member; blank lines and lines starting with # are ignored).
func LoadTokens(r io.Reader) ([]Token, error) {
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("api: reading tokens: %w", err)
	}
	trim := strings.TrimSpace(string(b))
	var toks []Token
	switch {
	case strings.HasPrefix(trim, "["):
		if err := json.Unmarshal(b, &toks); err != nil {
			return nil, fmt.Errorf("api: tokens file: %w", err)
		}
	case strings.HasPrefix(trim, "{"):
		var v struct {
			Tokens []Token `json:"tokens"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("api: tokens file: %w", err)
		}
		toks = v.Tokens
	default:
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 2 || len(f) > 3 {
				return nil, fmt.Errorf("api: tokens file line %d: want \"token project_id [role]\"", i+1)
			}
			t := Token{Token: f[0], ProjectID: f[1]}
			if len(f) == 3 {
				t.Role = f[2]
			}
			toks = append(toks, t)
		}
	}
	for i := range toks {
		if toks[i].Role == "" {
			toks[i].Role = RoleMember
		}
		if toks[i].Token == "" || toks[i].ProjectID == "" {
			return nil, fmt.Errorf("api: tokens file entry %d: token and project_id are required", i+1)
		}
	}
	return toks, nil
}
