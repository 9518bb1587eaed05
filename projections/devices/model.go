// Package devices is the read model of the DMM Devices widget: every device
// with its state and colour, and fleet counters per SmartServer and in
// total, derived from events only with smartserver.Devices's colour rule.
package devices

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/smartserver"
	"github.com/licensebus/licensebus/internal/small"
	"github.com/licensebus/licensebus/projections"
	"github.com/segmentio/encoding/json"
)

// Row is one device as the widget shows it. The rows of one SmartServer are
// stored together, in order of addition, under the KV key
// "devices.<install-code>": one entry per SmartServer rather than per
// device keeps a 500,000-device fleet at 10,000 keys, and a watcher of
// "devices.<install-code>" sees each change of that SmartServer.
type Row struct {
	DeviceID    string             `json:"device_id"`
	InstallCode string             `json:"install_code"`
	Name        string             `json:"name"`
	Protocol    string             `json:"protocol"`
	State       events.DeviceState `json:"state"`
	Colour      string             `json:"colour"`
	Provisioned bool               `json:"provisioned"`
	// Order is the order of addition, which capacity covers devices in:
	// the stream sequence of the event that added it × 1024 + its
	// position in that event.
	Order uint64 `json:"order"`
}

// Counts are devices per colour.
type Counts struct {
	Purple int `json:"purple"`
	Blue   int `json:"blue"`
	Green  int `json:"green"`
	Total  int `json:"total"`
}

// Server is one SmartServer's device summary; its KV key is
// "server.<install-code>".
type Server struct {
	InstallCode   string         `json:"install_code"`
	Version       string         `json:"version"`
	Capacity      int            `json:"capacity"`
	Licensed      int            `json:"licensed"`
	AutoProvision bool           `json:"auto_provision"`
	Counts        Counts         `json:"counts"`
	Licenses      small.Map[int] `json:"capacity_licenses,omitempty"` // active capacity license → devices
	Seq           uint64         `json:"seq"`
}

// orderSpan leaves room for the positions of one batch in Row.Order.
const orderSpan = 1024

type server struct {
	Server
	table smartserver.Devices
	// orders are the devices' Row.Order, in step with table.Devices: a
	// slice beside the table, where a map by device id took three times
	// the memory at fleet scale.
	orders []uint64
	ic     string // the key of its entries (Server.InstallCode comes from the entry)
	// changed since the last Changes: the server entry, and its devices.
	changed, devicesChanged bool
}

// Model is the devices read model. It is safe for concurrent readers.
type Model struct {
	mu      sync.RWMutex
	servers map[string]*server
	// changed lists the servers with changed set: a flag and an append
	// where a set of keys built per event ("server.<ic>") cost a string
	// and its hashing for every event.
	changed []*server
	total   Counts // kept up to date, so fleet totals cost nothing to read
	// EachChange's encoding of one entry, and the rows it encodes.
	buf  []byte
	rows []Row
}

var (
	_ projections.Model   = (*Model)(nil)
	_ projections.Emitter = (*Model)(nil)
)

// New returns an empty Model.
func New() *Model {
	m := &Model{}
	m.Reset()
	return m
}

// Name implements projections.Model.
func (m *Model) Name() string { return "devices" }

// Reset implements projections.Model.
func (m *Model) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.servers, m.changed = make(map[string]*server), nil
	m.total = Counts{}
}

// Grow implements projections.Grower. Each SmartServer has two entries,
// its server and its devices.
func (m *Model) Grow(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.servers = projections.Grown(m.servers, n/2)
}

// change marks s changed, and its devices too if devices.
func (m *Model) change(s *server, devices bool) {
	if !s.changed {
		s.changed = true
		m.changed = append(m.changed, s)
	}
	s.devicesChanged = s.devicesChanged || devices
}

// Apply implements projections.Model.
func (m *Model) Apply(seq uint64, msg *events.Message) {
	if msg.Info.Aggregate != "smartserver" || msg.Data == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ic := msg.Data.Key()
	s := m.servers[ic]
	if s != nil && s.Seq >= seq {
		return // applied before a restart
	}
	if s == nil {
		if _, ok := msg.Data.(*events.Registered); !ok {
			return
		}
		s = &server{Server: Server{InstallCode: ic}, ic: ic}
		m.servers[ic] = s
	}
	s.Seq = seq
	removed := -1
	switch d := msg.Data.(type) {
	case *events.Registered:
		s.Version = d.Version
	case *events.VersionSet:
		s.Version = d.Version
	case *events.DeviceRemoved:
		removed = s.table.Index(d.DeviceID)
	case *events.AutoProvisionSet:
		s.AutoProvision = d.Enabled
	}
	before := len(s.table.Devices)
	changed := s.table.Fold(msg.Data, false)
	s.followOrders(seq, msg.Data, before, removed)
	s.Licenses = s.table.Licenses
	s.Capacity, s.Licensed = s.table.Capacity, s.table.Licensed()
	m.total.add(s.Counts, -1)
	s.Counts = count(s.table.Devices)
	m.total.add(s.Counts, 1)
	m.change(s, len(changed) > 0)
}

