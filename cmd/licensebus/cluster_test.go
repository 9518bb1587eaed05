package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/cloud"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/handlers/driver"
	"github.com/licensebus/licensebus/handlers/provisioner"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Cluster tests: a 3-server JetStream cluster in the test process and two
// licensebus nodes joined to it. Raft elections and lease expiries take
// seconds: timeouts are generous, and there are few of these tests.

// testLeaseTTL is the nodes' lease TTL: failover after a crash takes
// about that long.
const testLeaseTTL = 3 * time.Second

// clusterJobs are the jobs a node campaigns for (with the provisioner).
var clusterJobs = []string{AuditJob, projections.Job, driver.Job,
	"reactor/" + cloud.RequestsReactor, "reactor/" + device.AnswersReactor, "reactor/" + provisioner.TriggersReactor}

// newCluster starts a 3-server cluster in operator mode and returns its
// URLs; cli, mustClient and mustNode connect to them with its operator's
// and its service's creds files, as a user and serve --creds would.
func newCluster(tb testing.TB) (*bustest.Cluster, string) {
	tb.Helper()
	c := bustest.NewCluster(tb, 3)
	urls := c.URLs()
	serverCreds.Store(urls, credsFiles{admin: c.AdminCreds, service: c.ServiceCreds})
	tb.Cleanup(func() { serverCreds.Delete(urls) })
	return c, urls
}

// mustNode starts a licensebus node named name joined to the NATS at urls
// as the service, with the signing keys of another node (a cluster shares
// one key), or a data directory for keys of its own.
func mustNode(tb testing.TB, urls, name string, batch int, signingKeys ...string) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := ServeConfig{NatsURL: urls, Creds: credsOf(urls).service, Name: name, Batch: batch, LeaseTTL: testLeaseTTL, Logger: testLogger(tb), SigningKeys: signingKeys}
	if len(signingKeys) == 0 {
		cfg.DataDir = tb.TempDir()
	}
	s, err := StartServer(ctx, cfg)
	if err != nil {
		tb.Fatalf("StartServer(%s): %v", name, err)
	}
	tb.Cleanup(s.Close)
	return s
}

// crash stops a node as SIGKILL would for everyone else: its connections
// close at once, nothing is handed over, nothing more is written.
func crash(s *Server) {
	for _, nc := range s.conns {
		nc.Close()
	}
	s.Close()
}

