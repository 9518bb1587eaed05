package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// target is one activation: a SmartServer ready to activate, its license,
// and when the command went out and its effect became visible.
type target struct {
	ic, lid    string
	msg        *nats.Msg
	sent, seen time.Time
	activated  time.Time // when JetStream stored its license_activated event
}

// activations measures activations end to end: N as fast as possible, then
// M at half that rate for latency.
func (b *run) activations(ctx context.Context) error {
	n, m := b.cfg.Activations, b.cfg.LatencyActivations
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	b.progress("preparing %d SmartServers and capacity licenses", n+m)
	ts, err := b.prepare(cctx, "BENCH-SS", n+m, 200)
	if err != nil {
		return err
	}
	if err := b.settle(cctx); err != nil {
		return err
	}
	before, err := messagesWritten(cctx, b.js)
	if err != nil {
		return err
	}

	b.progress("activating %d licenses as fast as possible", n)
	var elapsed time.Duration
	cpu := b.cpuNow()
	err = b.profile(func() error {
		start := time.Now()
		if err := b.publish(cctx, ts[:n]); err != nil {
			return err
		}
		if err := b.waitAll(cctx, ts[:n], b.visible); err != nil {
			return err
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		return err
	}
	// Until settled: the auditor's and the views' share of the burst
	// counts too, as its messages do.
	if err := b.settle(cctx); err != nil {
		return err
	}
	r := b.r
	r.ActCPU, r.NATSActCPU = cpu.perUnit(b.cpuNow(), n)
	after, err := messagesWritten(cctx, b.js)
	if err != nil {
		return err
	}
	r.Activations = n
	r.ActivationRate = float64(n) / elapsed.Seconds()
	r.MsgsPerAct = float64(after-before) / float64(n)
	r.ProductMsgs = r.ActivationRate * r.MsgsPerAct
	r.Efficiency = r.ProductMsgs / r.RawAppend
	if r.NATSRawCPU > 0 && r.MsgsPerAct > 0 {
		r.NATSMsgCost = r.NATSActCPU / r.MsgsPerAct / r.NATSRawCPU
	}

	r.E2EOffered = r.ActivationRate / 2
	b.progress("activating %d licenses at %.0f/s for latency", m, r.E2EOffered)
	lat, err := b.latency(cctx, ts[n:], r.E2EOffered)
	if err != nil {
		return err
	}
	r.LatencySamples = len(lat)
	r.E2EP50, r.E2EP99 = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99))
	r.E2EHops, err = b.hops(cctx, ts[n:])
	return err
}

