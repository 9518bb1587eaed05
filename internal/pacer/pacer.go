// Package pacer holds the collector's pacing policy of licensebus
// processes: how far the heap may grow past its live size before the next
// collection. Go's GOGC gives a fixed ratio (100: the heap may double);
// licensebus keeps hundreds of megabytes of folds live at fleet scale,
// where doubling costs as much memory again, while a small live heap
// doubling means a collection every few megabytes — on two shared cores,
// a cycle every second or two in the NATS server, each stretching the
// latency of everything in flight. The policy gives the heap a floor of
// headroom and, above it, a share of the live heap.
package pacer

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy is how much the heap may grow between collections: Floor bytes,
// or Share of the live heap when that is more; as a GOGC, at most Max.
type Policy struct {
	Floor int64
	Share float64
	Max   int
}

// Default is licensebus's policy: 256 MiB of headroom, or 40 % of the live
// heap once that is larger (GOGC 40 from 640 MiB live), GOGC at most 1000.
// The share sets the peak of a large heap: about 1.4 times the live heap
// plus the runtime's own, which for the 10k × 50 fleet is what keeps each
// process within 1 GiB (with half, licensebus peaked at 1,032–1,038 MB).
var Default = Policy{Floor: 256 << 20, Share: 0.4, Max: 1000}

// Percent is the GOGC that gives a live heap of live bytes its headroom.
func (p Policy) Percent(live int64) int {
	live = max(live, 1)
	room := max(p.Floor, int64(float64(live)*p.Share))
	pct := int(min(int64(p.Max), 100*room/live))
	return max(pct, int(100*p.Share), 1)
}

// Headroom is the heap growth the policy allows a live heap of live bytes.
func (p Policy) Headroom(live int64) int64 { return live * int64(p.Percent(live)) / 100 }

const (
	liveMetric   = "/gc/heap/live:bytes"
	cyclesMetric = "/gc/cycles/total:gc-cycles"
)

// Run applies p until ctx ends: it sets GOGC now, and again after each
// collection from the live heap that collection found. every is how often
// it looks for a finished collection (a tenth of a second is plenty: a
// cycle at fleet scale takes longer than that). It returns when ctx ends,
// leaving the last GOGC set.
func Run(ctx context.Context, p Policy, every time.Duration) {
	samples := []metrics.Sample{{Name: liveMetric}, {Name: cyclesMetric}}
	var seen uint64
	apply := func() {
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return // not this Go's metrics: leave GOGC as it is
		}
		cycles := samples[1].Value.Uint64()
		if cycles == seen && seen != 0 {
			return
		}
		seen = max(cycles, 1)
		debug.SetGCPercent(p.Percent(int64(samples[0].Value.Uint64())))
	}
	apply()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			apply()
		}
	}
}
