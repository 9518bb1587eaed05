package bench

import "time"

// cpuMark is the CPU time this process and the NATS server's own process
// had used at one moment.
type cpuMark struct {
	self, nats     time.Duration
	selfOK, natsOK bool
}

func (b *run) cpuNow() cpuMark {
	var m cpuMark
	m.self, m.selfOK = cpuTime(0)
	if b.natsPID != 0 {
		m.nats, m.natsOK = cpuTime(b.natsPID)
	}
	return m
}

// perUnit is the CPU each process used from m to now, in µs per unit of
// work; 0 where it was not measured.
func (m cpuMark) perUnit(now cpuMark, units int) (self, nats float64) {
	if units <= 0 {
		return 0, 0
	}
	if m.selfOK && now.selfOK {
		self = float64((now.self - m.self).Microseconds()) / float64(units)
	}
	if m.natsOK && now.natsOK {
		nats = float64((now.nats - m.nats).Microseconds()) / float64(units)
	}
	return self, nats
}
