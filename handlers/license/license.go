// Package license holds the rules of a license in the license cloud: added
// to a customer's inventory, bound to exactly one SmartServer when one asks
// to activate it, released when the SmartServer transfers it back. Pure
// functions, see package handlers.
package license

import (
	"fmt"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers"
)

// State is what the cloud knows of one license.
type State struct {
	Exists   bool
	Customer string
	Kind     string
	Devices  int
	Expires  string
	// BoundTo is the SmartServer the license is active on, "" in the cloud.
	BoundTo string
	// BoundBy is the id of the request whose answer bound it, so the same
	// request handled again is recognised as answered.
	BoundBy string
}

// ID is the license an AddLicense command adds: its LicenseID, or one
// derived from the command's id.
func ID(commandID string, c *events.AddLicense) string {
	if c.LicenseID != "" {
		return c.LicenseID
	}
	return events.DeriveID(commandID, "license")
}

// Evolve folds one event of the license into s; causation is the id of the
// message that caused the event.
func Evolve(s State, d events.Data, causation string) State {
	switch e := d.(type) {
	case *events.LicenseAdded:
		return State{Exists: true, Customer: e.CustomerID, Kind: e.Kind, Devices: e.Devices, Expires: e.Expires, BoundTo: s.BoundTo, BoundBy: s.BoundBy}
	case *events.LicenseBound:
		s.BoundTo, s.BoundBy = e.InstallCode, causation
	case *events.LicenseReleased:
		s.BoundTo, s.BoundBy = "", ""
	}
	return s
}

// Add decides on AddLicense command commandID for the license in state s
// (the one ID names); customerExists says whether its customer does. An
// existing license is refused, saying how the terms differ if they do.
func Add(s State, commandID string, c *events.AddLicense, customerExists bool, now time.Time) handlers.Decision {
	id := ID(commandID, c)
	if !customerExists {
		return handlers.Refuse(events.ReasonUnknownCustomer, "no customer account %s", c.CustomerID)
	}
	if s.Exists {
		if diff := differs(s, c); diff != "" {
			return handlers.Refuse(events.ReasonAlreadyExists, "license %s exists already with other terms: %s", id, diff)
		}
		return handlers.Refuse(events.ReasonAlreadyExists, "license %s exists already, with these terms", id)
	}
	return handlers.Emit(events.LicenseAddedType, &events.LicenseAdded{
		LicenseID: id, CustomerID: c.CustomerID, Kind: c.Kind, Devices: c.Devices, Expires: c.Expires, AddedAt: now,
	}, events.DeriveID(commandID, "added"))
}

// differs says how c's terms differ from the license's, "" if they don't.
func differs(s State, c *events.AddLicense) string {
	var d []string
	if s.Customer != c.CustomerID {
		d = append(d, fmt.Sprintf("customer %s, not %s", s.Customer, c.CustomerID))
	}
	if s.Kind != c.Kind {
		d = append(d, fmt.Sprintf("kind %s, not %s", s.Kind, c.Kind))
	}
	if s.Devices != c.Devices {
		d = append(d, fmt.Sprintf("devices %d, not %d", s.Devices, c.Devices))
	}
	if s.Expires != c.Expires {
		d = append(d, fmt.Sprintf("expires %q, not %q", s.Expires, c.Expires))
	}
	return strings.Join(d, "; ")
}

// Bind answers a SmartServer's activation request (the event with id
// requestID): the license is bound to the SmartServer unless it is unknown,
// another customer's, or active already.
func Bind(s State, requestID string, r *events.ActivationRequested, now time.Time) handlers.Decision {
	switch {
	case !s.Exists:
		return handlers.Refuse(events.ReasonUnknownLicense, "no license %s in the cloud", r.LicenseID)
	case s.BoundBy == requestID:
		return handlers.Nothing() // this request was answered before
	case s.Customer != r.CustomerID:
		return handlers.Refuse(events.ReasonCustomerMismatch,
			"license %s belongs to another customer than %s, the Customer ID of SmartServer %s", r.LicenseID, r.CustomerID, r.InstallCode)
	case s.BoundTo == r.InstallCode:
		return handlers.Refuse(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", r.LicenseID, r.InstallCode)
	case s.BoundTo != "":
		return handlers.Refuse(events.ReasonAlreadyActive,
			"license %s is active on another SmartServer; transfer it to the cloud there first", r.LicenseID)
	}
	return handlers.Emit(events.LicenseBoundType, &events.LicenseBound{
		LicenseID: r.LicenseID, CustomerID: s.Customer, InstallCode: r.InstallCode,
		Kind: s.Kind, Devices: s.Devices, Expires: s.Expires, BoundAt: now,
	}, events.DeriveID(requestID, "bound"))
}

// Release answers a SmartServer's transfer request (the event with id
// requestID) for one of its licenses: the license goes back to the cloud.
// A license no longer bound to that SmartServer was released already.
func Release(s State, requestID, installCode, licenseID string, now time.Time) handlers.Decision {
	if !s.Exists || s.BoundTo != installCode {
		return handlers.Nothing()
	}
	return handlers.Emit(events.LicenseReleasedType, &events.LicenseReleased{
		LicenseID: licenseID, InstallCode: installCode, TransferredAt: now,
	}, events.DeriveID(requestID, "released/"+licenseID))
}

// Reasons are the refusals the license rules give.
func Reasons() []events.Reason {
	return []events.Reason{events.ReasonUnknownCustomer, events.ReasonAlreadyExists, events.ReasonUnknownLicense,
		events.ReasonCustomerMismatch, events.ReasonAlreadyActive}
}