// followOrders keeps orders in step with the table after an event that
// added devices at the end (the table had before of them) or removed the
// one at removed.
func (s *server) followOrders(seq uint64, d events.Data, before, removed int) {
	switch d := d.(type) {
	case *events.DeviceAdded:
		if len(s.table.Devices) > before {
			s.orders = append(s.orders, seq*orderSpan)
		}
	case *events.DevicesAdded:
		// The table appends those of the event it did not have, in the
		// event's order.
		added := s.table.Devices[before:]
		for i, nd := range d.Devices {
			if len(added) > 0 && added[0].ID == nd.DeviceID {
				s.orders = append(s.orders, seq*orderSpan+uint64(i))
				added = added[1:]
			}
		}
	case *events.DeviceRemoved:
		if removed >= 0 && removed < len(s.orders) {
			s.orders = slices.Delete(s.orders, removed, removed+1)
		}
	}
}

func (c *Counts) add(d Counts, sign int) {
	c.Purple += sign * d.Purple
	c.Blue += sign * d.Blue
	c.Green += sign * d.Green
	c.Total += sign * d.Total
}

func count(ds []events.Device) Counts {
	var c Counts
	for _, d := range ds {
		switch d.State {
		case events.Unlicensed:
			c.Purple++
		case events.Unprovisioned:
			c.Blue++
		case events.Provisioned:
			c.Green++
		}
	}
	c.Total = len(ds)
	return c
}

// row is the row of the table's device i.
func (s *server) row(i int) Row {
	d := &s.table.Devices[i]
	var order uint64
	if i < len(s.orders) {
		order = s.orders[i]
	}
	return Row{DeviceID: d.ID, InstallCode: s.InstallCode, Name: d.Name, Protocol: d.Protocol, State: d.State,
		Colour: d.State.Colour(), Provisioned: d.Provisioned, Order: order}
}

// Restored implements projections.Restorer: a SmartServer's counts are
// derived from its devices, whose entry a crash in the middle of a flush
// may have stored without the server's (or the other way round).
func (m *Model) Restored() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total = Counts{}
	for _, s := range m.servers {
		if c := count(s.table.Devices); c != s.Counts {
			s.Counts = c
			m.change(s, false)
		}
		m.total.add(s.Counts, 1)
	}
}

// Changes implements projections.Model.
func (m *Model) Changes() map[string][]byte { return projections.Collect(m) }

// EachChange implements projections.Emitter.
func (m *Model) EachChange(emit func(key string, value []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.changed {
		m.buf = projections.AppendEntry(m.buf[:0], &s.Server)
		emit("server."+s.ic, m.buf)
		if s.devicesChanged {
			rows := m.rows[:0]
			if rows == nil {
				rows = []Row{} // "[]" for no devices, not "null"
			}
			for i := range s.table.Devices {
				rows = append(rows, s.row(i))
			}
			m.buf = projections.AppendEntry(m.buf[:0], rows)
			emit("devices."+s.ic, m.buf)
			clear(rows) // drop the strings before reusing the array
			m.rows = rows[:0]
		}
		s.changed, s.devicesChanged = false, false
	}
	clear(m.changed) // drop the pointers before reusing the array
	m.changed = m.changed[:0]
}

// Restore implements projections.Model. Devices are put back in the order
// they were added, so the colour rule derives the same states.
func (m *Model) Restore(key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case "server":
		var srv Server
		if err := json.Unmarshal(value, &srv); err != nil {
			return err
		}
		s := m.get(rest)
		devs := s.table.Devices
		m.total.add(s.Counts, -1)
		m.total.add(srv.Counts, 1)
		s.Server = srv
		s.table = smartserver.Devices{Devices: devs, Version: srv.Version, Capacity: srv.Capacity, Licenses: srv.Licenses}
	case "devices":
		var rows []Row
		if err := json.Unmarshal(value, &rows); err != nil {
			return err
		}
		s := m.get(rest)
		slices.SortStableFunc(rows, func(a, b Row) int { return cmp.Compare(a.Order, b.Order) })
		s.table.Devices, s.orders = s.table.Devices[:0], s.orders[:0]
		for _, r := range rows {
			s.orders = append(s.orders, r.Order)
			s.table.Devices = append(s.table.Devices, events.Device{ID: r.DeviceID, Name: r.Name, Protocol: r.Protocol, Provisioned: r.Provisioned, State: r.State})
		}
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

func (m *Model) get(ic string) *server {
	s := m.servers[ic]
	if s == nil {
		s = &server{Server: Server{InstallCode: ic}, ic: ic}
		m.servers[ic] = s
	}
	return s
}
