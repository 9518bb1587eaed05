package bench

import (
	"context"
	"fmt"
	"time"
)

// tracingRounds alternate tracing off and on, so that drift over the
// phase (the heap growing, the server's store) falls on both alike.
const tracingRounds = 4

// tracingOverhead measures activations with the product's tracing on (an
// OpenTelemetry SDK with no exporter: every span made, none sent) against
// off, in alternating bursts of the same size on fresh SmartServers:
// tracing_overhead is 1 - on/off, the share of the activation rate that
// tracing costs. On a machine shared with other work the rates move more
// than the CPU each activation takes, so the licensebus process's CPU per
// activation both ways is reported too (tracing_cpu_overhead).
func (b *run) tracingOverhead(ctx context.Context) error {
	if b.p.Tracing == nil {
		return nil
	}
	n := max(1, b.cfg.Activations/tracingRounds)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	b.progress("preparing %d SmartServers for tracing off and on", n*tracingRounds)
	ts, err := b.prepare(cctx, "BENCH-TR", n*tracingRounds, 200)
	if err != nil {
		return err
	}
	var elapsed, cpu [2]time.Duration // off, on
	for round := range tracingRounds {
		on := round%2 == 1
		b.p.Tracing(on)
		if err := b.settle(cctx); err != nil {
			return err
		}
		b.progress("activating %d licenses, tracing %v", n, map[bool]string{false: "off", true: "on"}[on])
		batch := ts[round*n : (round+1)*n]
		mode := 0
		if on {
			mode = 1
		}
		mark, start := b.cpuNow(), time.Now()
		if err := b.publish(cctx, batch); err != nil {
			return err
		}
		if err := b.waitAll(cctx, batch, b.visible); err != nil {
			return fmt.Errorf("tracing %v: %w", on, err)
		}
		elapsed[mode] += time.Since(start)
		// The burst's CPU includes what it leaves to do (audit, views).
		if err := b.settle(cctx); err != nil {
			return err
		}
		if now := b.cpuNow(); mark.selfOK && now.selfOK {
			cpu[mode] += now.self - mark.self
		}
	}
	b.p.Tracing(false)
	per := float64(n * tracingRounds / 2)
	off, on := per/elapsed[0].Seconds(), per/elapsed[1].Seconds()
	b.r.ActivationRateUntraced, b.r.ActivationRateTraced = off, on
	b.r.TracingOverhead = 1 - on/off
	if cpu[0] > 0 {
		b.r.ActCPUUntraced, b.r.ActCPUTraced = float64(cpu[0].Microseconds())/per, float64(cpu[1].Microseconds())/per
		b.r.TracingCPUOverhead = cpu[1].Seconds()/cpu[0].Seconds() - 1
	}
	return nil
}
