package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Ensure the built binary exits with the codes the README lists: 0 done,
// 1 refused, 2 usage, 3 no server or no outcome in time, 130 interrupted.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	bin, addr := buildBinary(t), freeAddr(t)
	startBinary(t, bin, t.TempDir(), addr)
	lb := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "NATS_URL=nats://"+addr, "NATS_CREDS="+credsOf("nats://"+addr).admin)
		return c
	}
	exitOf := func(c *exec.Cmd) (int, string) {
		var stderr bytes.Buffer
		c.Stderr = &stderr
		err := c.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", c.Args, err)
		}
		return c.ProcessState.ExitCode(), stderr.String()
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"done", []string{"customer", "list"}, exitOK},
		{"refused", []string{"smartserver", "set-customer-id", "IC-NONE", uuid.NewString()}, exitRefused},
		{"unknown command", []string{"customer", "craete", "--name", "X"}, exitUsage},
		{"value not allowed", []string{"license", "list", "--state", "bogus"}, exitUsage},
		{"no server", []string{"customer", "list", "--nats", "nats://127.0.0.1:1"}, exitInternal},
		{"no outcome in time", []string{"command", "wait", "never-sent", "--timeout", "200ms"}, exitInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, stderr := exitOf(lb(tt.args...)); code != tt.code {
				t.Fatalf("licensebus %s: exit %d, stderr %q; want %d", strings.Join(tt.args, " "), code, stderr, tt.code)
			}
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		c := lb("command", "wait", "never-sent")
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // connected and waiting, signal handler in place
		if err := c.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
		if code := c.ProcessState.ExitCode(); code != exitInterrupt || !strings.Contains(stderr.String(), "interrupted") {
			t.Fatalf("exit %d, stderr %q; want %d", code, stderr.String(), exitInterrupt)
		}
	})
}
