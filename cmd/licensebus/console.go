package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/console"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// webConsole is the console on serve's main listener (--http): every
// path the probes do not answer. The listener is up before the server (so
// an orchestrator sees the process alive while it restores its read
// models); until then the console answers 503.
type webConsole struct {
	mu  sync.RWMutex
	c   *console.Console
	log zerolog.Logger
}

func (wc *webConsole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wc.mu.RLock()
	c := wc.c
	wc.mu.RUnlock()
	if c == nil {
		w.Header().Set("Retry-After", "2")
		plain(w, http.StatusServiceUnavailable, "licensebus is starting: the console comes up once its read models are restored\n")
		return
	}
	c.ServeHTTP(w, r)
}

// newConsole builds the console of s. With auth, each person signs in
// with credentials and acts on a NATS connection of that identity (the
// NATS server decides what it may see and do, not the console). Without
// auth (serve --no-auth, or an open NATS joined without --creds), everyone
// acts through one connection of the console's, and only from loopback.
func newConsole(s *Server, log zerolog.Logger) (*console.Console, error) {
	cfg := console.Config{VerifyAudit: consoleVerify, Logger: log}
	if s.access.authority == nil && len(s.access.opts) == 0 {
		nc, _, err := s.connect(s.natsURLForConsole(), "console")
		if err != nil {
			return nil, err
		}
		cfg.Shared = nc
	} else {
		cfg.SignIn, cfg.CredsHint = s.consoleSignIn, s.credsFiles().admin
	}
	return console.New(cfg)
}

// natsURLForConsole is where the console's connections go: in process to
// the embedded server (""), else the NATS serve joined.
func (s *Server) natsURLForConsole() string {
	if s.ns != nil {
		return ""
	}
	return s.nc.ConnectedUrl()
}

// consoleSignIn connects as the identity of a creds file uploaded to the
// console (or sent as an API token): an operator, a reader or a
// SmartServer, never the service.
func (s *Server) consoleSignIn(_ context.Context, b []byte, onError nats.ErrHandler) (*nats.Conn, console.Identity, error) {
	c, err := auth.ParseCreds("the credentials given", b)
	if err != nil {
		return nil, console.Identity{}, err
	}
	id := c.Identity()
	if id.Role == auth.Service || id.Name == "" {
		return nil, console.Identity{}, errors.New("sign in with the credentials of an operator, a reader or a SmartServer (licensebus creds issue), not serve's own")
	}
	opts := append([]nats.Option{nats.Name("licensebus console/" + id.Name), nats.Timeout(5 * time.Second), nats.ErrorHandler(onError)}, credsOptions(c)...)
	if s.ns != nil {
		opts = append(opts, nats.InProcessServer(s.ns))
	}
	nc, err := nats.Connect(s.natsURLForConsole(), opts...)
	if err != nil {
		return nil, console.Identity{}, connectError(s.URL(), c, err)
	}
	return nc, console.Identity{Name: id.Name, Role: string(id.Role)}, nil
}

// start puts the console of s on the listener at addr.
func (wc *webConsole) start(s *Server, addr string) error {
	c, err := newConsole(s, wc.log)
	if err != nil {
		return err
	}
	if !loopbackAddr(addr) {
		wc.log.Warn().Str("addr", addr).Msg("the console answers loopback clients only while auth is off")
	}
	wc.mu.Lock()
	wc.c = c
	wc.mu.Unlock()
	wc.log.Info().Str("url", "http://"+addr+"/").Msg("console")
	return nil
}

func (wc *webConsole) close() {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.c != nil {
		wc.c.Close()
	}
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// consoleVerify is audit verify of the live trail, for the console.
func consoleVerify(ctx context.Context, js jetstream.JetStream) (console.Verification, error) {
	var v audit.Verifier
	res, err := verifyTrail(ctx, js, &v, true, nil, nil)
	if err != nil {
		return console.Verification{}, err
	}
	out := console.Verification{Intact: res.Report.Intact, Summary: verifySummary(res), Report: res}
	for _, p := range res.Report.Problems {
		out.Problems = append(out.Problems, fmt.Sprintf("%s at %s: %s", p.Kind, p.Where, p.Detail))
	}
	return out, nil
}
