//go:build !linux

package bench

// Memory figures come from getrusage and /proc, so only Linux has them;
// elsewhere they read 0.
func peakRSSMB() float64    { return 0 }
func currentRSSMB() float64 { return 0 }

func processRSSMB(int) (peak, now float64) { return 0, 0 }
