package auth_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/handlers/cloud"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/handlers/driver"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Ensure the names the roles are written with are the names the streams
// and buckets have.
func TestRoleNamesMatchTheStreams(t *testing.T) {
	var views []string
	for _, m := range []projections.Model{licensing.New(time.Now), devices.New(), rollouts.New(), licensing.NewOutcomes()} {
		views = append(views, projections.Bucket(m))
	}
	if !slices.Equal(views, auth.ViewBuckets) {
		t.Errorf("view buckets %v, roles name %v", views, auth.ViewBuckets)
	}
	readable := auth.ReadableStreams()
	for _, s := range []string{audit.Stream, audit.CheckpointStream, "KV_" + bus.ReactorsBucket, "KV_" + elect.Bucket} {
		if !slices.Contains(readable, s) {
			t.Errorf("readable streams %v lack %s", readable, s)
		}
	}
	if want := []string{device.CommandsConsumer, cloud.CommandsConsumer, driver.CommandsConsumer}; !slices.Equal(want, auth.ServiceDurables) {
		t.Errorf("service durables %v, roles keep %v out of reach", want, auth.ServiceDurables)
	}
	if !strings.HasPrefix(audit.Subject, "lb.audit.") {
		t.Errorf("audit subject %s is not under lb.audit.", audit.Subject)
	}
}

// Ensure the keys are created once, as 0600 files in a 0700 directory,
// and found again on the next start.
func TestAuthorityKeptInFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	a, created, err := auth.OpenAuthority(dir)
	if err != nil || !created {
		t.Fatalf("OpenAuthority: created %v, %v", created, err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 9 {
		t.Fatalf("%d files in %s, want 9", len(files), dir)
	}
	for _, f := range files {
		info, _ := f.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f.Name(), info.Mode().Perm())
		}
	}
	b, created, err := auth.OpenAuthority(dir)
	if err != nil || created || b.Account() != a.Account() {
		t.Fatalf("reopen: created %v, account %s (was %s), %v", created, b.Account(), a.Account(), err)
	}
	// A revocation survives a restart: it is in the account JWT on disk.
	if _, err := b.Revoke("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", time.Now()); err != nil {
		t.Fatal(err)
	}
	c, _, err := auth.OpenAuthority(dir)
	if err != nil || c.AccountJWT() != b.AccountJWT() {
		t.Fatalf("account JWT after revocation not kept: %v", err)
	}
}

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// trusted is an embedded server in operator mode with its authority.
type trusted struct {
	a        *auth.Authority
	ns       *server.Server
	refusals *auth.Refusals
	log      *syncBuffer
	sys      *nats.Conn
	reg      *auth.Registry
}

