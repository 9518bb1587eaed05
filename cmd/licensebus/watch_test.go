package main

import (
	"bytes"
	"context"
	"encoding/json"
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
