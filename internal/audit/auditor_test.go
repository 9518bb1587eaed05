package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// mustJetStream starts an embedded server with the licensebus streams.
func mustJetStream(tb testing.TB) jetstream.JetStream { return bustest.JetStream(tb) }

func logger(tb testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	}
	return zerolog.Nop()
}

// startAuditor runs an auditor until the returned stop is called (or the
// test ends); Run must return nil.
func startAuditor(tb testing.TB, js jetstream.JetStream) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- audit.New(audit.Config{JS: js, Logger: logger(tb), Standby: 50 * time.Millisecond}).Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("auditor: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// pair publishes a command and the event it causes, in that order, and
// returns their ids.
func pair(tb testing.TB, js jetstream.JetStream, name string) (string, string) {
	tb.Helper()
	ctx := context.Background()
	cmdID := uuid.NewString()
	c, err := events.NewCommand(events.CreateCustomerType, &events.CreateCustomer{Name: name}, events.Meta{ID: cmdID, Source: "/test", CorrelationID: cmdID, Actor: "user:test"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, bus.Msg(c)); err != nil {
		tb.Fatal(err)
	}
	ev, err := events.New(events.CustomerCreatedType, &events.CustomerCreated{CustomerID: uuid.NewString(), Name: name}, c.Next(uuid.NewString(), "/test", "user:test"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, bus.Msg(ev)); err != nil {
		tb.Fatal(err)
	}
	return cmdID, ev.ID()
}

// publishMany publishes n commands and n events from two goroutines at once.
func publishMany(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	for _, command := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			futures := make([]jetstream.PubAckFuture, 0, n)
			for i := range n {
				id := uuid.NewString()
				var m *events.Message
				var err error
				if command {
					m, err = events.NewCommand(events.RegisterType, &events.Register{InstallCode: fmt.Sprintf("IC-%d", i), Version: "3.4"}, events.Meta{ID: id, Source: "/test"})
				} else {
					m, err = events.New(events.RegisteredType, &events.Registered{InstallCode: fmt.Sprintf("IC-%d", i), Version: "3.4"}, events.Meta{ID: id, Source: "/test"})
				}
				if err != nil {
					tb.Error(err)
					return
				}
				f, err := js.PublishMsgAsync(bus.Msg(m))
				if err != nil {
					tb.Error(err)
					return
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					tb.Error(err)
				case <-time.After(30 * time.Second):
					tb.Error("no ack")
				}
			}
		}()
	}
	wg.Wait()
}

// waitCaughtUp waits until the trail records every source message.
func waitCaughtUp(tb testing.TB, js jetstream.JetStream) audit.Status {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := audit.ReadStatus(context.Background(), js)
		if err == nil && st.Behind() == 0 {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("trail never caught up: %+v %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verifyLive verifies the live trail against the source streams.
func verifyLive(tb testing.TB, js jetstream.JetStream) (trail.Report, []*trail.Entry) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v trail.Verifier
	var entries []*trail.Entry
	var checker *audit.SourceChecker
	err := audit.Read(ctx, js, audit.ReadOptions{}, func(r audit.Record) error {
		if checker == nil {
			var err error
			if checker, err = audit.NewSourceChecker(ctx, js); err != nil {
				return err
			}
			v.Check = checker.Check
		}
		v.Add(r.Raw, fmt.Sprintf("audit stream seq %d", r.StreamSeq))
		if r.Entry != nil {
			entries = append(entries, r.Entry)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	rep := v.Finish() // decides on the last entry, so after the checker's last use
	if checker != nil {
		checker.Close()
	}
	return rep, entries
}

// Ensure the auditor records every message of both streams exactly once,
// in stream-time order, causes before effects, faithfully to the sources —
// what was there before it started and what comes while it runs.
func TestAuditorRecordsBothStreamsInOrder(t *testing.T) {
	js := mustJetStream(t)
	ctx := context.Background()
	causes := map[string]string{} // event id → command id
	for i := range 10 {
		c, e := pair(t, js, fmt.Sprintf("before-%d", i))
		causes[e] = c
	}
	if _, err := js.Publish(ctx, "lb.cmd.cloud.customer_create", []byte("not a CloudEvent")); err != nil {
		t.Fatal(err)
	}
	startAuditor(t, js)
	publishMany(t, js, 300)
	for i := range 20 {
		c, e := pair(t, js, fmt.Sprintf("while-%d", i))
		causes[e] = c
	}
	st := waitCaughtUp(t, js)
	if st.Cursor != st.Sources || st.Seq != st.Sources.Commands+st.Sources.Events || st.Seq != 2*(10+300+20)+1 {
		t.Fatalf("status %+v, want every one of %d messages recorded once", st, 2*(10+300+20)+1)
	}
	rep, entries := verifyLive(t, js)
	if !rep.Intact || rep.Chained != st.Seq || !rep.Anchored {
		t.Fatalf("live trail: %+v", rep)
	}
	seen := map[string]uint64{}
	var last time.Time
	for _, e := range entries {
		at, err := time.Parse(time.RFC3339Nano, e.StreamTime)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(last) {
			t.Fatalf("entry %d stored at %s, before the entry before it (%s)", e.Seq, at, last)
		}
		last = at
		seen[e.ID] = e.Seq
		if c, ok := causes[e.ID]; ok && seen[c] == 0 {
			t.Fatalf("event %s (entry %d) is in the trail before the command that caused it", e.ID, e.Seq)
		}
	}
	invalid := 0
	for _, e := range entries {
		if e.Invalid != "" {
			invalid++
			if e.Kind != trail.KindCommand || e.RejectionID == "" || e.Seq != 21 {
				t.Fatalf("invalid command entry %+v", e)
			}
		}
	}
	if invalid != 1 {
		t.Fatalf("%d invalid entries, want the one command that is not a CloudEvent", invalid)
	}
}

// Ensure a restarted auditor continues from the cursor of its last entry:
// no gap, no repeat, one chain.
func TestAuditorResumes(t *testing.T) {
	js := mustJetStream(t)
	stop := startAuditor(t, js)
	for i := range 10 {
		pair(t, js, fmt.Sprint(i))
	}
	first := waitCaughtUp(t, js)
	stop()
	for i := range 10 {
		pair(t, js, fmt.Sprint("offline ", i))
	}
	startAuditor(t, js)
	pair(t, js, "after")
	st := waitCaughtUp(t, js)
	if first.Seq != 20 || st.Seq != 42 || st.StreamLast != 42 {
		t.Fatalf("before restart %+v, after %+v; want 20 then 42 entries", first, st)
	}
	if rep, _ := verifyLive(t, js); !rep.Intact || rep.Chained != 42 {
		t.Fatalf("live trail: %+v", rep)
	}
}

// Ensure two auditors on one NATS (two licensebus processes) write one
// chain, and that the survivor takes over when the writer stops.
func TestAuditorsShareOneChain(t *testing.T) {
	js := mustJetStream(t)
	stopA := startAuditor(t, js)
	stopB := startAuditor(t, js)
	publishMany(t, js, 200)
	waitCaughtUp(t, js)
	stopA()
	for i := range 5 {
		pair(t, js, fmt.Sprint(i))
	}
	st := waitCaughtUp(t, js)
	stopB()
	if st.Seq != 410 || st.StreamLast != 410 {
		t.Fatalf("status %+v, want 410 entries in 410 messages", st)
	}
	if rep, _ := verifyLive(t, js); !rep.Intact || rep.Chained != 410 {
		t.Fatalf("live trail: %+v", rep)
	}
}

// Ensure a forged entry published straight onto the audit subject — well
// chained, recording an event that does not exist — is caught by live
// verification, is never chained to, and does not stop the trail.
func TestAuditorDoesNotChainToForgery(t *testing.T) {
	js := mustJetStream(t)
	startAuditor(t, js)
	for i := range 3 {
		pair(t, js, fmt.Sprint(i))
	}
	st := waitCaughtUp(t, js)
	forged := audit.Derive(audit.SourceMsg{Stream: events.EventsStream, Seq: st.Cursor.Events + 1, Subject: "lb.evt.license.x.bound",
		Time: time.Now(), Data: []byte(`{"license_id":"x","install_code":"EVIL"}`)})
	forged.Seq, forged.Cursor = st.Seq+1, st.Cursor.Advance(events.EventsStream, st.Cursor.Events+1)
	raw, err := trail.Seal(&forged, st.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), trail.Subject, raw); err != nil {
		t.Fatal(err)
	}
	rep, _ := verifyLive(t, js)
	if rep.Intact || rep.Problems[0].Kind != trail.Inserted || rep.Problems[0].Seq != st.Seq+1 {
		t.Fatalf("after forgery: %+v, want the forged entry reported inserted", rep)
	}
	for i := range 3 {
		pair(t, js, fmt.Sprint("after ", i))
	}
	after := waitCaughtUp(t, js)
	if after.Seq != st.Seq+6 || after.StreamLast != st.Seq+7 {
		t.Fatalf("after %+v, want 6 more entries past the forgery", after)
	}
	rep, _ = verifyLive(t, js)
	if rep.ProblemCount != 1 || rep.Problems[0].Kind != trail.Inserted || rep.Problems[0].Where != fmt.Sprintf("audit stream seq %d", st.Seq+1) || rep.Chained != after.Seq {
		t.Fatalf("after more entries: %+v, want exactly the forgery reported inserted", rep)
	}
}

// Ensure Read follows new entries and stops when its context ends.
func TestReadFollows(t *testing.T) {
	js := mustJetStream(t)
	startAuditor(t, js)
	pair(t, js, "a")
	waitCaughtUp(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan uint64, 16)
	caught := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- audit.Read(ctx, js, audit.ReadOptions{Follow: true, CaughtUp: func() { close(caught) }}, func(r audit.Record) error {
			got <- r.Entry.Seq
			return nil
		})
	}()
	<-caught
	pair(t, js, "b")
	for want := uint64(1); want <= 4; want++ {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("followed seq %d, want %d", s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("entry %d never came", want)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v", err)
	}
}

// BenchmarkAuditorCatchUp measures how fast an auditor writes the trail of
// a backlog: b.N source messages, half commands, half events.
func BenchmarkAuditorCatchUp(b *testing.B) {
	js := mustJetStream(b)
	publishMany(b, js, max(b.N/2, 1))
	b.ResetTimer()
	start := time.Now()
	startAuditor(b, js)
	st := waitCaughtUp(b, js)
	b.ReportMetric(float64(st.Seq)/time.Since(start).Seconds(), "entries/s")
}
