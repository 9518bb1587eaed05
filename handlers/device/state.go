package device

import (
	"maps"
	"slices"

	"github.com/licensebus/licensebus/events"
)

// active is a license active on a SmartServer.
type active struct {
	kind    string
	devices int
	expires string
	// by is the id of the cloud's bound event that activated it.
	by string
}

// smartserver is the device side's state of one SmartServer. seq is the last
// stream sequence on its subjects, the expectation of its next append.
type smartserver struct {
	name, version string
	customer      string
	// downloadedFor is the customer whose licenses were last downloaded;
	// it is cleared when the Customer ID changes.
	downloadedFor string
	active        map[string]active
	// transferring is the license set of a transfer in flight; released
	// marks those the cloud has taken back; transferBy is its request id.
	transferring []string
	released     map[string]bool
	transferBy   string
	// devices is the DMM device table; auto is the reactive provisioning
	// policy.
	devices events.DeviceTable
	auto    bool
	seq     uint64
}

type state struct {
	servers   map[string]*smartserver
	customers map[string]bool
	handled   events.IDSet
	// owners maps a device id to the SmartServer it is on.
	owners map[string]string
}

func newState() *state {
	return &state{servers: make(map[string]*smartserver), customers: make(map[string]bool),
		owners: make(map[string]string)}
}

// apply folds one event; events at or below a SmartServer's sequence were
// applied already.
func (s *state) apply(seq uint64, m *events.Message) {
	if c := m.CausationID(); c != "" {
		s.handled.Add(c)
	}
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		s.customers[d.CustomerID] = true
		return
	case *events.LicenseReleased:
		if ss := s.servers[d.InstallCode]; ss != nil && slices.Contains(ss.transferring, d.LicenseID) {
			ss.released[d.LicenseID] = true
		}
		return
	}
	if m.Info.Aggregate != "smartserver" || m.Data == nil {
		return
	}
	ic := m.Data.Key()
	ss := s.servers[ic]
	if ss != nil && ss.seq >= seq {
		return
	}
	if ss == nil {
		if _, ok := m.Data.(*events.Registered); !ok {
			return
		}
		ss = &smartserver{active: make(map[string]active)}
		s.servers[ic] = ss
	}
	ss.seq = seq
	switch d := m.Data.(type) {
	case *events.Registered:
		ss.name, ss.version = d.Name, d.Version
	case *events.CustomerIDSet:
		if ss.customer != d.CustomerID {
			ss.downloadedFor = ""
		}
		ss.customer = d.CustomerID
	case *events.LicensesDownloaded:
		ss.downloadedFor = d.CustomerID
	case *events.LicenseActivated:
		ss.active[d.LicenseID] = active{kind: d.Kind, devices: d.Devices, expires: d.Expires, by: m.CausationID()}
	case *events.TransferRequested:
		ss.transferring, ss.released, ss.transferBy = d.LicenseIDs, make(map[string]bool), m.ID()
	case *events.LicensesTransferred:
		for _, lid := range d.LicenseIDs {
			delete(ss.active, lid)
		}
		ss.transferring, ss.released, ss.transferBy = nil, nil, ""
	case *events.DeviceAdded:
		s.owners[d.DeviceID] = ic
	case *events.DevicesAdded:
		for _, nd := range d.Devices {
			s.owners[nd.DeviceID] = ic
		}
	case *events.DeviceRemoved:
		delete(s.owners, d.DeviceID)
	case *events.AutoProvisionSet:
		ss.auto = d.Enabled
	}
	ss.devices.Fold(m.Data, true)
}

// clone copies ss deeply enough to read without the state lock.
func (ss *smartserver) clone() smartserver {
	c := *ss
	c.active = maps.Clone(ss.active)
	c.released = maps.Clone(ss.released)
	c.transferring = slices.Clone(ss.transferring)
	c.devices = ss.devices.Clone()
	return c
}
