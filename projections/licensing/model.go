// Package licensing is the read model of the CMS Manage Licenses dialog:
// customer accounts, the Manage Customer Accounts view, the Download
// Licenses from Cloud view, the Manage Licenses view and the license
// inventory, all built from events only.
package licensing

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/small"
	"github.com/licensebus/licensebus/projections"
	"github.com/segmentio/encoding/json"
)

// License states in the inventory.
const (
	StateCloud        = "cloud"        // available to its customer
	StateActivating   = "activating"   // bound in the cloud, not yet active on the device
	StateActive       = "active"       // active on a SmartServer
	StateTransferring = "transferring" // being given back to the cloud
	// StateFulfilled: bound by the portal (fulfil) to a SmartServer that
	// has not imported its license file yet.
	StateFulfilled = "fulfilled"
	// StateRefused: the SmartServer refused its binding (a grant that does
	// not verify: forged, edited, under a revoked key).
	StateRefused = "refused"
)

// Customer is a customer/project account.
type Customer struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Seq        uint64 `json:"seq"`
}

// SmartServer is what the device side has said about one SmartServer.
type SmartServer struct {
	InstallCode   string `json:"install_code"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	CustomerID    string `json:"customer_id,omitempty"`
	DownloadedFor string `json:"downloaded_for,omitempty"`
	// Transferring lists the licenses of a transfer the SmartServer has
	// requested and not yet completed: the cloud may have released some
	// of them already, but until licenses_transferred the SmartServer
	// still holds them and refuses activations (transfer_in_progress).
	Transferring []string `json:"transferring,omitempty"`
	Seq          uint64   `json:"seq"`
}

// License is one license of the inventory. Seq is the stream sequence of
// the last event applied to it, which makes replays after a restart
// idempotent.
type License struct {
	LicenseID     string    `json:"license_id"`
	CustomerID    string    `json:"customer_id"`
	Kind          string    `json:"kind"`
	Devices       int       `json:"devices"`
	Expires       string    `json:"expires,omitempty"`
	State         string    `json:"state"`
	InstallCode   string    `json:"install_code,omitempty"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	TransferredAt time.Time `json:"transferred_at,omitzero"`
	Note          string    `json:"note,omitempty"` // why a binding was refused
	Seq           uint64    `json:"seq"`
}

// Model is the licensing read model. It is safe for concurrent readers.
type Model struct {
	mu         sync.RWMutex
	customers  map[string]*Customer
	servers    map[string]*SmartServer
	licenses   map[string]*License
	byServer   map[string]small.Map[struct{}] // a SmartServer has a license or two: no Go map each
	byCustomer map[string]map[string]struct{}
	// What changed since the last Changes, by entity: a pointer hashes in
	// a few ns where the entry's key ("license.<id>") had to be built and
	// hashed whole for every event.
	changedCustomers map[*Customer]struct{}
	changedServers   map[*SmartServer]struct{}
	changedLicenses  map[*License]struct{}
	buf              []byte // EachChange's encoding of one entry
	now              func() time.Time
}

var _ projections.Emitter = (*Model)(nil)
var _ projections.Model = (*Model)(nil)

// New returns an empty Model. now gives "today" for derived statuses; nil
// means time.Now.
func New(now func() time.Time) *Model {
	if now == nil {
		now = time.Now
	}
	m := &Model{now: now}
	m.Reset()
	return m
}

// Name implements projections.Model.
func (m *Model) Name() string { return "licensing" }

// Reset implements projections.Model.
func (m *Model) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.customers = make(map[string]*Customer)
	m.servers = make(map[string]*SmartServer)
	m.licenses = make(map[string]*License)
	m.byServer = make(map[string]small.Map[struct{}])
	m.byCustomer = make(map[string]map[string]struct{})
	m.changedCustomers = make(map[*Customer]struct{})
	m.changedServers = make(map[*SmartServer]struct{})
	m.changedLicenses = make(map[*License]struct{})
}

