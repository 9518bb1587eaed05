package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/rollouts"
)

// buildBinary builds the real licensebus binary once per test run.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "licensebus")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBinary runs `licensebus serve` and waits until it answers queries.
func startBinary(tb testing.TB, bin, dir, addr string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(bin, "serve", "--data", dir, "--listen", addr, "--http", "127.0.0.1:0", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	// A NATS_URL in the caller's environment would make serve join that
	// NATS instead of embedding one.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for cli(tb, url, "projections", "status").code != 0 {
		if time.Now().After(deadline) {
			tb.Fatal("licensebus serve did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd
}

// Ensure kill -9 of `licensebus serve` in the middle of a stream of
// activations loses no accepted command and no event: after a restart every
// command has exactly one outcome, every license is bound once, and the
// views equal a rebuild from the stream.
func TestKillAndRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin, dir, addr := buildBinary(t), t.TempDir(), freeAddr(t)
	url := "nats://" + addr
	srv := startBinary(t, bin, dir, addr)

	c, _ := mustClient(t, url)
	const n = 60
	t0 := time.Now()
	f := mustFleet(t, c, "KILL", n)
	t.Logf("fleet ready after %v", time.Since(t0))
	lids := make([]string, n)
	for i := range lids {
		lids[i] = mustLicense(t, c, f.customer, events.Capacity)
	}
	ids := make([]string, n)
	acked := make([]bool, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}

	// Send activations without waiting and kill the server halfway.
	ctx := ctxFor(t, 60*time.Second)
	for i := range n {
		if i == n/2 {
			if err := srv.Process.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
			_ = srv.Wait()
		}
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := c.Send(sctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[i], LicenseID: lids[i]}, client.SendOptions{ID: ids[i]})
		cancel()
		if err != nil {
			break // the server is gone: the rest were never sent
		}
		acked[i] = true
	}
	if !acked[0] || acked[n-1] {
		t.Fatalf("acked first=%v last=%v; want the kill to fall between them", acked[0], acked[n-1])
	}

	t.Logf("killed after %v", time.Since(t0))
	startBinary(t, bin, dir, addr)
	t.Logf("restarted after %v", time.Since(t0))
	c2, js := mustClient(t, url)
	// A client that got no ack retries with the same id, as clients must.
	for i := range n {
		if !acked[i] {
			if _, err := c2.Send(ctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[i], LicenseID: lids[i]}, client.SendOptions{ID: ids[i]}); err != nil {
				t.Fatalf("retry %d: %v", i, err)
			}
		}
	}
	for i := range n {
		out, err := c2.Wait(ctx, ids[i])
		if err != nil {
			t.Fatalf("activation %d (acked=%v): %v", i, acked[i], err)
		}
		if out.Status != "accepted" {
			t.Fatalf("activation %d: %s %s %s, want accepted", i, out.Status, out.Reason, out.Message)
		}
		if got := subjectCount(t, js, events.EventsStream, "lb.evt.license."+lids[i]+".bound"); got != 1 {
			t.Fatalf("license %d bound %d times, want 1", i, got)
		}
		if got := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver."+f.servers[i]+".license_activated"); got != 1 {
			t.Fatalf("SmartServer %d activated %d times, want 1", i, got)
		}
	}
	t.Logf("outcomes checked after %v", time.Since(t0))
	caughtUp(t, c2)
	live := views(t, c2)
	if r := cli(t, url, "projections", "rebuild"); r.code != 0 {
		t.Fatalf("rebuild: %s", r.err)
	}
	caughtUp(t, c2)
	diff(t, "view after restart vs rebuild", views(t, c2), live)
}

// Ensure kill -9 in the middle of a rollout loses nothing: after a restart
// the rollout resumes where it stood and completes, every target is
// activated exactly once, and no license is bound twice.
func TestKillMidRolloutResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin, dir, addr := buildBinary(t), t.TempDir(), freeAddr(t)
	url := "nats://" + addr
	srv := startBinary(t, bin, dir, addr)
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-KILL")
	const n = 24
	pool(t, c, cid, n, 0)
	ics := registered(t, c, "KR", n)
	id := mustCLI(t, url, "rollout", "start", "--customer", cid, "--targets", targetsFile(t, ics), "--set-customer-id",
		"--activate", "capacity:200", "--concurrency", "4", "--rate", "1200/min", "--wave-size", "8")

	ctx := ctxFor(t, 30*time.Second)
	for {
		var d rollouts.Detail
		if err := c.Query(ctx, client.QueryRollout, client.Params{RolloutID: id}, &d); err == nil && d.Counts.Succeeded >= n/3 {
			if d.Status != "running" || d.Counts.Succeeded >= n {
				t.Fatalf("rollout %s %+v before the kill; the test wants it under way", d.Status, d.Counts)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("rollout made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()

	startBinary(t, bin, dir, addr)
	c2, js := mustClient(t, url)
	d := waitRollout(t, c2, id, "completed", "aborted")
	if d.Status != "completed" || d.Counts.Succeeded != n {
		t.Fatalf("after kill and restart: %s %+v, want all %d succeeded", d.Status, d.Counts, n)
	}
	for _, ic := range ics {
		if k := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver."+ic+".license_activated"); k != 1 {
			t.Fatalf("target %s activated %d times, want exactly once", ic, k)
		}
	}
	if b := subjectCount(t, js, events.EventsStream, "lb.evt.license.*.bound"); b != n {
		t.Fatalf("licenses bound %d times, want %d (each once)", b, n)
	}
}
