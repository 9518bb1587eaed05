package bench

import (
	"runtime/metrics"
	"time"
)

// GCStats are a process's collector figures since it started, from
// runtime/metrics: what a phase's share of collection costs is computed
// from, for the product's process and the NATS server's alike.
type GCStats struct {
	Cycles uint64 `json:"cycles"`
	// CPU is the estimated CPU time of the collector (marking, on spare
	// Ps too, and pauses), as the runtime accounts it at each cycle's end.
	CPU       time.Duration `json:"cpu"`
	Allocated uint64        `json:"allocated_bytes"`
}

// ReadGCStats reads this process's GCStats.
func ReadGCStats() GCStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	var g GCStats
	if s[0].Value.Kind() == metrics.KindUint64 {
		g.Cycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		g.CPU = time.Duration(s[1].Value.Float64() * float64(time.Second))
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		g.Allocated = s[2].Value.Uint64()
	}
	return g
}

// gcMark is both processes' GCStats at one moment; nats is zero when the
// server shares this process or could not say.
type gcMark struct {
	self, nats GCStats
	natsOK     bool
}

func (b *run) gcNow() gcMark {
	m := gcMark{self: ReadGCStats()}
	if b.natsGC != nil {
		if g, err := b.natsGC(); err == nil {
			m.nats, m.natsOK = g, true
		}
	}
	return m
}

// gcPhase is what the collector did in each process from m to now.
type gcPhase struct {
	cycles [2]uint64
	cores  [2]float64 // collector CPU per second of the phase
	kb     [2]float64 // allocated KB per unit of work
}

func (m gcMark) until(now gcMark, elapsed time.Duration, units int) gcPhase {
	var p gcPhase
	for i, pair := range [2][2]GCStats{{m.self, now.self}, {m.nats, now.nats}} {
		if i == 1 && (!m.natsOK || !now.natsOK) {
			break
		}
		a, b := pair[0], pair[1]
		p.cycles[i] = b.Cycles - a.Cycles
		if elapsed > 0 {
			p.cores[i] = (b.CPU - a.CPU).Seconds() / elapsed.Seconds()
		}
		if units > 0 {
			p.kb[i] = float64(b.Allocated-a.Allocated) / 1024 / float64(units)
		}
	}
	return p
}