// Grow implements projections.Grower. The bucket's entries are mostly
// SmartServers and licenses in unknown shares: each map gets room for half
// of them, which costs a few MB at most where growing step by step cost a
// few per cent of a rebuild.
func (m *Model) Grow(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.servers = projections.Grown(m.servers, n/2)
	m.licenses = projections.Grown(m.licenses, n/2)
	m.byServer = projections.Grown(m.byServer, n/2)
}

// Apply implements projections.Model.
func (m *Model) Apply(seq uint64, msg *events.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch d := msg.Data.(type) {
	case *events.CustomerCreated:
		if c := m.customers[d.CustomerID]; c != nil && c.Seq >= seq {
			return
		}
		c := m.customers[d.CustomerID]
		if c == nil {
			c = &Customer{}
			m.customers[d.CustomerID] = c
		}
		*c = Customer{CustomerID: d.CustomerID, Name: d.Name, Seq: seq}
		m.changedCustomers[c] = struct{}{}
	case *events.Registered:
		s := m.server(d.InstallCode, seq, true)
		if s == nil {
			return
		}
		s.Name, s.Version = d.Name, d.Version
	case *events.VersionSet:
		if s := m.server(d.InstallCode, seq, false); s != nil {
			s.Version = d.Version
		}
	case *events.CustomerIDSet:
		if s := m.server(d.InstallCode, seq, false); s != nil {
			if s.CustomerID != d.CustomerID {
				s.DownloadedFor = ""
			}
			s.CustomerID = d.CustomerID
		}
	case *events.LicensesDownloaded:
		if s := m.server(d.InstallCode, seq, false); s != nil {
			s.DownloadedFor = d.CustomerID
		}
	case *events.LicenseAdded:
		if l := m.licenses[d.LicenseID]; l != nil && l.Seq >= seq {
			return
		}
		l := m.licenses[d.LicenseID]
		if l == nil {
			l = &License{}
			m.licenses[d.LicenseID] = l
		}
		// Replaced in place: one entity per id, so the changed set stays
		// as small as the model.
		*l = License{LicenseID: d.LicenseID, CustomerID: d.CustomerID, Kind: d.Kind, Devices: d.Devices,
			Expires: d.Expires, State: StateCloud, TransferredAt: d.AddedAt, Seq: seq}
		m.index(m.byCustomer, d.CustomerID, d.LicenseID)
		m.changedLicenses[l] = struct{}{}
	case *events.LicenseBound:
		if l := m.license(d.LicenseID, seq); l != nil {
			m.moveServer(l, d.InstallCode)
			l.State, l.Note = StateActivating, ""
			if d.Offline {
				l.State = StateFulfilled
			}
		}
	case *events.Rejected:
		// A binding the SmartServer refused is not on it: it leaves the
		// dialog, and the inventory says why.
		if d.CommandType != string(events.LicenseBoundType) || d.LicenseID == "" {
			return
		}
		if l := m.licenses[d.LicenseID]; l != nil && l.State == StateActivating && l.InstallCode == d.InstallCode {
			if l = m.license(d.LicenseID, seq); l != nil {
				m.moveServer(l, "")
				l.State, l.Note = StateRefused, fmt.Sprintf("SmartServer %s refused its binding: %s", d.InstallCode, d.Reason)
			}
		}
	case *events.LicensesImported:
		for _, im := range d.Licenses {
			if l := m.license(im.LicenseID, seq); l != nil {
				m.moveServer(l, d.InstallCode)
				l.State, l.ActivatedAt = StateActive, im.ActivatedAt
			}
		}
	case *events.LicenseActivated:
		if l := m.license(d.LicenseID, seq); l != nil {
			m.moveServer(l, d.InstallCode)
			l.State, l.ActivatedAt = StateActive, d.ActivatedAt
		}
	case *events.TransferRequested:
		if s := m.server(d.InstallCode, seq, false); s != nil {
			s.Transferring = d.LicenseIDs
		}
		for _, lid := range d.LicenseIDs {
			if l := m.license(lid, seq); l != nil {
				l.State = StateTransferring
			}
		}
	case *events.LicenseReleased:
		if l := m.license(d.LicenseID, seq); l != nil {
			m.moveServer(l, "")
			l.State, l.ActivatedAt, l.TransferredAt, l.Note = StateCloud, time.Time{}, d.TransferredAt, ""
		}
	case *events.LicensesTransferred:
		if s := m.server(d.InstallCode, seq, false); s != nil {
			s.Transferring = nil
		}
	}
}

