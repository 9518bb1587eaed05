package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/rs/zerolog"
)

// busyServer serves from dir and runs an activation through it, then
// waits until the projections, the three reactors and the audit trail
// have everything.
func busyServer(t *testing.T, dir string) *Server {
	t.Helper()
	s := mustServe(t, dir)
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "CHG", 1)
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[0], LicenseID: lid})
	caughtUp(t, c)
	for _, r := range []string{"cloud-requests", "device-answers", "provisioner-triggers"} {
		waitReacted(t, js, r)
	}
	waitAudited(t, js)
	return s
}

// statusOf runs a status command with -o json; it decodes stdout into v
// and returns the result.
func statusOf(t *testing.T, url string, v any, args ...string) result {
	t.Helper()
	r := cli(t, url, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		t.Fatalf("%s: %v in %q (stderr %q)", strings.Join(args, " "), err, r.out, r.err)
	}
	return r
}

type projectionsStatusJSON struct {
	client.Status
	Problems []projections.Problem `json:"problems"`
}

type reactorsStatusJSON struct {
	Reactors []bus.ReactorState `json:"reactors"`
	Problems []string           `json:"problems"`
}

// Ensure status does not call anything caught up, nor the trail intact,
// after the event stream was deleted and created again under checkpoints
// far past its new end: the start says so in error lines, and projections
// status, reactors status and audit verify refuse (exit 1) naming it.
func TestStatusAfterEventStreamRecreated(t *testing.T) {
	dir := t.TempDir()
	busyServer(t, dir).Close()
	// Delete the event stream with nothing of licensebus running.
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: abs, Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, js := mustClient(t, ns.ClientURL())
	if err := js.DeleteStream(ctxFor(t, 10*time.Second), events.EventsStream); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	var logs syncBuffer
	ctx := ctxFor(t, 30*time.Second)
	s, err := StartServer(ctx, ServeConfig{DataDir: dir, Listen: "127.0.0.1:-1", Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	url := s.URL()
	c, js := mustClient(t, url)
	// A new event: the stream starts again at seq 1.
	if _, err := c.Send(ctx, events.RegisterType, &events.Register{InstallCode: "NEW", Name: "new", Version: "3.4"}, client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for { // the registered event (the start publishes the signing key before it)
		if last, err := bus.LastSeq(ctx, js, events.EventsStream); err == nil && last > 0 &&
			subjectCount(t, js, events.EventsStream, "lb.evt.smartserver.NEW.registered") > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no event after the restart")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, msg := range []string{"projection checkpoint is not in step", "reactor checkpoint is not in step", "a stream changed under the audit trail"} {
		// The reactors and the auditor start once elected: a moment after
		// the server is up.
		found := false
		for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, line := range strings.Split(logs.String(), "\n") {
				found = found || (strings.Contains(line, `"level":"error"`) && strings.Contains(line, msg))
			}
		}
		if !found {
			t.Errorf("no error line %q at the start; log:\n%s", msg, logs.String())
		}
	}

	if probs := s.runner.Problems(); len(probs) != 4 {
		t.Errorf("runner problems %q, want one per model", probs)
	}

	var ps projectionsStatusJSON
	if r := statusOf(t, url, &ps, "projections", "status"); r.code != exitRefused || !strings.Contains(r.err, "ends at seq") {
		t.Errorf("projections status: exit %d, stderr %q; want exit 1 naming the stream's end", r.code, r.err)
	}
	for name, ck := range ps.Checkpoints {
		named := false
		for _, p := range ps.Problems {
			named = named || p.Model == name
		}
		if !named {
			t.Errorf("projection %s at checkpoint %d of a stream ending at %d: no problem reported", name, ck, ps.EventsLastSeq)
		}
	}
	if out := cli(t, url, "projections", "status").out; strings.Contains(out, "true") {
		t.Errorf("projections status shows a projection caught up:\n%s", out)
	}

	var rs reactorsStatusJSON
	if r := statusOf(t, url, &rs, "reactors", "status"); r.code != exitRefused {
		t.Errorf("reactors status: exit %d, stderr %q; want exit 1", r.code, r.err)
	}
	for _, st := range rs.Reactors {
		if st.Problem == "" {
			t.Errorf("reactor %s at checkpoint %d: no problem reported", st.Name, st.Checkpoint)
		}
	}

	r := cli(t, url, "audit", "verify")
	if r.code != exitRefused || !strings.Contains(r.out, "STREAM_CHANGED") || !strings.Contains(r.out, events.EventsStream) || strings.Contains(r.out, "intact: ") && !strings.Contains(r.out, "NOT intact") {
		t.Errorf("audit verify: exit %d, out %q; want not intact, naming %s", r.code, r.out, events.EventsStream)
	}

	// A rebuild mends the projections.
	if r := cli(t, url, "projections", "rebuild"); r.code != exitOK {
		t.Errorf("projections rebuild: exit %d, stderr %q", r.code, r.err)
	}
	if probs := s.runner.Problems(); len(probs) > 0 {
		t.Errorf("runner problems after a rebuild: %q", probs)
	}
}

// Ensure a setting of the event stream changed under a running server is
// named by projections status, reactors status and audit verify, and that
// a restart sets it back.
func TestStatusReportsStreamDrift(t *testing.T) {
	dir := t.TempDir()
	s := busyServer(t, dir)
	url := s.URL()
	_, js := mustClient(t, url)
	ctx := ctxFor(t, 30*time.Second)
	want, _ := bus.WantedConfig(events.EventsStream)
	changed := want
	changed.MaxMsgs = 1000
	if _, err := js.UpdateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	const drift = "max_msgs is 1000, serve creates -1"
	for _, args := range [][]string{{"projections", "status"}, {"reactors", "status"}} {
		if r := cli(t, url, args...); r.code != exitRefused || !strings.Contains(r.err, drift) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 naming %q", strings.Join(args, " "), r.code, r.err, drift)
		}
	}
	if r := cli(t, url, "audit", "verify"); r.code != exitRefused || !strings.Contains(r.out, drift) {
		t.Errorf("audit verify: exit %d, out %q; want exit 1 naming %q", r.code, r.out, drift)
	}
	s.Close()
	s = mustServe(t, dir)
	if r := cli(t, s.URL(), "projections", "status"); r.code != exitOK {
		t.Errorf("projections status after a restart: exit %d, stderr %q; want the setting set back", r.code, r.err)
	}
}

// cliCtx runs the CLI under ctx, as a Ctrl-C would end it.
func cliCtx(ctx context.Context, url string, args ...string) result {
	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == "NATS_URL" {
			return url
		}
		return ""
	}
	code := run(ctx, args, strings.NewReader(""), &out, &errb, env)
	return result{out.String(), errb.String(), code}
}

