// Package smartserver holds the rules of a SmartServer: what a technician
// does in the CMS Manage Licenses dialog (Customer ID, download, activate,
// transfer to cloud) and in the DMM Devices widget (add, provision,
// remove), and how the SmartServer records the cloud's answers. Pure
// functions, see package handlers.
//
// State and Evolve are the one fold of a SmartServer: the device side
// decides on it, the provisioner reacts on it, and the devices view folds
// its device table with the same Devices rule.
package smartserver

import (
	"slices"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/small"
)

// Active is a license active on a SmartServer.
type Active struct {
	Kind    string
	Devices int
	Expires string
	// By is the id of the cloud's bound event that activated it — the id
	// of its grant — so the same answer handled again is recognised.
	By string
	// BoundAt is when the cloud bound it (its grant's bound_at).
	BoundAt time.Time
}

// Transfer is a transfer to the cloud in flight.
type Transfer struct {
	// Licenses are the licenses given back; Released marks those the
	// cloud took back already.
	Licenses []string
	Released small.Map[bool]
	// By is the id of the transfer request, the cause the completion
	// derives its id from.
	By string
}

// State is what a SmartServer knows of itself.
type State struct {
	Registered bool
	Name       string
	Version    string
	Customer   string
	// DownloadedFor is the customer whose licenses were last downloaded;
	// a new Customer ID clears it.
	DownloadedFor string
	Active        small.Map[Active]
	Transfer      Transfer
	// Devices is the DMM device table (ids only); Auto the reactive
	// provisioning policy.
	Devices Devices
	Auto    bool
	// Spent is, per license the SmartServer gave back to the cloud, when
	// the binding it gave back was made: a grant bound then or before is
	// used up (a license file is not imported again after a transfer),
	// while a later binding is new. One entry per license, not per grant:
	// a license activated and transferred back every day keeps one.
	Spent small.Map[time.Time]
}

// Of returns the SmartServer an event concerns, "" for none: its own
// events, and the cloud's answers to it (bound, released).
func Of(m *events.Message) string {
	switch e := m.Data.(type) {
	case *events.LicenseBound:
		return e.InstallCode
	case *events.LicenseReleased:
		return e.InstallCode
	case nil:
		return ""
	}
	if m.Info.Aggregate != "smartserver" {
		return ""
	}
	return m.Data.Key()
}

// Evolve folds one event that concerns the SmartServer (Of) into s, and
// returns the devices whose colour changed. An event before the
// SmartServer is registered changes nothing.
func Evolve(s *State, m *events.Message) []events.Device {
	switch d := m.Data.(type) {
	case *events.Registered:
		s.Registered, s.Name, s.Version = true, d.Name, d.Version
	case *events.LicenseReleased:
		// The cloud's answer to a transfer: it completes once every
		// license of the transfer is back.
		if slices.Contains(s.Transfer.Licenses, d.LicenseID) {
			s.Transfer.Released.Set(d.LicenseID, true)
		}
		return nil
	case *events.LicenseBound:
		return nil // recorded by the license_activated it leads to
	}
	if !s.Registered {
		return nil
	}
	switch d := m.Data.(type) {
	case *events.VersionSet:
		s.Version = d.Version
	case *events.CustomerIDSet:
		if s.Customer != d.CustomerID {
			s.DownloadedFor = ""
		}
		s.Customer = d.CustomerID
	case *events.LicensesDownloaded:
		s.DownloadedFor = d.CustomerID
	case *events.LicenseActivated:
		s.Active.Set(d.LicenseID, Active{Kind: d.Kind, Devices: d.Devices, Expires: d.Expires, By: m.CausationID(), BoundAt: d.ActivatedAt})
	case *events.LicensesImported:
		for _, l := range d.Licenses {
			s.Active.Set(l.LicenseID, Active{Kind: l.Kind, Devices: l.Devices, Expires: l.Expires, By: l.GrantID, BoundAt: l.ActivatedAt})
		}
	case *events.TransferRequested:
		s.Transfer = Transfer{Licenses: d.LicenseIDs, By: m.ID()}
	case *events.LicensesTransferred:
		for _, lid := range d.LicenseIDs {
			if a, ok := s.Active.Get(lid); ok && a.By != "" {
				if spent, ok := s.Spent.Get(lid); !ok || a.BoundAt.After(spent) {
					s.Spent.Set(lid, a.BoundAt)
				}
			}
			s.Active.Delete(lid)
		}
		s.Transfer = Transfer{}
	case *events.AutoProvisionSet:
		s.Auto = d.Enabled
	}
	return s.Devices.Fold(m.Data, true)
}

// Clone returns a copy of s that shares nothing with it.
func (s *State) Clone() State {
	c := *s
	c.Active = s.Active.Clone()
	c.Transfer.Licenses = slices.Clone(s.Transfer.Licenses)
	c.Transfer.Released = s.Transfer.Released.Clone()
	c.Devices = s.Devices.Clone()
	c.Spent = s.Spent.Clone()
	return c
}

// UsedUp says whether the grant of license lid bound at boundAt was given
// back to the cloud by this SmartServer (it or a later binding).
func (s *State) UsedUp(lid string, boundAt time.Time) bool {
	spent, ok := s.Spent.Get(lid)
	return ok && !boundAt.After(spent)
}
