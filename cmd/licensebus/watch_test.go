package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Ensure `device watch` prints colour changes live, and only changes.
func TestDeviceWatchShowsChanges(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "W")
	lid := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1")
	mustCLI(t, url, "smartserver", "register", "--install-code", "W-1", "--version", "3.4")
	mustCLI(t, url, "smartserver", "set-customer-id", "W-1", cid)
	mustCLI(t, url, "smartserver", "download-licenses", "W-1")
	first := mustCLI(t, url, "device", "add", "W-1", "--protocol", "lon", "--name", "before-watch")

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"device", "watch", "W-1", "-o", "json"}, strings.NewReader(""), &out, &bytes.Buffer{}, cliEnv(url))
	}()
	time.Sleep(300 * time.Millisecond) // let the watch load the current state
	mustCLI(t, url, "smartserver", "activate", "W-1", lid)
	mustCLI(t, url, "device", "provision", "W-1", first)

	deadline := time.Now().Add(10 * time.Second)
	var states []string
	for time.Now().Before(deadline) {
		states = states[:0]
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var r deviceJSON
			if json.Unmarshal([]byte(line), &r) == nil && r.DeviceID == first {
				states = append(states, r.Colour)
			}
		}
		if len(states) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d", code)
	}
	if strings.Join(states, " ") != "blue green" {
		t.Fatalf("watched colours %q, want \"blue green\" (purple was before the watch began)", states)
	}
}

// Ensure `device watch` rides out a server restart quietly: no nats.go
// "consumer not active" lines while the server is away, and the changes
// made after the restart are shown.
func TestDeviceWatchQuietAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for nats.go's heartbeat check while the server is down")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	url := "nats://" + addr
	start := func() *Server {
		ctx := ctxFor(t, 30*time.Second)
		s, err := StartServer(ctx, ServeConfig{DataDir: dir, Listen: addr, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("StartServer: %v", err)
		}
		t.Cleanup(s.Close)
		serverCreds.Store(url, s.credsFiles())
		return s
	}
	s := start()
	cid := mustCLI(t, url, "customer", "create", "--name", "W-RESTART")
	lid := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1")
	mustCLI(t, url, "smartserver", "register", "--install-code", "WR-1", "--version", "3.4")
	mustCLI(t, url, "smartserver", "set-customer-id", "WR-1", cid)
	mustCLI(t, url, "smartserver", "download-licenses", "WR-1")
	dev := mustCLI(t, url, "device", "add", "WR-1", "--protocol", "lon")

	// The CLI in a process of its own: nats.go writes to the real stderr.
	watch := exec.Command(os.Args[0], "device", "watch", "WR-1", "--nats", url, "--creds", credsOf(url).admin)
	watch.Env = append(os.Environ(), childEnv+"=1")
	var out, errb syncBuffer
	watch.Stdout, watch.Stderr = &out, &errb
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	waitFor(t, func() bool { return strings.Contains(errb.String(), "watching") })

	s.Close()
	// nats.go checks an ordered consumer's heartbeats every 10 s, and
	// reports the consumer inactive at the first check that finds no
	// heartbeat since the one before: the server stays away for two.
	time.Sleep(21 * time.Second)
	start()
	mustCLI(t, url, "smartserver", "activate", "WR-1", lid)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), dev) {
		if time.Now().After(deadline) {
			t.Fatalf("the watch showed nothing after the restart; stdout %q, stderr %q", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := strings.TrimSpace(errb.String()); got != "watching WR-1 for colour changes; Ctrl-C to stop" {
		t.Fatalf("stderr %q, want only the watching line (reconnects are quiet)", got)
	}
}
