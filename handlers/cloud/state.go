package cloud

import (
	"time"

	"github.com/licensebus/licensebus/events"
)

// customer is the cloud's view of one customer account.
type customer struct {
	name string
	seq  uint64
}

// license is the cloud's view of one license: who owns it and where it is
// bound. seq is the last stream sequence on the license's subjects, the
// expectation of the next append.
type license struct {
	customer string
	kind     string
	devices  int
	expires  string
	boundTo  string
	// boundBy is the id of the message whose handling bound the license, so
	// a redelivered request is recognised as already answered.
	boundBy string
	seq     uint64
}

// state is everything the cloud decides on, folded from events only.
type state struct {
	customers map[string]*customer
	licenses  map[string]*license
	// handled holds the ids of the commands and events that caused an event
	// already: a redelivery of one of them gets no second effect.
	handled events.IDSet
}

func newState() *state {
	return &state{
		customers: make(map[string]*customer),
		licenses:  make(map[string]*license),
	}
}

// apply folds one event. It is idempotent per aggregate: an event at or
// below the aggregate's last sequence was applied already.
func (s *state) apply(seq uint64, m *events.Message) {
	if c := m.CausationID(); c != "" {
		s.handled.Add(c)
	}
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		if c, ok := s.customers[d.CustomerID]; ok && c.seq >= seq {
			return
		}
		s.customers[d.CustomerID] = &customer{name: d.Name, seq: seq}
	case *events.LicenseAdded:
		if l, ok := s.licenses[d.LicenseID]; ok && l.seq >= seq {
			return
		}
		s.licenses[d.LicenseID] = &license{customer: d.CustomerID, kind: d.Kind, devices: d.Devices, expires: d.Expires, seq: seq}
	case *events.LicenseBound:
		if l := s.licenses[d.LicenseID]; l != nil && l.seq < seq {
			l.boundTo, l.boundBy, l.seq = d.InstallCode, m.CausationID(), seq
		}
	case *events.LicenseReleased:
		if l := s.licenses[d.LicenseID]; l != nil && l.seq < seq {
			l.boundTo, l.boundBy, l.seq = "", "", seq
		}
	}
}

// now is the cloud's clock, truncated so dates in events are stable.
func now(f func() time.Time) time.Time { return f().UTC().Truncate(time.Millisecond) }
