package bench

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Ensure CPU time is read for this process, by pid too, and that a process
// that does not exist is reported as unmeasured rather than as zero.
func TestCPUTime(t *testing.T) {
	// spin works until the process used three clock ticks of CPU, as
	// getrusage says, or 10 s went by: on a loaded machine a spin of fixed
	// wall time may get no CPU at all.
	used := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	spin := func() {
		start := used()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && used()-start < 3*clockTick; {
			for range 100_000 {
			}
		}
	}
	for _, tc := range []struct {
		name   string
		pid    int
		wantOK bool
	}{
		{"self", 0, true},
		{"self by pid", os.Getpid(), true},
		{"no such process", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, ok := cpuTime(tc.pid)
			if ok != tc.wantOK {
				t.Fatalf("cpuTime(%d) ok=%v, want %v", tc.pid, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			spin()
			after, _ := cpuTime(tc.pid)
			if after-before < 2*clockTick {
				t.Errorf("cpuTime(%d) moved %v while this process used three clock ticks, want at least %v", tc.pid, after-before, 2*clockTick)
			}
		})
	}
}
