package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats.go/jetstream"
)

// targetsFile writes a targets CSV with an extra column, as operators have.
func targetsFile(tb testing.TB, ics []string) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("site,install_code\n")
	for i, ic := range ics {
		fmt.Fprintf(&b, "site-%d,%s\n", i, ic)
	}
	p := filepath.Join(tb.TempDir(), "targets.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// registered makes SmartServers that exist but have no Customer ID yet.
func registered(tb testing.TB, c *client.Client, prefix string, n int) []string {
	tb.Helper()
	var ics []string
	for i := range n {
		ic := fmt.Sprintf("%s-%03d", prefix, i)
		mustDo(tb, c, events.RegisterType, &events.Register{InstallCode: ic, Name: ic, Version: "3.4"})
		ics = append(ics, ic)
	}
	return ics
}

func pool(tb testing.TB, c *client.Client, customer string, capacity, maintenance int) {
	tb.Helper()
	for range capacity {
		mustLicense(tb, c, customer, events.Capacity)
	}
	for range maintenance {
		mustLicense(tb, c, customer, events.Maintenance)
	}
}

// waitRollout waits until the rollout reaches one of the statuses.
func waitRollout(tb testing.TB, c *client.Client, id string, statuses ...string) rollouts.Detail {
	tb.Helper()
	ctx := ctxFor(tb, 60*time.Second)
	for {
		var d rollouts.Detail
		if err := c.Query(ctx, client.QueryRollout, client.Params{RolloutID: id}, &d); err == nil {
			for _, s := range statuses {
				if d.Status == s {
					return d
				}
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("rollout %s never reached %v", id, statuses)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rolloutEvents reads one rollout's events in stream order.
func rolloutEvents(tb testing.TB, js jetstream.JetStream, id string) []*events.Message {
	tb.Helper()
	return streamEvents(tb, js, events.AggregateFilter("rollout", id))
}

// streamEvents reads the events on filter in stream order.
func streamEvents(tb testing.TB, js jetstream.JetStream, filter string) []*events.Message {
	tb.Helper()
	ctx := ctxFor(tb, 20*time.Second)
	cons, err := js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		tb.Fatal(err)
	}
	var out []*events.Message
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		m, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, m)
	}
}

// Ensure waves, the abort threshold, and retry-failed: a first wave with
// too many failures stops the rollout before the next wave, with the
// threshold in the status; retry-failed runs only the failed targets.
func TestRolloutAbortAndRetryFailed(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	cid := mustCustomer(t, c, "P-ROLL")
	pool(t, c, cid, 10, 10)
	good := registered(t, c, "GOOD", 6)
	// Wave 1: two good, three unknown; wave 2: four good.
	missing := []string{"MISS-1", "MISS-2", "MISS-3"}
	targets := append(append(append([]string{}, good[:2]...), missing...), good[2:]...)
	file := targetsFile(t, targets)

	// The dry run shows the refusals and changes nothing.
	before := subjectCount(t, js, events.EventsStream, "lb.evt.>")
	var plan struct {
		Ready, Refused int
		Waves          []struct {
			Targets []struct {
				InstallCode string `json:"install_code"`
				Refusal     string `json:"refusal"`
			} `json:"targets"`
		} `json:"waves"`
	}
	mustJSON(t, url, &plan, "rollout", "start", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200,maintenance", "--wave-size", "5", "--dry-run")
	if plan.Ready != 6 || plan.Refused != 3 || len(plan.Waves) != 2 || plan.Waves[0].Targets[2].Refusal != string(events.ReasonUnknownServer) {
		t.Fatalf("plan=%+v, want 6 ready, 3 unknown_smartserver in wave 1", plan)
	}
	if after := subjectCount(t, js, events.EventsStream, "lb.evt.>"); after != before {
		t.Fatalf("dry run appended %d events, want none", after-before)
	}

	id := mustCLI(t, url, "rollout", "start", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200,maintenance",
		"--auto-provision", "--wave-size", "5", "--abort-when", "failed>20%,min=4", "--retries", "1")
	d := waitRollout(t, c, id, "aborted", "completed")
	if d.Status != "aborted" || d.Counts.Failed != 3 || d.Counts.Succeeded != 2 || d.Counts.Skipped != 4 || !strings.Contains(d.Abort, "failed>20%,min=4") {
		t.Fatalf("rollout=%s %+v abort %q, want aborted after wave 1 with 3 failed, 2 succeeded, 4 skipped", d.Status, d.Counts, d.Abort)
	}
	for _, tg := range d.Targets {
		if tg.Status == "failed" && tg.Reason != events.ReasonUnknownServer {
			t.Fatalf("target %s failed with %s, want unknown_smartserver", tg.InstallCode, tg.Reason)
		}
	}
	if r := cli(t, url, "rollout", "status", id); r.code != exitRefused || !strings.Contains(r.out, "aborted: failed>20%,min=4 tripped") || !strings.Contains(r.out, "unknown_smartserver") {
		t.Fatalf("status of the aborted rollout: exit %d, stdout:\n%s\nwant exit 1 with the abort reason and target reasons", r.code, r.out)
	}

	// The missing SmartServers appear; retry-failed runs exactly those.
	for _, ic := range missing {
		mustDo(t, c, events.RegisterType, &events.Register{InstallCode: ic, Name: ic, Version: "3.4"})
	}
	mustCLI(t, url, "rollout", "retry-failed", id)
	d = waitRollout(t, c, id, "completed")
	if d.Counts.Succeeded != 5 || d.Counts.Failed != 0 || d.Counts.Skipped != 4 {
		t.Fatalf("after retry: %+v, want 5 succeeded and the 4 unreached still skipped", d.Counts)
	}
	mustCLI(t, url, "rollout", "status", id) // completed, nothing failed: exit 0
	started := map[string]int{}
	for _, m := range rolloutEvents(t, js, id) {
		if ts, ok := m.Data.(*events.TargetStarted); ok {
			started[ts.InstallCode]++
		}
	}
	for _, ic := range good[:2] {
		if started[ic] != 1 {
			t.Fatalf("succeeded target %s started %d times, want 1 (retry-failed must not touch it)", ic, started[ic])
		}
	}
	for _, ic := range missing {
		if started[ic] != 2 {
			t.Fatalf("failed target %s started %d times, want 2", ic, started[ic])
		}
	}
	if r := cli(t, url, "rollout", "pause", id); r.code != exitRefused || !strings.Contains(r.err, "rollout_state") {
		t.Fatalf("pause of a completed rollout: exit %d %q, want rollout_state", r.code, r.err)
	}
}

// Ensure the concurrency and rate limits hold, measured from the events:
// never more targets in flight than --concurrency, and target starts no
// faster than --rate (with a tolerance for clock and scheduling noise).
func TestRolloutRateAndConcurrency(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	cid := mustCustomer(t, c, "P-RATE")
	pool(t, c, cid, 12, 0)
	ics := registered(t, c, "RATE", 12)
	const perMin, conc = 900, 3 // 15 a second
	id := mustCLI(t, url, "rollout", "start", "--customer", cid, "--targets", targetsFile(t, ics), "--set-customer-id",
		"--activate", "capacity:200", "--concurrency", fmt.Sprint(conc), "--rate", fmt.Sprintf("%d/min", perMin))
	if d := waitRollout(t, c, id, "completed"); d.Counts.Succeeded != len(ics) {
		t.Fatalf("rollout %+v, want all %d succeeded", d.Counts, len(ics))
	}
	inFlight, peak := 0, 0
	var starts []time.Time
	for _, m := range rolloutEvents(t, js, id) {
		switch m.Data.(type) {
		case *events.TargetStarted:
			inFlight++
			peak = max(peak, inFlight)
			starts = append(starts, m.Event.Time())
		case *events.TargetSucceeded, *events.TargetFailed:
			inFlight--
		}
	}
	if peak > conc || peak < 1 {
		t.Fatalf("peak targets in flight=%d, want 1..%d", peak, conc)
	}
	// The n-th start comes no earlier than n intervals after the first
	// (burst 1); allow 20% for timer and scheduling noise.
	interval := time.Minute / perMin
	for n, at := range starts {
		if min := time.Duration(float64(n) * float64(interval) * 0.8); at.Sub(starts[0]) < min {
			t.Fatalf("start %d came %v after the first, want at least %v at %d/min", n, at.Sub(starts[0]), min, perMin)
		}
	}
}

// Ensure two rollouts racing for one license pool never bind a license
// twice, and a rollout interrupted by a server stop resumes after the
// restart without activating any target twice.
func TestRolloutRaceAndRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustServe(t, dir)
	url := s.URL()
	c, js := mustClient(t, url)
	cid := mustCustomer(t, c, "P-RACE")
	const licenses = 14
	pool(t, c, cid, licenses, 0)
	a, b := registered(t, c, "RA", 10), registered(t, c, "RB", 10)
	args := func(ics []string) []string {
		return []string{"rollout", "start", "--customer", cid, "--targets", targetsFile(t, ics), "--set-customer-id",
			"--activate", "capacity:200", "--concurrency", "4", "--rate", "1200/min", "--retries", "0"}
	}
	ida, idb := mustCLI(t, url, args(a)...), mustCLI(t, url, args(b)...)

	// Stop the server while both are under way, and start it again.
	ctx := ctxFor(t, 30*time.Second)
	var mid rollouts.Detail
	for {
		if err := c.Query(ctx, client.QueryRollout, client.Params{RolloutID: ida}, &mid); err == nil && mid.Counts.Succeeded >= 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("rollout made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	if mid.Status != "running" || mid.Counts.Succeeded+mid.Counts.Failed >= len(a) {
		t.Fatalf("rollout was %s with %+v at the stop; the test wants it under way", mid.Status, mid.Counts)
	}
	s = mustServe(t, dir)
	c, js = mustClient(t, s.URL())
	da := waitRollout(t, c, ida, "completed")
	db := waitRollout(t, c, idb, "completed")

	if got := da.Counts.Succeeded + db.Counts.Succeeded; got != licenses {
		t.Fatalf("succeeded %d+%d targets, want exactly the %d licenses of the pool", da.Counts.Succeeded, db.Counts.Succeeded, licenses)
	}
	for _, d := range []rollouts.Detail{da, db} {
		for _, tg := range d.Targets {
			if tg.Status == "failed" && tg.Reason != events.ReasonPoolExhausted {
				t.Fatalf("target %s failed with %s %q, want only pool_exhausted", tg.InstallCode, tg.Reason, tg.Message)
			}
		}
	}
	bound := subjectCount(t, js, events.EventsStream, "lb.evt.license.*.bound")
	released := subjectCount(t, js, events.EventsStream, "lb.evt.license.*.released")
	if bound != licenses || released != 0 {
		t.Fatalf("bound %d, released %d: want each of the %d licenses bound exactly once", bound, released, licenses)
	}
	for _, ic := range append(a, b...) {
		if n := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver."+ic+".license_activated"); n > 1 {
			t.Fatalf("target %s activated %d times, want at most once", ic, n)
		}
	}
}

// Ensure `rollout start` repeated with the same --id is a repeat: it gets
// the first outcome at once and prints the same rollout id, instead of
// waiting on a rollout id of its own that no handler will ever answer.
func TestRolloutStartRepeatable(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-REPEAT")
	pool(t, c, cid, 1, 0)
	file := targetsFile(t, registered(t, c, "REP", 1))
	args := []string{"rollout", "start", "--id", "start-rollout-1", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200", "--timeout", "10s"}

	first := mustCLI(t, url, args...)
	waitRollout(t, c, first, "completed")
	r := cli(t, url, args...)
	if r.code != exitOK || strings.TrimSpace(r.out) != first {
		t.Fatalf("repeat: exit %d, stdout %q, stderr %q; want exit 0 and the first rollout id %s", r.code, r.out, r.err, first)
	}
}

// Ensure progress is drawn only on a terminal and never on stdout: without
// one, `rollout start --wait` and `rollout status [--watch]` write plain
// lines, with no carriage-return redraws in either stream.
func TestRolloutProgressOnlyOnATerminal(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-BAR")
	pool(t, c, cid, 2, 0)
	file := targetsFile(t, registered(t, c, "BAR", 2))

	started := cli(t, url, "rollout", "start", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200", "--wait")
	if started.code != exitOK {
		t.Fatalf("rollout start --wait: exit %d, stderr %q", started.code, started.err)
	}
	id := rolloutIDIn(t, started.out)
	for name, r := range map[string]result{
		"start --wait":   started,
		"status":         cli(t, url, "rollout", "status", id),
		"status --watch": cli(t, url, "rollout", "status", id, "--watch"),
		"status -o json": cli(t, url, "rollout", "status", id, "-o", "json"),
		"watch -o json":  cli(t, url, "rollout", "status", id, "--watch", "-o", "json"),
	} {
		if r.code != exitOK {
			t.Fatalf("%s: exit %d, stderr %q", name, r.code, r.err)
		}
		if strings.ContainsAny(r.out+r.err, "\r█") {
			t.Fatalf("%s drew a progress bar without a terminal:\nstdout %q\nstderr %q", name, r.out, r.err)
		}
		if !strings.HasSuffix(name, "json") && !strings.Contains(r.out, "rollout "+id+": completed — 2 succeeded") {
			t.Fatalf("%s: stdout %q lacks the plain status line", name, r.out)
		}
	}
}

// rolloutIDIn finds the rollout id in a status report.
func rolloutIDIn(tb testing.TB, out string) string {
	tb.Helper()
	_, rest, ok := strings.Cut(out, "rollout ")
	id, _, _ := strings.Cut(rest, ":")
	if !ok || len(id) != 36 {
		tb.Fatalf("no rollout id in %q", out)
	}
	return id
}

// Ensure a rollout that ended with failed targets, or aborted, exits 1
// from `rollout start --wait` and from `rollout status [--watch]`, saying
// how many failed; one where everything succeeded exits 0.
func TestRolloutWithFailuresExitsOne(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-FAIL")
	pool(t, c, cid, 2, 0)
	good := registered(t, c, "OK", 2)
	tests := []struct {
		name    string
		targets []string
		args    []string
		code    int
		says    string
	}{
		{"all failed", []string{"NONE-1"}, nil, exitRefused, "completed: 1 of 1 target failed"},
		{"one of two failed", []string{good[0], "NONE-2"}, nil, exitRefused, "completed: 1 of 2 targets failed"},
		{"aborted", []string{"NONE-3", "NONE-4", good[1]}, []string{"--wave-size", "2", "--abort-when", "failed>10%,min=1"}, exitRefused, "aborted: 2 of 3 targets failed, 1 skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"rollout", "start", "--customer", cid, "--targets", targetsFile(t, tt.targets), "--set-customer-id",
				"--activate", "capacity:200", "--retries", "0", "--wait"}, tt.args...)
			r := cli(t, url, args...)
			if r.code != tt.code || !strings.Contains(r.err, tt.says) {
				t.Fatalf("start --wait: exit %d, stderr %q; want %d and %q", r.code, r.err, tt.code, tt.says)
			}
			id := rolloutIDIn(t, r.out)
			for _, more := range [][]string{nil, {"--watch"}, {"-o", "json"}} {
				r := cli(t, url, append([]string{"rollout", "status", id}, more...)...)
				if r.code != tt.code || !strings.Contains(r.err, tt.says) {
					t.Fatalf("status %v: exit %d, stderr %q; want %d and %q", more, r.code, r.err, tt.code, tt.says)
				}
			}
		})
	}
	// Every target succeeded (the pool has one license left for good[1]
	// only if the aborted rollout skipped it, which it did).
	r := cli(t, url, "rollout", "start", "--customer", cid, "--targets", targetsFile(t, good[1:]), "--set-customer-id", "--activate", "capacity:200", "--wait")
	if r.code != exitOK {
		t.Fatalf("a rollout where everything succeeded: exit %d, stderr %q", r.code, r.err)
	}
}
