package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/rs/zerolog"
)

// Ensure the trail is held against its signed head from the CLI: audit
// checkpoints lists verified checkpoints, audit verify says what it was
// held against; and after the event, command and audit streams are all
// deleted and licensebus starts again — a new trail, whole in itself,
// which the chain alone calls intact — audit verify says truncated, live
// and against a copy of the checkpoints kept elsewhere.
func TestAuditVerifyHeldAgainstCheckpoints(t *testing.T) {
	dir := t.TempDir()
	s := busyServer(t, dir)
	url := s.URL()
	out := mustCLI(t, url, "audit", "verify")
	if !strings.Contains(out, "intact: ") {
		t.Fatalf("audit verify before: %q", out)
	}
	s.Close() // the auditor signs its head when it stops

	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: abs, Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	url = ns.ClientURL()
	var rows []checkpointRow
	mustJSON(t, url, &rows, "audit", "checkpoints")
	if len(rows) == 0 {
		t.Fatal("no checkpoints")
	}
	for _, r := range rows {
		if !r.Verified {
			t.Fatalf("checkpoint %+v does not verify", r)
		}
	}
	if out := mustCLI(t, url, "audit", "verify"); !strings.Contains(out, "held against the signed checkpoint of seq") {
		t.Fatalf("audit verify does not say what it was held against: %q", out)
	}
	kept := t.TempDir()
	cps, keys := filepath.Join(kept, "checkpoints.json"), filepath.Join(kept, "keys.json")
	for path, args := range map[string][]string{cps: {"audit", "checkpoints", "-o", "json"}, keys: {"license", "pubkey", "-o", "json"}} {
		if err := os.WriteFile(path, []byte(mustCLI(t, url, args...)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, js := mustClient(t, url)
	ctx := ctxFor(t, 10*time.Second)
	for _, name := range []string{events.EventsStream, events.CommandsStream, trail.Stream} {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	s = mustServe(t, dir)
	url = s.URL()
	c, js := mustClient(t, url)
	// The views are out of step with the new streams (projections rebuild
	// mends them): wait for the event itself.
	if _, err := c.Send(ctxFor(t, 10*time.Second), events.RegisterType, &events.Register{InstallCode: "AFTER", Version: "3.4"}, client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for subjectCount(t, js, events.EventsStream, "lb.evt.smartserver.AFTER.registered") == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	waitAudited(t, js)
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--checkpoints", cps, "--pubkey-file", keys}} {
		r := cli(t, url, args...)
		if r.code != exitRefused || !strings.Contains(r.out, "TRUNCATED") || !strings.Contains(r.err, "tampered") {
			t.Errorf("%s: exit %d, out %q, stderr %q; want exit 1 naming TRUNCATED", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
}
