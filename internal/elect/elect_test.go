package elect_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// process is one elector and what its job saw.
type process struct {
	e       *elect.Elector
	cancel  context.CancelFunc // ends Lead: a handover
	leading atomic.Bool
	terms   atomic.Int32
	ended   chan struct{} // closed when the current term's job ctx ended
	mu      sync.Mutex
}

func start(t *testing.T, js jetstream.JetStream, name string, ttl time.Duration) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := elect.New(ctx, elect.Config{JS: js, Node: name, TTL: ttl, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	p := &process{e: e, cancel: cancel}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.Run(ctx) }()
	go func() {
		defer wg.Done()
		_ = e.Lead(ctx, "test-job", func(ctx context.Context) error {
			ended := make(chan struct{})
			p.mu.Lock()
			p.ended = ended
			p.mu.Unlock()
			p.terms.Add(1)
			p.leading.Store(true)
			<-ctx.Done()
			p.leading.Store(false)
			close(ended)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func (p *process) endedCh() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure exactly one of two processes leads a job, keeps it past the TTL by
// renewing it, and hands it over to the other at once when it stops.
func TestOneLeaderRenewsAndHandsOver(t *testing.T) {
	js := bustest.JetStream(t)
	ttl := 2 * time.Second
	a := start(t, js, "node-a", ttl)
	waitFor(t, "a leads", 20*time.Second, a.leading.Load)
	b := start(t, js, "node-b", ttl)

	// Over three TTLs, b never leads: a's renewals carry the TTL forward.
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b.leading.Load() {
			t.Fatal("b leads while a holds the lease")
		}
		if !a.leading.Load() {
			t.Fatal("a lost a lease it renews")
		}
	}
	_, jobs, err := elect.Status(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Node != "node-a" || jobs[0].Job != "test-job" {
		t.Fatalf("jobs=%+v, want test-job on node-a", jobs)
	}

	// a stops: its job ends before b's starts, and b needs no TTL to wait.
	a.cancel()
	waitFor(t, "b leads after a's handover", ttl, b.leading.Load)
	if a.leading.Load() {
		t.Fatal("a still leads after b took over")
	}
}

// Ensure a process that stops renewing (paused) loses the job to another
// once the lease expires, and that its own job is stopped as soon as it
// runs again and finds the lease gone.
func TestPausedLeaderLosesTheJob(t *testing.T) {
	js := bustest.JetStream(t)
	ttl := 2 * time.Second
	a := start(t, js, "node-a", ttl)
	waitFor(t, "a leads", 20*time.Second, a.leading.Load)
	b := start(t, js, "node-b", ttl)

	a.e.Pause(true)
	waitFor(t, "b takes over from the paused a", 20*time.Second, b.leading.Load)
	if !a.leading.Load() {
		t.Fatal("a's job stopped while a was paused; a paused process does nothing")
	}
	ended := a.endedCh()
	a.e.Pause(false)
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("a's job still runs after a resumed and its lease is gone")
	}
	if !b.leading.Load() || b.terms.Load() != 1 {
		t.Fatalf("b leading=%v terms=%d, want b still in its first term", b.leading.Load(), b.terms.Load())
	}
	// a's node record is written again at its next renewal after the
	// pause: until then it may still be the one from its start.
	var nodes []elect.NodeStatus
	campaigning := func() bool {
		var err error
		if nodes, _, err = elect.Status(context.Background(), js); err != nil {
			t.Fatal(err)
		}
		return len(nodes) == 2 && nodes[0].Name == "node-a" && nodes[1].Name == "node-b" && len(nodes[0].Jobs) == 1 && len(nodes[1].Jobs) == 1
	}
	deadline := time.Now().Add(4 * ttl)
	for !campaigning() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !campaigning() {
		t.Fatalf("nodes=%+v, want node-a and node-b, each campaigning for one job", nodes)
	}
}
