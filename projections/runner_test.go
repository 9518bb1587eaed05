package projections_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/licensebus/licensebus/projections"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// recorder is a model that remembers the sequences applied to it.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Apply(seq uint64, _ *events.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, seq)
}
func (r *recorder) Changes() map[string][]byte   { return nil }
func (r *recorder) Restore(string, []byte) error { return nil }
func (r *recorder) Reset()                       { r.mu.Lock(); r.seqs = nil; r.mu.Unlock() }
func (r *recorder) applied() []uint64            { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.seqs) }
func (r *recorder) count() int                   { r.mu.Lock(); defer r.mu.Unlock(); return len(r.seqs) }

var _ projections.Model = (*recorder)(nil)

// Ensure the runner applies every event exactly once and in order whatever
// the feed offers it: nothing, every event, every event twice, or more
// than the tap holds (so it drops some) before the runner even runs; and
// again after a rebuild.
func TestRunnerTapAppliesEachEventOnce(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		offers int  // how many times the feed offers each event
		early  bool // the feed offers everything before the runner runs
	}{
		{"no feed", 300, 0, false},
		{"every event", 300, 1, false},
		{"every event twice", 300, 2, false},
		{"more than the tap holds", 1000, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			js := bustest.JetStream(t)
			rec := &recorder{}
			r := projections.NewRunner(js, zerolog.Nop(), rec)
			// A feed that never runs: the test offers its events itself,
			// through a tap small enough to overflow.
			tap := bus.NewFeed(js, zerolog.Nop()).Tap(64)
			r.UseTap(tap)
			last := uint64(0)
			// publish appends k events and has the feed offer them, as it
			// would after reading them.
			publish := func(k int) {
				msgs := make([]*events.Message, k)
				futures := make([]jetstream.PubAckFuture, k)
				for i := range msgs {
					m, err := events.New(events.RegisteredType, &events.Registered{InstallCode: "IC-TAP", Name: "SC", Version: "3.4"},
						events.Meta{ID: uuid.NewString(), Source: "/test"})
					if err != nil {
						t.Fatal(err)
					}
					if futures[i], err = js.PublishMsgAsync(bus.Msg(m)); err != nil {
						t.Fatal(err)
					}
					msgs[i] = m
				}
				for i, f := range futures {
					select {
					case ack := <-f.Ok():
						if ack.Sequence != last+uint64(i)+1 {
							t.Fatalf("event %d stored at %d", last+uint64(i)+1, ack.Sequence)
						}
					case err := <-f.Err():
						t.Fatal(err)
					case <-ctx.Done():
						t.Fatal(ctx.Err())
					}
				}
				end := last + uint64(k)
				for i, m := range msgs {
					seq := last + uint64(i) + 1
					nm := bus.Msg(m)
					for range tt.offers {
						tap.Offer(bus.FeedEvent{Seq: seq, Pending: end - seq, Subject: nm.Subject, Header: nm.Header, Data: nm.Data, Message: m})
					}
				}
				last = end
			}
			run := func() {
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				t.Cleanup(func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("Run: %v", err)
					}
				})
			}
			check := func(when string) {
				t.Helper()
				if err := r.CatchUp(ctx); err != nil {
					t.Fatalf("%s: %v (applied %d of %d)", when, err, rec.count(), last)
				}
				got := rec.applied()
				for i, seq := range got {
					if seq != uint64(i+1) {
						t.Fatalf("%s: event %d applied is seq %d: want 1..%d once each, in order", when, i+1, seq, last)
					}
				}
				if uint64(len(got)) != last {
					t.Fatalf("%s: applied %d events, want %d", when, len(got), last)
				}
			}

			if tt.early {
				publish(tt.n)
				run()
			} else {
				run()
				publish(tt.n / 2)
				check("first half")
				publish(tt.n - tt.n/2)
			}
			check("all")
			if err := r.Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
			publish(50)
			check("after rebuild")
		})
	}
}

// keyed is a model with one entry per event, which records how it was
// asked to grow.
type keyed struct {
	mu      sync.Mutex
	changed map[string][]byte
	grown   []int
}

func (k *keyed) Name() string { return "keyed" }
func (k *keyed) Apply(seq uint64, _ *events.Message) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.changed == nil {
		k.changed = map[string][]byte{}
	}
	k.changed["e"+strconv.FormatUint(seq, 10)] = []byte("{}")
}
func (k *keyed) Changes() map[string][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.changed
	k.changed = nil
	return c
}
func (k *keyed) Restore(string, []byte) error { return nil }
func (k *keyed) Reset()                       {}
func (k *keyed) Grow(n int)                   { k.mu.Lock(); k.grown = append(k.grown, n); k.mu.Unlock() }