// Ensure every audit, projections and reactors command honours --timeout
// and Ctrl-C (tail --follow, which ends at Ctrl-C, is TestAuditTrail's),
// and that audit verify of a trail whose command stream was
// purged finishes, reporting the commands as gone, instead of waiting for
// them.
func TestReadCommandsHonourTimeoutAndInterrupt(t *testing.T) {
	s := busyServer(t, t.TempDir())
	url := s.URL()
	_, js := mustClient(t, url)
	ctx := ctxFor(t, 30*time.Second)
	str, err := js.Stream(ctx, events.CommandsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := str.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	r := cli(t, url, "audit", "verify", "--timeout", "30s")
	if r.code != exitRefused || !strings.Contains(r.out, "no longer in the stream") || strings.Contains(r.out, "cannot read") {
		t.Fatalf("audit verify of a purged command stream: exit %d, out %q, stderr %q; want each command reported gone", r.code, r.out, r.err)
	}

	commands := [][]string{
		{"audit", "verify"}, {"audit", "export"}, {"audit", "tail"}, {"audit", "trace", "x"},
		{"projections", "status"}, {"projections", "rebuild"}, {"reactors", "status"},
	}
	for _, args := range commands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if r := cli(t, url, append(args, "--timeout", "1ns")...); r.code != exitInternal || !strings.Contains(r.err, "--timeout") {
				t.Errorf("--timeout 1ns: exit %d, stderr %q; want exit 3 naming --timeout", r.code, r.err)
			}
			interrupted, cancel := context.WithCancel(context.Background())
			cancel()
			if r := cliCtx(interrupted, url, args...); r.code == exitOK || !strings.Contains(r.err, "interrupted") {
				t.Errorf("interrupted: exit %d, stderr %q; want an error saying so", r.code, r.err)
			}
		})
	}
}
