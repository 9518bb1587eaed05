package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/rs/zerolog"
)

// interrupt runs the CLI and interrupts it, as Ctrl-C does, once its
// stderr satisfies ready.
func interrupt(tb testing.TB, url string, ready func(stderr string) bool, args ...string) result {
	tb.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), &out, &errb, cliEnv(url)) }()
	waitFor(tb, func() bool { return ready(errb.String()) })
	cancel()
	select {
	case code := <-done:
		return result{out.String(), errb.String(), code}
	case <-time.After(20 * time.Second):
		tb.Fatalf("licensebus %s did not stop when interrupted; stderr %q", strings.Join(args, " "), errb.String())
		return result{}
	}
}

var storedLine = regexp.MustCompile(`command (\S+) stored`)

// storedID is the command id a CLI run said was stored.
func storedID(tb testing.TB, r result) string {
	tb.Helper()
	m := storedLine.FindStringSubmatch(r.err)
	if m == nil {
		tb.Fatalf("stderr %q does not say which command was stored", r.err)
	}
	return m[1]
}

// Ensure every command that sends says its CloudEvent id once JetStream
// stored it, and a wait that is interrupted (exit 130) or runs out of
// --timeout (exit 3) says the command is stored and how to wait again;
// `command wait ID` then prints what the command would have, with its exit
// code, once a server handles it.
func TestInterruptedCommandCanBeWaitedFor(t *testing.T) {
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()
	lb := mustJoin(t, url, 0)
	cid := mustCLI(t, url, "customer", "create", "--name", "P-WAIT")

	// The id is said as soon as the command is stored, and JSON carries it.
	r := cli(t, url, "customer", "create", "--name", "P-SAID")
	if r.code != exitOK || !strings.Contains(r.err, "stored") {
		t.Fatalf("exit %d, stderr %q; want the command id said on stderr", r.code, r.err)
	}
	var created struct {
		CommandID  string `json:"command_id"`
		CustomerID string `json:"customer_id"`
	}
	mustJSON(t, url, &created, "customer", "create", "--name", "P-JSON", "--id", "create-json-1")
	if created.CommandID != "create-json-1" || created.CustomerID == "" {
		t.Fatalf("customer create -o json=%+v, want command_id create-json-1", created)
	}

	// No server handles commands now: they are stored, and nothing answers.
	lb.Close()
	timedOut := cli(t, url, "customer", "create", "--name", "P-LATE", "--timeout", "1s")
	late := storedID(t, timedOut)
	if timedOut.code != exitInternal || !strings.Contains(timedOut.err, "licensebus command wait "+late) || !strings.Contains(timedOut.err, "--id "+late) {
		t.Fatalf("timed out: exit %d, stderr %q; want exit 3, saying `licensebus command wait %s` and --id %s", timedOut.code, timedOut.err, late, late)
	}
	stopped := interrupt(t, url, func(e string) bool { return strings.Contains(e, "stored") },
		"license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1", "--id", "add-license-1")
	if stopped.code != exitInterrupt || !strings.Contains(stopped.err, "command add-license-1 stored") ||
		!strings.Contains(stopped.err, "interrupted") || !strings.Contains(stopped.err, "licensebus command wait add-license-1") {
		t.Fatalf("interrupted: exit %d, stderr %q; want exit 130, saying add-license-1 is stored and how to wait", stopped.code, stopped.err)
	}
	rejected := interrupt(t, url, func(e string) bool { return strings.Contains(e, "stored") },
		"smartserver", "set-customer-id", "IC-NONE", uuid.NewString(), "--id", "set-cid-1")
	if rejected.code != exitInterrupt {
		t.Fatalf("interrupted: exit %d, stderr %q; want 130", rejected.code, rejected.err)
	}

	// A server handles them again: `command wait` prints what the commands would have.
	mustJoin(t, url, 0)
	if got := mustCLI(t, url, "command", "wait", late); !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(got) {
		t.Fatalf("command wait %s printed %q, want the new Customer ID", late, got)
	}
	var added struct {
		CommandID string `json:"command_id"`
		LicenseID string `json:"license_id"`
		Devices   int    `json:"devices"`
	}
	mustJSON(t, url, &added, "command", "wait", "add-license-1")
	if added.CommandID != "add-license-1" || added.LicenseID == "" || added.Devices != 1 {
		t.Fatalf("command wait add-license-1 -o json=%+v, want the license added", added)
	}
	if r := cli(t, url, "command", "wait", "set-cid-1"); r.code != exitRefused || r.out != "" || !strings.Contains(r.err, "unknown_smartserver") {
		t.Fatalf("command wait of a refused command: exit %d, stdout %q, stderr %q; want exit 1 and the refusal", r.code, r.out, r.err)
	}
	if r := cli(t, url, "command", "wait", "never-sent", "--timeout", "500ms"); r.code != exitInternal || !strings.Contains(r.err, "never-sent") {
		t.Fatalf("command wait of an unknown id: exit %d, stderr %q; want exit 3 naming it", r.code, r.err)
	}
}

// Ensure Ctrl-C while `rollout start --wait` follows a rollout exits 130
// and says the rollout's id and how to follow it again; `command wait` of
// the start command prints that id too.
func TestInterruptedRolloutWaitSaysItsID(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-CTRLC")
	pool(t, c, cid, 3, 0)
	file := targetsFile(t, registered(t, c, "CC", 3))
	// One target a minute: the rollout is still running when interrupted.
	r := interrupt(t, url, func(e string) bool { return strings.Contains(e, "Ctrl-C") },
		"rollout", "start", "--id", "slow-rollout", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200", "--rate", "1/min", "--wait")
	id := events.DeriveID("slow-rollout", "rollout")
	if r.code != exitInterrupt || !strings.Contains(r.err, "rollout "+id+" goes on") || !strings.Contains(r.err, "rollout status "+id+" --watch") {
		t.Fatalf("exit %d, stderr %q; want exit 130 naming rollout %s", r.code, r.err, id)
	}
	if got := mustCLI(t, url, "command", "wait", "slow-rollout"); got != id {
		t.Fatalf("command wait slow-rollout printed %q, want the rollout id %s", got, id)
	}
	var out struct {
		CommandID string `json:"command_id"`
		RolloutID string `json:"rollout_id"`
	}
	mustJSON(t, url, &out, "rollout", "start", "--id", "slow-rollout", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200", "--rate", "1/min")
	if out.CommandID != "slow-rollout" || out.RolloutID != id {
		t.Fatalf("repeated start -o json=%+v, want command_id slow-rollout and rollout_id %s", out, id)
	}
	mustCLI(t, url, "rollout", "cancel", id)

	// Followed to its end, the JSON report carries the command id too.
	var ended struct {
		CommandID string `json:"command_id"`
		RolloutID string `json:"rollout_id"`
		Status    string `json:"status"`
	}
	mustJSON(t, url, &ended, "rollout", "start", "--id", "slow-rollout", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200", "--rate", "1/min", "--wait")
	if ended.CommandID != "slow-rollout" || ended.RolloutID != id || ended.Status != "cancelled" {
		t.Fatalf("start --wait -o json=%+v, want command_id slow-rollout, rollout %s cancelled", ended, id)
	}
}
