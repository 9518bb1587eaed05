package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/console"
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

// newConsole builds the console of s, on a connection of its own: the
// one every session of the open console acts through.
func newConsole(s *Server, log zerolog.Logger) (*console.Console, error) {
	url := ""
	if s.ns == nil {
		url = s.nc.ConnectedUrl()
	}
	nc, _, err := s.connect(url, "console")
	if err != nil {
		return nil, err
	}
	return console.New(console.Config{Shared: nc, VerifyAudit: consoleVerify, Logger: log})
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
