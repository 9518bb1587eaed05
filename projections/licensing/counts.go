package licensing

import "github.com/licensebus/licensebus/events"

// Count is how many licenses of a kind are in a state.
type Count struct {
	Kind, State string
	N           int
}

// States lists the inventory's license states.
func States() []string { return []string{StateCloud, StateActivating, StateActive, StateTransferring} }

// Counts returns how many licenses of each kind (capacity, maintenance) are
// in each state, zeros included, so a metric over them keeps its series.
// It walks the inventory (well under a millisecond at 10^4 SmartServers).
func (m *Model) Counts() []Count {
	kinds := []string{events.Capacity, events.Maintenance}
	states := States()
	n := make([]int, len(kinds)*len(states))
	m.mu.RLock()
	for _, l := range m.licenses {
		k := 0
		if l.Kind == events.Maintenance {
			k = 1
		}
		for s, st := range states {
			if l.State == st {
				n[k*len(states)+s]++
				break
			}
		}
	}
	m.mu.RUnlock()
	out := make([]Count, 0, len(n))
	for k, kind := range kinds {
		for s, st := range states {
			out = append(out, Count{Kind: kind, State: st, N: n[k*len(states)+s]})
		}
	}
	return out
}
