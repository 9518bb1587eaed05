package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// logBuffer collects a server's log lines, written from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged starts a server on dir with cfg and its log in a buffer.
func startLogged(tb testing.TB, cfg ServeConfig) (*Server, *logBuffer) {
	tb.Helper()
	log := &logBuffer{}
	cfg.Listen, cfg.Logger = "127.0.0.1:-1", zerolog.New(log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartServer(ctx, cfg)
	if err != nil {
		tb.Fatalf("StartServer: %v\n%s", err, log.String())
	}
	tb.Cleanup(s.Close)
	return s, log
}

// Ensure serve runs the embedded server in operator mode by default: it
// refuses connections without credentials, writes the operator's and the
// service's creds files (0600) on first start, says where, and keeps them
// across restarts.
func TestServeWritesCredentials(t *testing.T) {
	dir := t.TempDir()
	s, log := startLogged(t, ServeConfig{DataDir: dir})
	admin := filepath.Join(dir, adminCredsFile)
	for _, f := range []string{admin, filepath.Join(dir, serviceCredsRel), filepath.Join(dir, authDir, "account.nk")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want a 0600 file", f, fi.Mode().Perm(), err)
		}
	}
	if !strings.Contains(log.String(), admin) {
		t.Errorf("the log does not name %s:\n%s", admin, log.String())
	}
	if _, err := nats.Connect(s.URL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}
	before, _ := os.ReadFile(admin)
	s.Close()

	s, _ = startLogged(t, ServeConfig{DataDir: dir})
	if after, _ := os.ReadFile(admin); !bytes.Equal(before, after) {
		t.Fatal("a restart replaced admin.creds")
	}
	nc, err := nats.Connect(s.URL(), mustCredsOptions(t, admin)...)
	if err != nil {
		t.Fatalf("admin.creds after a restart: %v", err)
	}
	defer nc.Close()
}

// Ensure the streams written without auth are the licensebus account's
// when serve starts with auth on the same data, and back with --no-auth.
func TestAuthKeepsTheStreams(t *testing.T) {
	dir := t.TempDir()
	s, _ := startLogged(t, ServeConfig{DataDir: dir, NoAuth: true})
	c, _ := mustClient(t, s.URL())
	mustCustomer(t, c, "before auth")
	s.Close()

	count := func(s *Server, opts ...nats.Option) uint64 {
		t.Helper()
		nc, err := nats.Connect(s.URL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		return subjectCount(t, js, events.EventsStream, "lb.evt.customer.>")
	}
	s, _ = startLogged(t, ServeConfig{DataDir: dir})
	if n := count(s, mustCredsOptions(t, filepath.Join(dir, adminCredsFile))...); n != 1 {
		t.Fatalf("%d customer events with auth on, want the one written without", n)
	}
	s.Close()
	s, log := startLogged(t, ServeConfig{DataDir: dir, NoAuth: true})
	if n := count(s); n != 1 {
		t.Fatalf("%d customer events with --no-auth again, want 1", n)
	}
	if !strings.Contains(log.String(), "AUTH IS OFF") {
		t.Errorf("--no-auth did not warn:\n%s", log.String())
	}
}

func mustCredsOptions(tb testing.TB, path string) []nats.Option {
	tb.Helper()
	c, err := auth.ReadCreds(path)
	if err != nil {
		tb.Fatal(err)
	}
	return credsOptions(c)
}
