package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/metrics"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Files serve keeps in its data directory for the identities it runs.
const (
	authDir         = "auth"          // the trust chain's keys (internal/auth)
	adminCredsFile  = "admin.creds"   // an operator: what the CLI finds by default
	serviceCredsRel = "service.creds" // the service: serve's own connections, and other serve processes joining
)

// access is who may do what on serve's bus: the embedded server's
// authority (nil without auth or on an external NATS), the credentials
// serve's connections use, the record of issued credentials and the count
// of refusals.
type access struct {
	log       zerolog.Logger
	authority *auth.Authority
	refusals  *auth.Refusals
	registry  *auth.Registry
	sys       *nats.Conn // system account: claim updates, auth advisories
	// opts authenticate serve's connections.
	opts []nats.Option
	// files are the creds files serve wrote or uses, recorded once the
	// registry is open.
	files   []*auth.Creds
	dataDir string
}

// prepareEmbedded readies the embedded server's options: operator mode
// with the data directory's keys, or, with noAuth, open to anyone.
func (ac *access) prepareEmbedded(cfg ServeConfig, dir string, sc *bus.ServerConfig) error {
	ac.dataDir = dir
	if cfg.NoAuth {
		ac.log.Warn().Str("listen", cfg.Listen).Msg("AUTH IS OFF (serve --no-auth): anyone who reaches the NATS port can publish events, grant licenses and read everything; for development only")
		// Data written in operator mode goes back to the global account.
		if a, err := os.ReadFile(filepath.Join(dir, authDir, "account.jwt")); err == nil {
			if acc, err := accountOf(a); err == nil {
				if moved, err := auth.MoveStore(dir, acc, auth.GlobalAccount); err != nil {
					return err
				} else if moved {
					ac.log.Warn().Str("account", acc).Msg("moved the streams of the licensebus account to the open global account")
				}
			}
		}
		return nil
	}
	a, created, err := auth.OpenAuthority(filepath.Join(dir, authDir))
	if err != nil {
		return err
	}
	ac.authority = a
	if created {
		ac.log.Info().Str("account", a.Account()).Str("keys", filepath.Join(dir, authDir)).Msg("created the operator, the system and licensebus accounts and their keys")
	}
	if moved, err := auth.MoveStore(dir, auth.GlobalAccount, a.Account()); err != nil {
		return err
	} else if moved {
		ac.log.Info().Str("account", a.Account()).Msg("moved the streams written without auth to the licensebus account")
	}
	ac.refusals = auth.NewRefusals(ac.log)
	ac.refusals.Revoked = a.Revoked
	// The server's violations are counted whatever the log level.
	sc.ServerLogger = ac.refusals.ServerLogger(sc.Logger)
	sc.Configure = a.Configure
	svc, err := ac.credsFile(filepath.Join(dir, serviceCredsRel), auth.Identity{Name: "service", Role: auth.Service})
	if err != nil {
		return err
	}
	ac.opts = credsOptions(svc)
	return nil
}

// prepareJoin takes the service identity for an external NATS from a
// creds file, if one is given.
func (ac *access) prepareJoin(cfg ServeConfig) error {
	if cfg.Creds == "" {
		return nil
	}
	c, err := auth.ReadCreds(cfg.Creds)
	if err != nil {
		return fmt.Errorf("service credentials %s: %w", cfg.Creds, err)
	}
	ac.opts = credsOptions(c)
	ac.log.Info().Str("creds", cfg.Creds).Str("identity", c.Claims.Name).Msg("joining as the service")
	return nil
}

// credsFile reads a creds file serve keeps, or issues it if it is missing.
func (ac *access) credsFile(path string, id auth.Identity) (*auth.Creds, error) {
	c, err := auth.ReadCreds(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := ac.authority.IssueCreds(path, id); err != nil {
			return nil, err
		}
		ac.log.Info().Str("creds", path).Str("identity", id.Name).Str("role", string(id.Role)).Msg("wrote credentials")
		c, err = auth.ReadCreds(path)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w (delete it and start serve again for new %s credentials)", path, err, id.Name)
	}
	if got := c.Identity(); got != id {
		return nil, fmt.Errorf("%s holds credentials of %s %q, not of %s %q", path, got.Role, got.Name, id.Role, id.Name)
	}
	if ac.authority.Revoked(c.Claims) {
		return nil, fmt.Errorf("%s holds revoked credentials: delete it and start serve again for new ones", path)
	}
	ac.files = append(ac.files, c)
	return c, nil
}