// server returns the SmartServer to change at seq, or nil if seq was
// applied already (or the SmartServer is unknown and create is false).
func (m *Model) server(ic string, seq uint64, create bool) *SmartServer {
	s := m.servers[ic]
	if s == nil {
		if !create {
			return nil
		}
		s = &SmartServer{InstallCode: ic}
		m.servers[ic] = s
	} else if s.Seq >= seq {
		return nil
	}
	s.Seq = seq
	m.changedServers[s] = struct{}{}
	return s
}

func (m *Model) license(lid string, seq uint64) *License {
	l := m.licenses[lid]
	if l == nil || l.Seq >= seq {
		return nil
	}
	l.Seq = seq
	m.changedLicenses[l] = struct{}{}
	return l
}

func (m *Model) moveServer(l *License, ic string) {
	if l.InstallCode != "" {
		m.unindexServer(l.InstallCode, l.LicenseID)
	}
	l.InstallCode = ic
	if ic != "" {
		m.indexServer(ic, l.LicenseID)
	}
}

func (m *Model) index(idx map[string]map[string]struct{}, k, lid string) {
	set := idx[k]
	if set == nil {
		set = make(map[string]struct{})
		idx[k] = set
	}
	set[lid] = struct{}{}
}

func (m *Model) indexServer(ic, lid string) {
	set := m.byServer[ic]
	set.Set(lid, struct{}{})
	m.byServer[ic] = set
}

func (m *Model) unindexServer(ic, lid string) {
	set, ok := m.byServer[ic]
	if !ok {
		return
	}
	if set.Delete(lid); len(set) == 0 {
		delete(m.byServer, ic)
		return
	}
	m.byServer[ic] = set
}

// Changes implements projections.Model.
func (m *Model) Changes() map[string][]byte { return projections.Collect(m) }

// EachChange implements projections.Emitter.
func (m *Model) EachChange(emit func(key string, value []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.changedCustomers {
		m.buf = projections.AppendEntry(m.buf[:0], c)
		emit("customer."+c.CustomerID, m.buf)
	}
	for s := range m.changedServers {
		m.buf = projections.AppendEntry(m.buf[:0], s)
		emit("smartserver."+s.InstallCode, m.buf)
	}
	for l := range m.changedLicenses {
		m.buf = projections.AppendEntry(m.buf[:0], l)
		emit("license."+l.LicenseID, m.buf)
	}
	clear(m.changedCustomers)
	clear(m.changedServers)
	clear(m.changedLicenses)
}

// Restore implements projections.Model.
func (m *Model) Restore(key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kind, id, _ := strings.Cut(key, ".")
	switch kind {
	case "customer":
		var c Customer
		if err := json.Unmarshal(value, &c); err != nil {
			return err
		}
		m.customers[id] = &c
	case "smartserver":
		var s SmartServer
		if err := json.Unmarshal(value, &s); err != nil {
			return err
		}
		m.servers[id] = &s
	case "license":
		var l License
		if err := json.Unmarshal(value, &l); err != nil {
			return err
		}
		m.licenses[id] = &l
		m.index(m.byCustomer, l.CustomerID, id)
		if l.InstallCode != "" {
			m.indexServer(l.InstallCode, id)
		}
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}
