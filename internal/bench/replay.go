package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/licensebus/licensebus/events"
)

// replayRounds is how often replay and rebuild each run: both move a lot
// from one run to the next on a small machine, so the bench takes the
// median of rounds that alternate the two.
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