// Hop is one step of an activation on its way to the view, timed by when
// JetStream stored what the step produced: where a slow tail comes from.
type Hop struct {
	Name  string  `json:"hop"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// hops splits the latency of the targets into the steps of an activation,
// from the store times of the command and of the events between. The
// server runs on this machine, so its clock is the bench's.
func (b *run) hops(ctx context.Context, ts []*target) ([]Hop, error) {
	cmds, err := b.js.Stream(ctx, events.CommandsStream)
	if err != nil {
		return nil, err
	}
	evs, err := b.js.Stream(ctx, events.EventsStream)
	if err != nil {
		return nil, err
	}
	requested, _ := events.Lookup(events.ActivationRequestedType)
	bound, _ := events.Lookup(events.LicenseBoundType)
	at := make([][3]time.Time, len(ts)) // command, activation_requested, license bound stored
	err = parallel(ctx, len(ts), func(i int) error {
		t := ts[i]
		for j, q := range []struct {
			s    jetstream.Stream
			subj string
		}{
			{cmds, t.msg.Subject},
			{evs, events.EventSubject(requested, &events.ActivationRequested{InstallCode: t.ic})},
			{evs, events.EventSubject(bound, &events.LicenseBound{LicenseID: t.lid})},
		} {
			m, err := q.s.GetLastMsgForSubject(ctx, q.subj)
			if err != nil {
				return fmt.Errorf("latency by hop: %s: %w", q.subj, err)
			}
			at[i][j] = m.Time
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := []string{"command stored", "device handler: activation_requested stored", "cloud handler: license bound stored",
		"device handler: license_activated stored", "projections: visible"}
	steps := make([][]time.Duration, len(names))
	for i, t := range ts {
		times := []time.Time{t.sent, at[i][0], at[i][1], at[i][2], t.activated, t.seen}
		for j := range names {
			steps[j] = append(steps[j], times[j+1].Sub(times[j]))
		}
	}
	out := make([]Hop, len(names))
	for j, d := range steps {
		out[j] = Hop{Name: names[j], P50MS: ms(percentile(d, 0.50)), P99MS: ms(percentile(d, 0.99)), MaxMS: ms(percentile(d, 1))}
	}
	return out, nil
}

// prepare creates a customer, n SmartServers with the Customer ID set and
// licenses downloaded, and n capacity licenses of devices devices, through
// commands as a technician would, and returns one ActivateLicense command
// per SmartServer.
func (b *run) prepare(ctx context.Context, prefix string, n, devices int) ([]*target, error) {
	c := b.client
	cust := uuid.NewString()
	if _, err := c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{CustomerID: cust, Name: prefix}, client.SendOptions{}); err != nil {
		return nil, fmt.Errorf("create customer: %w", err)
	}
	ts := make([]*target, n)
	for i := range ts {
		ts[i] = &target{ic: fmt.Sprintf("%s-%06d", prefix, i), lid: uuid.NewString()}
	}
	// SmartServers first: while the customer has no licenses yet, checking
	// a SmartServer's download view costs next to nothing.
	err := parallel(ctx, n, func(i int) error {
		ic := ts[i].ic
		return b.send(ctx,
			command{events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"}},
			command{events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cust}},
			command{events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}})
	})
	if err != nil {
		return nil, fmt.Errorf("prepare SmartServers: %w", err)
	}
	if err := b.waitAll(ctx, ts, func(t *target) bool {
		_, err := b.p.Licensing.Downloads(t.ic)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("prepare SmartServers: %w", err)
	}
	err = parallel(ctx, n, func(i int) error {
		return b.send(ctx, command{events.AddLicenseType, &events.AddLicense{LicenseID: ts[i].lid, CustomerID: cust, Kind: events.Capacity, Devices: devices}})
	})
	if err != nil {
		return nil, fmt.Errorf("prepare licenses: %w", err)
	}
	inCloud := 0
	if err := poll(ctx, func() bool {
		inCloud = len(b.p.Licensing.Licenses(licensing.LicenseFilter{CustomerID: cust, State: licensing.StateCloud}))
		return inCloud == n
	}); err != nil {
		return nil, fmt.Errorf("%d of %d licenses in the cloud: %w", inCloud, n, err)
	}
	for _, t := range ts {
		id := uuid.NewString()
		m, err := events.NewCommand(events.ActivateLicenseType, &events.ActivateLicense{InstallCode: t.ic, LicenseID: t.lid},
			events.Meta{ID: id, Source: "/licensebus/bench", CorrelationID: id, Actor: "bench"})
		if err != nil {
			return nil, err
		}
		t.msg = bus.Msg(m)
	}
	return ts, nil
}

// command is one command the bench sends.
type command struct {
	t events.Type
	d events.Data
}

// send sends commands one after the other, each once JetStream stored the
// one before: the handler sees them in that order.
func (b *run) send(ctx context.Context, cmds ...command) error {
	for _, c := range cmds {
		if _, err := b.client.Send(ctx, c.t, c.d, client.SendOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// publish sends the targets' activation commands asynchronously, as fast
// as the window allows.
func (b *run) publish(ctx context.Context, ts []*target) error {
	for _, t := range ts {
		if err := publishAsync(ctx, b.pub, t.msg); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs f(0..n-1) on 64 goroutines and returns the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(64, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// poll calls done every 20ms until it returns true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// visible reports whether the Manage Licenses view of t's SmartServer shows
// t's license active.
func (b *run) visible(t *target) bool {
	rows, err := b.p.Licensing.ManageLicenses(t.ic)
	if err != nil {
		return false
	}
	for _, r := range rows {
		if r.LicenseID == t.lid {
			return r.State == licensing.StateActive
		}
	}
	return false
}

// waitAll returns once done holds for every target. It checks the oldest
// unfinished target each time the projections apply an event: targets
// finish roughly in order, so this costs next to nothing and returns within
// one applied event of the last one finishing.
func (b *run) waitAll(ctx context.Context, ts []*target, done func(*target) bool) error {
	next := 0
	for {
		applied := b.p.Projections.Applied()
		for next < len(ts) && done(ts[next]) {
			next++
		}
		if next == len(ts) {
			return nil
		}
		if err := b.waitApplied(ctx, applied+1); err != nil {
			return fmt.Errorf("%d of %d SmartServers never got there (first %s): %w", len(ts)-next, len(ts), ts[next].ic, err)
		}
	}
}

// stallTimeout is how long the bench waits for the projections to apply
// anything before it calls the product stuck.
const stallTimeout = 30 * time.Second

// waitApplied waits until the projections applied seq, failing if they
// apply nothing for stallTimeout.
func (b *run) waitApplied(ctx context.Context, seq uint64) error {
	wctx, cancel := context.WithTimeout(ctx, stallTimeout)
	defer cancel()
	err := b.p.Projections.WaitFor(wctx, seq)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("projections applied nothing for %v", stallTimeout)
	}
	return err
}

// latency sends one activation every 1/rate seconds (open loop: a late
// send does not delay the next) and returns, per activation, the time from
// publishing the command to the Manage Licenses view showing the license
// active.
func (b *run) latency(ctx context.Context, ts []*target, rate float64) ([]time.Duration, error) {
	w, err := b.watch(ctx, ts)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	watched := make(chan error, 1)
	go func() { watched <- w.wait(ctx) }()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i, t := range ts {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		t.sent = time.Now()
		if err := publishAsync(ctx, b.pub, t.msg); err != nil {
			return nil, err
		}
	}
	if err := <-watched; err != nil {
		return nil, err
	}
	lat := make([]time.Duration, len(ts))
	for i, t := range ts {
		lat[i] = t.seen.Sub(t.sent)
	}
	return lat, nil
}

// watcher notes when activations become visible. Checking every target in
// flight on every applied event would cost O(in flight) per event, and
// under a backlog that alone could starve the product. Instead a
// headers-only consumer tells the watcher the stream sequence of each
// license_activated event; the projections apply events in stream order,
// so an activation is visible from the moment they have applied that
// sequence.
type watcher struct {
	b     *run
	n     int
	cc    jetstream.ConsumeContext
	mu    sync.Mutex
	queue []stored // in stream order
}

type stored struct {
	t   *target
	seq uint64
}

func (b *run) watch(ctx context.Context, ts []*target) (*watcher, error) {
	byIC := make(map[string]*target, len(ts))
	for _, t := range ts {
		byIC[t.ic] = t
	}
	w := &watcher{b: b, n: len(ts)}
	cons, err := b.js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"lb.evt.smartserver.*.license_activated"}, DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: true,
	})
	if err != nil {
		return nil, err
	}
	w.cc, err = cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			return
		}
		// lb.evt.smartserver.<install-code>.license_activated
		tokens := strings.Split(msg.Subject(), ".")
		if len(tokens) != 5 {
			return
		}
		if t := byIC[tokens[3]]; t != nil {
			w.mu.Lock()
			t.activated = md.Timestamp
			w.queue = append(w.queue, stored{t, md.Sequence.Stream})
			w.mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watcher) stop() { w.cc.Stop() }

// wait returns once every target is visible, and sets their seen time.
func (w *watcher) wait(ctx context.Context) error {
	done, progress := 0, time.Now()
	for {
		applied := w.b.p.Projections.Applied()
		w.mu.Lock()
		i := 0
		for ; i < len(w.queue) && w.queue[i].seq <= applied; i++ {
			t := w.queue[i].t
			if !w.b.visible(t) {
				w.mu.Unlock()
				return fmt.Errorf("license %s applied at seq %d but not active in the Manage Licenses view of %s", t.lid, w.queue[i].seq, t.ic)
			}
			t.seen = time.Now()
		}
		w.queue = w.queue[i:]
		w.mu.Unlock()
		if i > 0 {
			done, progress = done+i, time.Now()
		}
		if done == w.n {
			return nil
		}
		if time.Since(progress) > stallTimeout {
			return fmt.Errorf("%d of %d activations never became visible", w.n-done, w.n)
		}
		// Wake on the next applied event, or after a millisecond for a
		// sequence the consumer reports after the projections applied it.
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		_ = w.b.p.Projections.WaitFor(wctx, applied+1)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// settle waits until the product is idle: its durable consumers have
// nothing pending or unacked, the projections have persisted everything
// in the event stream, and the audit trail records every command and
// event.
func (b *run) settle(ctx context.Context) error {
	var prev uint64
	lastReport := time.Now()
	return poll(ctx, func() bool {
		last, err := bus.LastSeq(ctx, b.js, events.EventsStream)
		if err != nil || last != prev {
			prev = last
			return false // not settled while events still arrive
		}
		for _, ck := range b.p.Projections.Checkpoints() {
			if ck < last {
				return false
			}
		}
		idle, err := durablesIdle(ctx, b.js)
		if err != nil || !idle {
			return false
		}
		if idle, err = reactorsIdle(ctx, b.js); err != nil || !idle {
			return false
		}
		// The auditor trails the handlers under load; a phase that
		// starts while it catches up measures the catching up too.
		st, err := audit.ReadStatus(ctx, b.js)
		if err != nil || st.Behind() > 0 {
			if err == nil && time.Since(lastReport) > time.Second {
				b.progress("waiting for the auditor: %d messages not recorded yet", st.Behind())
				lastReport = time.Now()
			}
			return false
		}
		return true
	})
}

// durablesIdle reports whether every durable consumer of the command and
// event streams has handled all it was given.
func durablesIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for _, name := range []string{events.CommandsStream, events.EventsStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false, err
		}
		l := s.ListConsumers(ctx)
		idle := true
		for info := range l.Info() {
			if info.Config.Durable != "" && (info.NumPending > 0 || info.NumAckPending > 0) {
				idle = false
			}
		}
		if err := l.Err(); err != nil {
			return false, err
		}
		if !idle {
			return false, nil
		}
	}
	return true, nil
}

// reactorsIdle reports whether every reactor's stored checkpoint covers the
// event stream: all it was given has been handled (a reactor stores its
// checkpoint a few times a second).
func reactorsIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	_, states, err := bus.Reactors(ctx, js)
	if err != nil {
		return false, err
	}
	for _, st := range states {
		if st.Behind > 0 {
			return false, nil
		}
	}
	return true, nil
}

// messagesWritten sums the last sequence of every stream but the raw one:
// how many messages the product has written, KV buckets included, counting
// those a KV key's newer value has since replaced.
func messagesWritten(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	var n uint64
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		if info.Config.Name != rawStream {
			n += info.State.LastSeq
		}
	}
	if err := l.Err(); err != nil {
		return 0, err
	}
	return n, nil
}

// replayRounds is how often replay and rebuild each run: both move by a
// quarter or more from one run to the next on a small machine, so the
// bench takes the median of rounds that alternate the two.
const replayRounds = 3

// replay reads the whole event stream raw, then rebuilds the projections
// from the same events, replayRounds times.
func (b *run) replay(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := b.settle(cctx); err != nil {
		return err
	}
	var raw, rebuilt []float64
	var cpu [4][]float64 // raw replay, its server; rebuild, its server
	for round := range replayRounds {
		b.progress("raw replay of the event stream (round %d of %d)", round+1, replayRounds)
		mark := b.cpuNow()
		n, rate, err := replay(cctx, b.js, events.EventsStream)
		if err != nil {
			return err
		}
		self, nats := mark.perUnit(b.cpuNow(), n)
		cpu[0], cpu[1] = append(cpu[0], self), append(cpu[1], nats)
		b.r.ReplayEvents = n
		raw = append(raw, rate)
		mark = b.cpuNow()
		rate, err = b.rebuild(cctx, n, round == 0)
		if err != nil {
			return err
		}
		// (Includes the settle after the rebuild: a few ms of polling.)
		self, nats = mark.perUnit(b.cpuNow(), n)
		cpu[2], cpu[3] = append(cpu[2], self), append(cpu[3], nats)
		rebuilt = append(rebuilt, rate)
	}
	b.r.RawReplay, b.r.Rebuild = median(raw), median(rebuilt)
	b.r.RebuildRatio = b.r.Rebuild / b.r.RawReplay
	b.r.ReplayCPU, b.r.NATSReplayCPU = median(cpu[0]), median(cpu[1])
	b.r.RebuildCPU, b.r.NATSRebuildCPU = median(cpu[2]), median(cpu[3])
	return nil
}

// rebuild rebuilds the projections over the n events of the stream and
// returns events/s; profile says whether it is the one profiled.
func (b *run) rebuild(ctx context.Context, n int, profile bool) (float64, error) {
	b.progress("projections rebuild over %d events", n)
	profile = profile && b.cfg.RebuildCPUProfile != nil
	if profile {
		if err := pprof.StartCPUProfile(b.cfg.RebuildCPUProfile); err != nil {
			return 0, err
		}
	}
	before, err := messagesWritten(ctx, b.js)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = b.p.Projections.Rebuild(ctx)
	elapsed := time.Since(start)
	if profile {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	if err := b.settle(ctx); err != nil {
		return 0, err
	}
	after, err := messagesWritten(ctx, b.js)
	if err != nil {
		return 0, err
	}
	b.progress("rebuild took %s and wrote %d view entries and checkpoints", elapsed.Round(time.Millisecond), after-before)
	return float64(n) / elapsed.Seconds(), nil
}