// start runs what needs the streams: the record of credentials, serve's
// files in it, the operator's creds file, and the system connection that
// pushes revocations and hears refused connections.
func (ac *access) start(ctx context.Context, s *Server, replicas int) error {
	var err error
	if ac.authority == nil && ac.dataDir != "" {
		return nil // --no-auth
	}
	if ac.registry, err = auth.OpenRegistry(ctx, s.js, replicas); err != nil {
		return err
	}
	if ac.authority == nil {
		return nil // an external NATS: its operator's keys are elsewhere
	}
	token, seed, err := ac.authority.SystemUser()
	if err != nil {
		return err
	}
	ac.sys, err = nats.Connect("", nats.InProcessServer(s.ns), nats.Name("licensebus serve/system"), nats.MaxReconnects(-1), nats.UserJWTAndSeed(token, string(seed)))
	if err != nil {
		return fmt.Errorf("connect licensebus serve/system: %w", err)
	}
	s.conns = append(s.conns, ac.sys)
	if _, err := ac.refusals.Follow(ac.sys); err != nil {
		return err
	}
	ac.refusals.Who = func(pub string) (auth.Identity, bool) {
		r, ok := ac.registry.Lookup(pub)
		return auth.Identity{Name: r.Name, Role: r.Role}, ok
	}
	admin, err := ac.credsFile(filepath.Join(ac.dataDir, adminCredsFile), auth.Identity{Name: "admin", Role: auth.Operator})
	if err != nil {
		return err
	}
	for _, c := range ac.files {
		if err := ac.record(ctx, c); err != nil {
			return err
		}
	}
	ac.log.Info().Str("creds", admin.Path).Msg("operator credentials for the CLI (found there by default, or --creds, NATS_CREDS)")
	return nil
}

// record enters a creds file serve keeps into the registry. Credentials of
// its name recorded before with another key are revoked: a deleted file
// was replaced, and a copy of it must not stay valid.
func (ac *access) record(ctx context.Context, c *auth.Creds) error {
	rec := auth.RecordOf(c.Claims)
	if old, err := ac.registry.Get(ctx, rec.Name); err == nil && old.PublicKey != rec.PublicKey && !old.Revoked {
		if _, err := ac.registry.Revoke(ctx, rec.Name, ac.revoker()); err != nil {
			return err
		}
		ac.log.Warn().Str("identity", rec.Name).Str("user_key", old.PublicKey).Msg("revoked the credentials of a replaced file")
	} else if err == nil && old.PublicKey == rec.PublicKey {
		return nil
	}
	return ac.registry.Add(ctx, rec)
}

// revoker revokes on the embedded server; nil on an external NATS.
func (ac *access) revoker() auth.Revoker {
	if ac.authority == nil || ac.sys == nil {
		return nil
	}
	return ac.authority.Revoker(ac.sys)
}

// accountOf reads the subject of an account JWT.
func accountOf(b []byte) (string, error) {
	ac, err := jwt.DecodeAccountClaims(string(bytes.TrimSpace(b)))
	if err != nil {
		return "", err
	}
	return ac.Subject, nil
}

// credsFiles are the creds files serve keeps: the operator's it wrote for
// the CLI and its own; empty without auth or on an external NATS.
type credsFiles struct{ admin, service string }

func (s *Server) credsFiles() credsFiles {
	if s.access.authority == nil {
		return credsFiles{}
	}
	return credsFiles{filepath.Join(s.access.dataDir, adminCredsFile), filepath.Join(s.access.dataDir, serviceCredsRel)}
}

// Refusals counts what the embedded NATS server refused (connections,
// permission violations), for the metrics to export; nil without auth or
// on an external NATS, which logs its refusals itself.
func (s *Server) Refusals() *auth.Refusals { return s.access.refusals }

// export counts the embedded server's refusals in the server's metrics:
// permission violations in licensebus_permission_violations_total, refused
// connections in licensebus_refused_connections_total.
func (ac *access) export(m *metrics.Metrics) {
	if ac.refusals == nil || m == nil {
		return
	}
	ac.refusals.OnViolation(m.PermissionViolation)
	m.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "refused_connections_total",
		Help: "Connections the embedded NATS server refused: no, malformed, expired or revoked credentials."},
		func() float64 { return float64(ac.refusals.Connections()) }))
}