// waitJobs waits until node holds every job (any node, for ""), as
// cluster status tells it.
func waitJobs(tb testing.TB, js jetstream.JetStream, node string) clusterJSON {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st clusterJSON
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err = readCluster(ctx, js)
		cancel()
		held := map[string]string{}
		for _, j := range st.Jobs {
			name := j.Job
			if strings.HasPrefix(name, projections.Job+"/") {
				name = projections.Job
			}
			held[name] = j.Node
		}
		all := err == nil
		for _, j := range clusterJobs {
			all = all && held[j] != "" && (node == "" || held[j] == node)
		}
		if all {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("jobs not all held by %q within 60s: %+v (%v)", node, st.Jobs, err)
	return st
}

// Ensure two nodes on a 3-server cluster run each singleton job once, on
// streams and buckets with 3 replicas; that when the node running them is
// killed the other takes every job over while commands keep coming; and
// that nothing acknowledged is lost, nothing is done twice, and the audit
// trail stays whole.
func TestClusterFailover(t *testing.T) {
	_, urls := newCluster(t)
	a := mustNode(t, urls, "node-a", 0)
	cl, js := mustClient(t, urls)
	waitJobs(t, js, "node-a")
	mustNode(t, urls, "node-b", 0, a.SigningKeyFile())

	var st clusterJSON
	waitFor(t, func() bool { st = waitJobs(t, js, "node-a"); return len(st.Nodes) == 2 })
	if len(st.Nodes) != 2 || st.Nodes[0].Name != "node-a" || st.Nodes[1].Name != "node-b" {
		t.Fatalf("nodes=%+v, want node-a and node-b", st.Nodes)
	}
	waitFor(t, func() bool { // a stream just created may not answer yet
		st.NATS, _ = readNATS(ctxFor(t, 10*time.Second), js)
		for _, s := range st.NATS.Streams {
			if s.Replicas == 0 {
				return false
			}
		}
		return true
	})
	for _, s := range st.NATS.Streams {
		if s.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3 (3 JetStream servers)", s.Name, s.Replicas)
		}
	}
	if len(st.NATS.Servers) != 3 {
		t.Errorf("NATS servers=%+v, want the three", st.NATS.Servers)
	}

	f := mustFleet(t, cl, "FO", 8)
	// Commands keep coming while node-a dies: each activation is sent and
	// its id kept once JetStream acknowledged it.
	var mu sync.Mutex
	var acked []string
	lids := make([]string, 0, 16)
	for range 16 {
		lids = append(lids, mustLicense(t, cl, f.customer, events.Capacity))
	}
	sendCtx := ctxFor(t, 120*time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, lid := range lids {
			id := uuid.NewString()
			ic := f.servers[i%len(f.servers)]
			if _, err := cl.Send(sendCtx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, client.SendOptions{ID: id}); err != nil {
				t.Errorf("send activation %d: %v", i, err)
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
			time.Sleep(150 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	crash(a)
	waitJobs(t, js, "node-b")
	wg.Wait()

	// Every acknowledged command has its outcome, written by node-b.
	for _, id := range acked {
		out, err := cl.Wait(ctxFor(t, 60*time.Second), id)
		if err != nil {
			t.Fatalf("activation %s acknowledged but no outcome: %v", id, err)
		}
		if out.Status != "accepted" {
			t.Errorf("activation %s: %s %s, want accepted", id, out.Status, out.Message)
		}
	}
	if len(acked) != len(lids) {
		t.Fatalf("%d activations acknowledged, want %d", len(acked), len(lids))
	}
	for _, lid := range lids {
		if n := subjectCount(t, js, events.EventsStream, "lb.evt.license."+lid+".bound"); n != 1 {
			t.Errorf("license %s bound %d times, want once", lid, n)
		}
	}
	waitAudited(t, js)
	if r := verifyTrailCLI(t, urls); r.code != exitOK {
		t.Fatalf("audit verify after the failover: exit %d, %s %s", r.code, r.out, r.err)
	}
	var status clusterJSON
	mustJSON(t, urls, &status, "cluster", "status")
	for _, j := range status.Jobs {
		if j.Node != "node-b" || j.Since == nil {
			t.Errorf("cluster status job %+v, want it on node-b", j)
		}
	}
}

// Ensure a node whose lease renewals stop (a paused process: its
// connection stays open, its jobs keep running) loses every job to the
// other once the leases expire, and that its late writes are refused by
// the fences the new holder moved: the view buckets' write chains, the
// reactors' checkpoint revisions, the audit stream's expected sequence.
// Nothing is done twice and the trail verifies.
func TestClusterFencing(t *testing.T) {
	_, urls := newCluster(t)
	a := mustNode(t, urls, "node-a", 0)
	cl, js := mustClient(t, urls)
	waitJobs(t, js, "node-a")
	b := mustNode(t, urls, "node-b", 0, a.SigningKeyFile())
	waitJobs(t, js, "node-a")
	f := mustFleet(t, cl, "FN", 2)
	mustDo(t, cl, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[0], LicenseID: mustLicense(t, cl, f.customer, events.Capacity)})

	a.elector.Pause(true)
	waitJobs(t, js, "node-b")
	if len(a.elector.Leading()) != len(clusterJobs) || !a.runner.Leading() {
		t.Fatalf("node-a leads %v while paused; a paused process goes on as it was", a.elector.Leading())
	}

	// Both nodes fold what comes now; node-a still writes as if it led.
	var lids []string
	for i := range 4 {
		lid := mustLicense(t, cl, f.customer, events.Capacity)
		lids = append(lids, lid)
		mustDo(t, cl, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[i%2], LicenseID: lid})
	}
	waitFor(t, func() bool { return a.runner.Fenced() > 0 })
	if a.runner.Leading() {
		t.Fatal("node-a's projections still write after a refused write")
	}
	if b.runner.Fenced() != 0 || !b.runner.Leading() {
		t.Fatalf("node-b: fenced %d, leading %v; want it writing, never refused", b.runner.Fenced(), b.runner.Leading())
	}

	// node-a's reactors reacted too (the appends' expectations let one
	// of each pair through), but their checkpoints were refused.
	waitFor(t, func() bool { return a.feed.Fenced() > 0 })
	if b.feed.Fenced() != 0 {
		t.Fatalf("node-b's reactor checkpoints refused %d times, want never", b.feed.Fenced())
	}

	a.elector.Pause(false)
	waitFor(t, func() bool { return len(a.elector.Leading()) == 0 })
	waitJobs(t, js, "node-b")
	for _, lid := range lids {
		if n := subjectCount(t, js, events.EventsStream, "lb.evt.license."+lid+".bound"); n != 1 {
			t.Errorf("license %s bound %d times, want once", lid, n)
		}
	}
	caughtUp(t, cl)
	waitAudited(t, js)
	if r := verifyTrailCLI(t, urls); r.code != exitOK {
		t.Fatalf("audit verify after the split: exit %d, %s %s", r.code, r.out, r.err)
	}
	// The buckets hold what a rebuild from the stream writes.
	live := buckets(t, js)
	mustCLI(t, urls, "projections", "rebuild")
	caughtUp(t, cl)
	diff(t, "entry after rebuild", anyMap(buckets(t, js)), anyMap(live))
}

// Ensure the manual, the race for one license and a repeated command work
// against two nodes on a 3-server cluster as on one process.
func TestClusterWalkthrough(t *testing.T) {
	_, urls := newCluster(t)
	a := mustNode(t, urls, "node-a", 1)
	_, js := mustClient(t, urls)
	mustNode(t, urls, "node-b", 1, a.SigningKeyFile())
	waitJobs(t, js, "")
	t.Run("manual", func(t *testing.T) { manualWalkthrough(t, urls) })
	t.Run("race", func(t *testing.T) { concurrentActivations(t, urls) })
	t.Run("repeat", func(t *testing.T) { repeatedCommand(t, urls) })
}

// verifyTrailCLI runs audit verify, again after an exit 3 (a JetStream
// request of the CLI unanswered while the cluster settles after a crash):
// only a refusal (exit 1) says the trail is not whole.
func verifyTrailCLI(tb testing.TB, urls string) result {
	tb.Helper()
	r := cli(tb, urls, "audit", "verify")
	for i := 0; i < 5 && r.code == exitInternal; i++ {
		time.Sleep(time.Second)
		r = cli(tb, urls, "audit", "verify")
	}
	return r
}

// Ensure a deployment with one replica per stream, on a 3-server cluster,
// is scaled to three by serve --replicas 3, which says so for each stream,
// and that a node started afterwards with the default keeps three.
func TestClusterScaleUp(t *testing.T) {
	_, urls := newCluster(t)
	ctx := ctxFor(t, 60*time.Second)
	one, err := StartServer(ctx, ServeConfig{NatsURL: urls, Creds: credsOf(urls).service, Name: "node-a", Replicas: 1, DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	key := one.SigningKeyFile()
	_, js := mustClient(t, urls)
	replicas := func() map[string]int {
		st, err := readNATS(ctxFor(t, 10*time.Second), js)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, s := range st.Streams {
			out[s.Name] = s.Replicas
		}
		return out
	}
	for name, n := range replicas() {
		if n != 1 {
			t.Fatalf("stream %s has %d replicas with --replicas 1", name, n)
		}
	}
	one.Close()

	var logs syncBuffer
	three, err := StartServer(ctx, ServeConfig{NatsURL: urls, Creds: credsOf(urls).service, Name: "node-a", Replicas: 3, SigningKeys: []string{key}, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	// Streams whose replicas are moving answer a moment later.
	var got map[string]int
	waitFor(t, func() bool {
		got = replicas()
		for _, n := range got {
			if n != 3 {
				return false
			}
		}
		return len(got) >= 9
	})
	for _, name := range []string{events.CommandsStream, events.EventsStream, "KV_licensebus_view_outcomes", "KV_licensebus_reactors", "LICENSEBUS_AUDIT"} {
		if got[name] != 3 {
			t.Errorf("stream %s has %d replicas after --replicas 3, want 3 (%v)", name, got[name], got)
		}
		if !strings.Contains(logs.String(), `"stream":"`+name+`","from":1,"to":3,"message":"stream scaled to the replicas asked for"`) {
			t.Errorf("no log line saying %s was scaled from 1 to 3", name)
		}
	}
	three.Close()

	// The default on a 3-server cluster never scales down.
	mustNode(t, urls, "node-b", 0, key)
	for name, n := range replicas() {
		if n != 3 {
			t.Errorf("stream %s has %d replicas after a start with the default, want 3", name, n)
		}
	}
}
