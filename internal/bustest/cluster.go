package bustest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of nats-servers in the test's process,
// formed as nats-server's own tests form one: each server named, with a
// store directory of its own, a cluster listener and routes to the others.
// It runs in operator mode, as the operator of a NATS that licensebus joins
// sets it up (docs/identities.md): every server trusts one operator and
// holds the system and licensebus accounts' JWTs in its resolver.
type Cluster struct {
	tb      testing.TB
	opts    []*server.Options
	servers []*server.Server
	// ServiceCreds is a creds file of the service (serve --creds), signed
	// by the account's own key; AdminCreds one of an operator (the CLI's
	// --creds), signed by that role's scoped key.
	ServiceCreds, AdminCreds string
	account                  string // the licensebus account's public key
}

// NewCluster starts n servers on loopback and waits until they have a
// JetStream meta leader; they stop when the test ends. Raft elections
// take seconds: allow for it.
func NewCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(tb)
	}
	dir := tb.TempDir()
	a, _, err := auth.OpenAuthority(filepath.Join(dir, "auth"))
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{tb: tb, opts: make([]*server.Options, n), servers: make([]*server.Server, n),
		ServiceCreds: filepath.Join(dir, "service.creds"), AdminCreds: filepath.Join(dir, "admin.creds"), account: a.Account()}
	if err := a.IssueCreds(c.ServiceCreds, auth.Identity{Name: "service", Role: auth.Service}); err != nil {
		tb.Fatal(err)
	}
	if err := a.IssueCreds(c.AdminCreds, auth.Identity{Name: "admin", Role: auth.Operator}); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		c.opts[i] = &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       freePort(tb),
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 8 << 20,
			Cluster:    server.ClusterOpts{Name: "licensebus-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		// Each server its own resolver, as separate processes have.
		a.Configure(c.opts[i])
	}
	for i := range n {
		c.Start(i)
	}
	tb.Cleanup(func() {
		for i := range c.servers {
			c.Stop(i)
		}
	})
	c.WaitMeta()
	return c
}

// freePort is a loopback port nobody listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts server i (again, after Stop: same name, ports and store).
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	o := *c.opts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		c.tb.Fatalf("cluster server %d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		c.tb.Fatalf("cluster server %d not ready", i)
	}
	c.servers[i] = s
}

// Stop shuts server i down, as a crash of its process would for the
// others (its store stays for Start).
func (c *Cluster) Stop(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
	}
}

// Server is server i, nil while stopped.
func (c *Cluster) Server(i int) *server.Server { return c.servers[i] }

// Index is the index of the server named name, -1 if none.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// URLs lists every server's client URL, comma-separated, as --nats takes
// them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// WaitMeta waits until the running servers agree on a JetStream meta
// leader and each has the licensebus account with JetStream enabled.
func (c *Cluster) WaitMeta() {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leader, current := false, true
		for _, s := range c.servers {
			if s == nil {
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
			// The account's JetStream is enabled once the server has
			// resolved the account: before that, a client's first stream
			// is refused "JetStream not enabled for account" (failed once).
			if acc, err := s.LookupAccount(c.account); err != nil || !acc.JetStreamEnabled() {
				current = false
			}
		}
		if leader && current {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.tb.Fatal("cluster: no JetStream meta leader, or the account's JetStream not enabled, within 30s")
}
