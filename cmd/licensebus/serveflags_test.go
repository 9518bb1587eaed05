package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ensure an explicit flag wins over the environment: serve --listen (or
// --data) in a shell where NATS_URL is set runs the embedded server and
// says NATS_URL was ignored, rather than trying to join NATS_URL (before,
// restarting a crashed embedded server from that shell failed); and
// --nats with --listen is refused as a usage error.
func TestServeListenWinsOverNATSURL(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	env := func(k string) string {
		if k == "NATS_URL" {
			return "nats://127.0.0.1:1" // nothing listens there
		}
		return ""
	}
	var out, errb syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--data", dir, "--name", "solo", "--http", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb, env)
	}()
	// serve writes its admin's creds under --data: the CLI uses them.
	serverCreds.Store("nats://"+addr, credsFiles{filepath.Join(dir, adminCredsFile), filepath.Join(dir, serviceCredsRel)})
	deadline := time.Now().Add(60 * time.Second)
	for cli(t, "nats://"+addr, "projections", "status").code != exitOK {
		select {
		case code := <-done:
			t.Fatalf("serve --listen with NATS_URL set exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve --listen did not come up: %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(errb.String(), "NATS_URL ignored") {
		t.Errorf("serve log %q does not say NATS_URL was ignored", errb.String())
	}
	stop()
	if code := <-done; code != exitOK {
		t.Errorf("serve stopped with exit %d, want %d", code, exitOK)
	}

	if r := cli(t, "nats://127.0.0.1:1", "serve", "--nats", "nats://127.0.0.1:1", "--listen", addr); r.code != exitUsage || !strings.Contains(r.err, "--listen") {
		t.Errorf("serve --nats --listen: exit %d, stderr %q; want a usage error naming --listen", r.code, r.err)
	}
}
