package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
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
	cpu, gc := b.cpuNow(), b.gcNow()
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
	burst := gc.until(b.gcNow(), 0, n)
	r.ActAllocKB, r.NATSActAllocKB = burst.kb[0], burst.kb[1]
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
	var stopProbe func() (ProbeResult, error)
	if b.cfg.Probe != nil {
		if stopProbe, err = b.cfg.Probe(cctx, b.url, b.creds); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
	}
	gc, start := b.gcNow(), time.Now()
	lat, err := b.latency(cctx, ts[n:], r.E2EOffered)
	if stopProbe != nil {
		pr, perr := stopProbe()
		if err == nil && perr != nil {
			return fmt.Errorf("probe: %w", perr)
		}
		r.Probe = &pr
	}
	if err != nil {
		return err
	}
	phase := gc.until(b.gcNow(), time.Since(start), m)
	r.E2EGCCycles, r.NATSE2EGCCycles = phase.cycles[0], phase.cycles[1]
	r.E2EGCCores, r.NATSE2EGCCores = phase.cores[0], phase.cores[1]
	r.LatencySamples = len(lat)
	r.E2EP50, r.E2EP99, r.E2EP999 = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(percentile(lat, 0.999))
	r.E2EHops, err = b.hops(cctx, ts[n:])
	return err
}

// Hop is one step of an activation on its way to the view, timed by when
// JetStream stored what the step produced: where a slow tail comes from.
type Hop struct {
	Name   string  `json:"hop"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p99_9_ms"`
	MaxMS  float64 `json:"max_ms"`
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
		out[j] = Hop{Name: names[j], P50MS: ms(percentile(d, 0.50)), P99MS: ms(percentile(d, 0.99)), P999MS: ms(percentile(d, 0.999)), MaxMS: ms(percentile(d, 1))}
	}
	return out, nil
}