func startTrusted(t *testing.T) *trusted {
	t.Helper()
	a, _, err := auth.OpenAuthority(filepath.Join(t.TempDir(), "auth"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &trusted{a: a, log: &syncBuffer{}}
	log := zerolog.New(tr.log)
	tr.refusals = auth.NewRefusals(log)
	tr.refusals.Revoked = a.Revoked
	tr.ns, err = bus.StartServer(bus.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerLogger: tr.refusals.ServerLogger(log), Configure: a.Configure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.ns.Shutdown(); tr.ns.WaitForShutdown() })
	token, seed, err := a.SystemUser()
	if err != nil {
		t.Fatal(err)
	}
	if tr.sys, err = nats.Connect(tr.ns.ClientURL(), nats.UserJWTAndSeed(token, string(seed))); err != nil {
		t.Fatalf("system user: %v", err)
	}
	t.Cleanup(tr.sys.Close)
	if _, err := tr.refusals.Follow(tr.sys); err != nil {
		t.Fatal(err)
	}
	js := tr.jetStream(t, tr.user(t, auth.Identity{Name: "serve", Role: auth.Service}, time.Time{}))
	if err := bus.EnsureStreams(ctx(t), js); err != nil {
		t.Fatal(err)
	}
	if tr.reg, err = auth.OpenRegistry(ctx(t), js, 1); err != nil {
		t.Fatal(err)
	}
	tr.refusals.Who = func(pub string) (auth.Identity, bool) {
		r, ok := tr.reg.Lookup(pub)
		return auth.Identity{Name: r.Name, Role: r.Role}, ok
	}
	return tr
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// creds issues and records a user and writes its creds file.
func (tr *trusted) creds(t *testing.T, id auth.Identity, expires time.Time) string {
	t.Helper()
	token, seed, err := tr.a.Signer(id.Role).NewUser(id, expires)
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.ParseCreds("", mustFormat(t, token, seed))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.reg.Issue(ctx(t), tr.a.Signer(id.Role), id, c.Claims.Subject, expires); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id.Name+".creds")
	if err := auth.WriteCreds(path, token, seed); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustFormat(t *testing.T, token string, seed []byte) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.creds")
	if err := auth.WriteCreds(path, token, seed); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// user connects a new user of the identity; permission errors go to errs.
func (tr *trusted) user(t *testing.T, id auth.Identity, expires time.Time) *nats.Conn {
	t.Helper()
	token, seed, err := tr.a.Signer(id.Role).NewUser(id, expires)
	if err != nil {
		t.Fatal(err)
	}
	opts := []nats.Option{nats.UserJWTAndSeed(token, string(seed))}
	if id.Role != auth.Service {
		opts = append(opts, nats.CustomInboxPrefix(auth.InboxPrefix(id.Name)))
	}
	nc, err := nats.Connect(tr.ns.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", id.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (tr *trusted) jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Ensure the server trusts only users the account signs: no credentials
// are refused, the service may do anything, and each refusal is counted
// and logged with who it was.
func TestOperatorMode(t *testing.T) {
	tr := startTrusted(t)
	if _, err := nats.Connect(tr.ns.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}
	waitFor(t, "the refused connection counted", func() bool { return tr.refusals.Connections() == 1 })
	if !strings.Contains(tr.log.String(), `"why":"no credentials"`) {
		t.Errorf("log lacks the refused connection:\n%s", tr.log.String())
	}

	// A SmartServer publishing an event is refused by the server; the
	// refusal is counted and logged with its name.
	path := tr.creds(t, auth.Identity{Name: "IC-0001", Role: auth.SmartServer}, time.Time{})
	denied := make(chan error, 4)
	nc, err := nats.Connect(tr.ns.ClientURL(), nats.UserCredentials(path), nats.CustomInboxPrefix(auth.InboxPrefix("IC-0001")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("lb.evt.license.x.bound", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("async error %v, want a permission violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publishing an event as a SmartServer was not refused")
	}
	waitFor(t, "the violation counted", func() bool { return tr.refusals.Permissions() == 1 })
	// The count goes up as the line is written.
	waitFor(t, "the violation logged with the identity", func() bool {
		log := tr.log.String()
		return strings.Contains(log, `"identity":"IC-0001"`) && strings.Contains(log, `"role":"smartserver"`) && strings.Contains(log, "Publish Violation")
	})
}

// Ensure revoking a connected user closes its connection at once and
// refuses it from then on.
func TestRevokeClosesLiveConnections(t *testing.T) {
	tr := startTrusted(t)
	path := tr.creds(t, auth.Identity{Name: "IC-0002", Role: auth.SmartServer}, time.Time{})
	closed := make(chan struct{})
	nc, err := nats.Connect(tr.ns.ClientURL(), nats.UserCredentials(path), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rec, err := tr.reg.Revoke(ctx(t), "IC-0002", tr.a.Revoker(tr.sys))
	if err != nil || !rec.Revoked {
		t.Fatalf("revoke: %+v, %v", rec, err)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the revoked SmartServer's connection is still open after 2s")
	}
	if _, err := nats.Connect(tr.ns.ClientURL(), nats.UserCredentials(path)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect after revocation: %v, want an authorization violation", err)
	}
	waitFor(t, "the refusal logged as a revocation", func() bool { return strings.Contains(tr.log.String(), `"why":"revoked"`) })
	// The name is free again, for new credentials.
	if _, _, err := tr.reg.Issue(ctx(t), tr.a.Signer(auth.SmartServer), auth.Identity{Name: "IC-0002", Role: auth.SmartServer}, "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", time.Time{}); err != nil {
		t.Fatalf("issue after revocation: %v", err)
	}
}

// Ensure a name has one set of live credentials at a time.
func TestNameTakenUntilRevoked(t *testing.T) {
	tr := startTrusted(t)
	tr.creds(t, auth.Identity{Name: "audit-team", Role: auth.Reader}, time.Time{})
	_, _, err := tr.reg.Issue(ctx(t), tr.a.Signer(auth.Operator), auth.Identity{Name: "audit-team", Role: auth.Operator}, "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", time.Time{})
	if !errors.Is(err, auth.ErrNameInUse) {
		t.Fatalf("second issue of a name: %v, want ErrNameInUse", err)
	}
	if _, err := tr.reg.Revoke(ctx(t), "nobody", nil); !errors.Is(err, auth.ErrUnknown) {
		t.Fatalf("revoke unknown: %v, want ErrUnknown", err)
	}
}

// Ensure expired credentials are closed and then refused.
func TestExpiry(t *testing.T) {
	tr := startTrusted(t)
	expires := time.Now().Add(2 * time.Second)
	path := tr.creds(t, auth.Identity{Name: "temp", Role: auth.Reader}, expires)
	closed := make(chan struct{})
	nc, err := nats.Connect(tr.ns.ClientURL(), nats.UserCredentials(path), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection outlived its credentials")
	}
	// The server closes it on a timer that may fire early within the
	// JWT's last second: past that second it refuses.
	time.Sleep(time.Until(expires.Truncate(time.Second).Add(time.Second)))
	if _, err := nats.Connect(tr.ns.ClientURL(), nats.UserCredentials(path)); err == nil || !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "expired") {
		t.Fatalf("connect with expired credentials: %v, want them refused as expired", err)
	}
	waitFor(t, "the refusal logged as an expiry", func() bool { return strings.Contains(tr.log.String(), `"why":"expired"`) })
}

// Ensure a creds file is checked before use and each defect is named.
func TestCredsFile(t *testing.T) {
	a, _, err := auth.OpenAuthority(filepath.Join(t.TempDir(), "auth"))
	if err != nil {
		t.Fatal(err)
	}
	token, seed, err := a.Signer(auth.SmartServer).NewUser(auth.Identity{Name: "IC-0003", Role: auth.SmartServer}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "IC-0003.creds")
	if err := auth.WriteCreds(path, token, seed); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("creds file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := auth.WriteCreds(path, token, seed); !errors.Is(err, os.ErrExist) {
		t.Fatalf("overwrite: %v, want it refused", err)
	}
	c, err := auth.ReadCreds(path)
	if err != nil {
		t.Fatal(err)
	}
	if id := c.Identity(); id.Name != "IC-0003" || id.Role != auth.SmartServer || c.InboxPrefix() != "_INBOX.lb.IC-0003" {
		t.Fatalf("identity %+v, inbox %q", id, c.InboxPrefix())
	}
	good, _ := os.ReadFile(path)
	_, otherSeed, _ := a.Signer(auth.Reader).NewUser(auth.Identity{Name: "other", Role: auth.Reader}, time.Time{})
	// Tampering: the permissions in the JWT's payload made wider.
	payload := strings.Split(token, ".")[1]
	tampered := strings.Replace(string(good), payload, payload[:10]+"A"+payload[11:], 1)
	if payload[10] == 'A' {
		tampered = strings.Replace(string(good), payload, payload[:10]+"B"+payload[11:], 1)
	}
	for _, tt := range []struct {
		name, contents, want string
	}{
		{"tampered JWT", tampered, "user JWT is not valid"},
		{"another key's seed", strings.Replace(string(good), string(seed), string(otherSeed), 1), "not the key of its JWT"},
		{"no seed", strings.Split(string(good), "*****")[0], "no user seed"},
		{"not a creds file", "hello", "no user JWT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := auth.ParseCreds("x", []byte(tt.contents)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseCreds: %v, want %q", err, tt.want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
