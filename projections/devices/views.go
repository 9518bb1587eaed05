package devices

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// ErrUnknownServer is returned for a SmartServer the model has not seen.
var ErrUnknownServer = errors.New("unknown SmartServer")

// Devices lists the devices of SmartServer ic in the order they were added.
func (m *Model) Devices(ic string) ([]Row, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.servers[ic]
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownServer, ic)
	}
	out := make([]Row, len(s.table.Devices))
	for i := range s.table.Devices {
		out[i] = s.row(i)
	}
	return out, nil
}

// Fleet is the fleet counters: per SmartServer and in total.
type Fleet struct {
	Total        Counts   `json:"total"`
	SmartServers []Server `json:"smartservers"`
}

// Fleet returns the counters of every SmartServer with devices or a
// capacity, and their sum.
func (m *Model) Fleet() Fleet {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f := Fleet{Total: m.total, SmartServers: make([]Server, 0, len(m.servers))}
	for _, s := range m.servers {
		srv := s.Server
		srv.Licenses = nil
		f.SmartServers = append(f.SmartServers, srv)
	}
	slices.SortFunc(f.SmartServers, func(a, b Server) int { return cmp.Compare(a.InstallCode, b.InstallCode) })
	return f
}

// Totals returns the fleet's devices per colour; it costs nothing, so a
// dashboard may poll it.
func (m *Model) Totals() Counts {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.total
}
