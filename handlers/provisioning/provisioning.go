// Package provisioning holds the rules of reactive DMM provisioning — the
// manual's "now provision the blue devices", automated for SmartServers
// whose policy is on: a process manager that, given a SmartServer's state
// and an event, decides which devices to provision. Pure functions, see
// package handlers.
package provisioning

import (
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/smartserver"
)

// Triggers are the events that can make devices blue, or turn the policy on.
func Triggers() []events.Type {
	return []events.Type{events.LicenseActivatedType, events.LicensesImportedType, events.DeviceAddedType, events.DeviceRemovedType,
		events.RegisteredType, events.DevicesAddedType, events.AutoProvisionSetType, events.VersionSetType}
}

// State is what reactive provisioning knows of one SmartServer: its state
// (the shared fold) and, for each blue device, the event that made it
// blue, so that each trigger provisions what it made eligible and nothing
// twice.
type State struct {
	Server smartserver.State
	// EligibleBy maps each blue device to the id of the event that made
	// it blue; Sent marks devices with a command on its way.
	EligibleBy map[string]string
	Sent       map[string]bool
}

// Evolve folds one event of the SmartServer into s.
func Evolve(s *State, m *events.Message) {
	for _, d := range smartserver.Evolve(&s.Server, m) {
		delete(s.Sent, d.ID)
		if d.State == events.Unprovisioned {
			if s.EligibleBy == nil {
				s.EligibleBy = map[string]string{}
			}
			s.EligibleBy[d.ID] = m.ID()
		} else {
			delete(s.EligibleBy, d.ID)
		}
	}
	// Maps keep their size once grown: drop them when no device is blue,
	// as on most SmartServers of a provisioned fleet.
	if len(s.EligibleBy) == 0 {
		s.EligibleBy = nil
	}
	if len(s.Sent) == 0 {
		s.Sent = nil
	}
}

// Provision decides which devices trigger m (folded into s already) makes
// reactive provisioning send: with the policy on, the blue devices it made
// blue — every blue device when it turned the policy on — that have no
// command on its way.
func Provision(s *State, m *events.Message) []string {
	if !s.Server.Auto {
		return nil
	}
	_, policy := m.Data.(*events.AutoProvisionSet)
	var ids []string
	for i := range s.Server.Devices.Len() {
		if d := s.Server.Devices.At(i); d.State == events.Unprovisioned && !s.Sent[d.ID] && (policy || s.EligibleBy[d.ID] == m.ID()) {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

// Batch is how many of the queued devices (their causes, in order) go in
// the next command: consecutive devices of one cause, at most max.
func Batch(causes []string, max int) int {
	n := 1
	for n < len(causes) && n < max && causes[n] == causes[0] {
		n++
	}
	return n
}

// CommandID is the id of the command that provisions devices for cause: a
// batch sent again after a restart is recognised as a repeat, a batch of
// other devices never is.
func CommandID(cause string, devices []string) string {
	return events.DeriveID(cause, "provision/"+strings.Join(devices, ","))
}

// MarkSent records that devices have a command on its way: a later trigger
// does not send them again until their colour changes.
func (s *State) MarkSent(ids []string) {
	if s.Sent == nil {
		s.Sent = map[string]bool{}
	}
	for _, id := range ids {
		s.Sent[id] = true
	}
}
