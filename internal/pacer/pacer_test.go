package pacer

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live int64
		want int
	}{
		{0, 1000},        // nothing live: at most Max
		{64 * mib, 400},  // the floor: 256 MiB on 64
		{256 * mib, 100}, // the floor equals the heap: Go's default
		{512 * mib, 50},  // the floor, still: 256 on 512
		{640 * mib, 40},  // 40 % of the heap equals the floor
		{2048 * mib, 40}, // 40 % of the heap from there on
		{1 * mib, 1000},  // a tiny heap: capped
		{400 * mib, 64},  // 256 on 400
		{100 * mib, 256}, // 256 on 100
		{1 << 40, 40},    // a terabyte: still 40 %
		{300 * mib, 256 * 100 / 300},
	}
	for _, tt := range tests {
		if got := Default.Percent(tt.live); got != tt.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
		}
	}
}

// Ensure Run sets GOGC from the live heap at once and after a collection.
func TestRunSetsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	debug.SetGCPercent(100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p := Policy{Floor: 1 << 40, Share: 0.5, Max: 777} // any heap here gets Max
	go func() { Run(ctx, p, time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		cur := debug.SetGCPercent(100)
		debug.SetGCPercent(cur)
		if cur == 777 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d, want 777", cur)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