var _ projections.Grower = (*keyed)(nil)

// Ensure a model that can grow is told, before a replay from the first
// event, how many entries its bucket holds (the checkpoint not counted),
// and that one followed from its checkpoint is not.
func TestRunnerGrowsModelBeforeReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	const n = 40
	publishRegistered(ctx, t, js, "IC-GROW", n)
	start := func(t *testing.T, k *keyed) (*projections.Runner, func()) {
		rctx, stop := context.WithCancel(ctx)
		r := projections.NewRunner(js, zerolog.Nop(), k)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		return r, func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	tests := []struct {
		name string
		act  func(r *projections.Runner)
		want []int
	}{
		{"new bucket: replay from the start, nothing held", func(*projections.Runner) {}, []int{0}},
		// Nothing new since: CatchUp must still return at once.
		{"restart from the checkpoint", func(*projections.Runner) {}, nil},
		{"rebuild", func(r *projections.Runner) {
			if err := r.Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
		}, []int{n}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &keyed{}
			r, stop := start(t, k)
			tt.act(r)
			if err := r.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			stop()
			k.mu.Lock()
			defer k.mu.Unlock()
			if !slices.Equal(k.grown, tt.want) {
				t.Fatalf("Grow called with %v, want %v", k.grown, tt.want)
			}
		})
	}
}

// Ensure a runner restarted on a stream with nothing new since its
// checkpoint says it has caught up: waiters for the restored sequence must
// be woken even though no event will come to wake them.
func TestRunnerRestartCatchesUpWithNothingNew(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	publishRegistered(ctx, t, js, "IC-IDLE", 5)
	for _, run := range []string{"first start", "restart"} {
		rctx, stop := context.WithCancel(ctx)
		r := projections.NewRunner(js, zerolog.Nop(), &recorder{})
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.CatchUp(wctx)
		wcancel()
		stop()
		if rerr := <-done; rerr != nil {
			t.Errorf("%s: Run: %v", run, rerr)
		}
		if err != nil {
			t.Fatalf("%s: CatchUp: %v (applied %d)", run, err, r.Applied())
		}
	}
}

// publishRegistered appends n registered events of SmartServer ic.
func publishRegistered(ctx context.Context, t *testing.T, js jetstream.JetStream, ic string, n int) {
	t.Helper()
	for range n {
		m, err := events.New(events.RegisteredType, &events.Registered{InstallCode: ic, Name: "SC", Version: "3.4"},
			events.Meta{ID: uuid.NewString(), Source: "/test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, bus.Msg(m)); err != nil {
			t.Fatal(err)
		}
	}
}

// wide is a model whose first event changes n entries at once, as a fleet
// rollout's flush does.
type wide struct {
	keyed
	n    int
	done bool
}

func (w *wide) Name() string { return "wide" }
func (w *wide) Apply(uint64, *events.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.changed = map[string][]byte{}
	for i := range w.n {
		w.changed["d"+strconv.Itoa(i)] = []byte("{}")
	}
}

// leading is an election this process always wins.
type leading struct{}

func (leading) Lead(ctx context.Context, _ string, lead func(context.Context) error) error {
	return lead(ctx)
}

// Ensure a flush of more entries than nats.go lets wait for their acks
// (4,000) is written whole, window after window, by the plain and the
// fenced writer (whose checkpoint expects the stream's sequence across
// windows). Under load, one such flush failed the writer with "stalled
// with too many outstanding async published messages"; an idle test
// server acks too fast to show that, so this guards the windows' writes.
func TestRunnerWritesAFlushLargerThanTheAckWindow(t *testing.T) {
	for _, fenced := range []bool{false, true} {
		t.Run(fmt.Sprintf("fenced=%v", fenced), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			js := bustest.JetStream(t)
			publishRegistered(ctx, t, js, "IC-WIDE", 1)
			w := &wide{n: 12_000}
			r := projections.NewRunner(js, zerolog.Nop(), w)
			if fenced {
				r.Elect(leading{})
			}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			if err := r.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, projections.Bucket(w))
			if err != nil {
				t.Fatal(err)
			}
			var got uint64
			for ctx.Err() == nil {
				if st, err := kv.Status(ctx); err == nil {
					if got = st.Values(); got >= uint64(w.n) {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if got < uint64(w.n) {
				t.Errorf("bucket holds %d entries, want %d and the checkpoint", got, w.n)
			}
		})
	}
}
