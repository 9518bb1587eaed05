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
	"github.com/licensebus/licensebus/events/grant"
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
	// BoundBy is the id of the request (or fulfil) whose answer bound it,
	// so the same request handled again is recognised as answered.
	BoundBy string
	// Grant is the signed grant of a binding made by a fulfil, which its
	// outcome hands out as a license file; nil otherwise.
	Grant *grant.Grant
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
		return State{Exists: true, Customer: e.CustomerID, Kind: e.Kind, Devices: e.Devices, Expires: e.Expires, BoundTo: s.BoundTo, BoundBy: s.BoundBy, Grant: s.Grant}
	case *events.LicenseBound:
		s.BoundTo, s.BoundBy, s.Grant = e.InstallCode, causation, nil
		if e.Offline {
			s.Grant = e.Grant
		}
	case *events.LicenseReleased:
		s.BoundTo, s.BoundBy, s.Grant = "", "", nil
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
// another customer's, or active already. The binding carries its grant,
// signed with key.
func Bind(s State, requestID string, r *events.ActivationRequested, now time.Time, key grant.Key) handlers.Decision {
	switch {
	case !s.Exists:
		return handlers.Refuse(events.ReasonUnknownLicense, "no license %s in the cloud", r.LicenseID)
	case s.BoundBy == requestID:
		return handlers.Nothing() // this request was answered before
	case s.Customer != r.CustomerID:
		return handlers.Refuse(events.ReasonCustomerMismatch,
			"license %s belongs to another customer than %s, the Customer ID of SmartServer %s", r.LicenseID, r.CustomerID, r.InstallCode)
	case s.BoundTo == r.InstallCode && s.Grant != nil:
		return handlers.Refuse(events.ReasonAlreadyActive,
			"license %s is bound to SmartServer %s by the portal: import its license file there (licensebus license grant writes it again)", r.LicenseID, r.InstallCode)
	case s.BoundTo == r.InstallCode:
		return handlers.Refuse(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", r.LicenseID, r.InstallCode)
	case s.BoundTo != "":
		return handlers.Refuse(events.ReasonAlreadyActive,
			"license %s is active on another SmartServer; transfer it to the cloud there first", r.LicenseID)
	}
	return bind(s, r.LicenseID, r.InstallCode, false, events.DeriveID(requestID, "bound"), now, key)
}

// bind emits the binding of license lid (in state s) to SmartServer ic
// with the event id id, and its grant signed with key.
func bind(s State, lid, ic string, offline bool, id string, now time.Time, key grant.Key) handlers.Decision {
	g := &grant.Grant{GrantID: id, LicenseID: lid, CustomerID: s.Customer, InstallCode: ic,
		Kind: s.Kind, Devices: s.Devices, Expires: s.Expires, BoundAt: grant.Time(now)}
	if err := key.Sign(g); err != nil {
		return handlers.Refuse(events.ReasonInternal, "cannot sign the grant of license %s: %v", lid, err)
	}
	return handlers.Emit(events.LicenseBoundType, &events.LicenseBound{
		LicenseID: lid, CustomerID: s.Customer, InstallCode: ic,
		Kind: s.Kind, Devices: s.Devices, Expires: s.Expires, BoundAt: now, Offline: offline, Grant: g,
	}, id)
}

// FulfilCustomer is the customer every license of fulfil c must be of: the
// one it names, else the one of its first license (first, the state of
// that license).
func FulfilCustomer(c *events.Fulfil, first State) string {
	if c.CustomerID != "" {
		return c.CustomerID
	}
	return first.Customer
}

// CanFulfil says why license lid (in state s) cannot be bound to c's
// SmartServer by fulfil commandID for customer, nil if it can (or did
// already).
func CanFulfil(s State, commandID string, c *events.Fulfil, lid, customer string) *events.Rejection {
	switch {
	case !s.Exists:
		return events.Reject(events.ReasonUnknownLicense, "no license %s in the cloud", lid)
	case s.BoundBy == commandID:
		return nil
	case s.Customer != customer:
		return events.Reject(events.ReasonCustomerMismatch, "license %s belongs to another customer than %s", lid, customer)
	case s.BoundTo == c.InstallCode:
		return events.Reject(events.ReasonAlreadyActive,
			"license %s is already bound to SmartServer %s (licensebus license grant writes its license file)", lid, c.InstallCode)
	case s.BoundTo != "":
		return events.Reject(events.ReasonAlreadyActive,
			"license %s is active on another SmartServer; transfer it to the cloud there first", lid)
	}
	return nil
}

// Fulfil decides the binding of license lid, one of fulfil c (command
// commandID), for the License Customer Portal: as Bind, for a SmartServer
// that is not online, so the binding is marked offline and the SmartServer
// activates it when it imports the grant. Licenses must all be of customer
// (FulfilCustomer).
func Fulfil(s State, commandID string, c *events.Fulfil, lid, customer string, now time.Time, key grant.Key) handlers.Decision {
	if rej := CanFulfil(s, commandID, c, lid, customer); rej != nil {
		return handlers.Decision{Refuse: rej}
	}
	if s.BoundBy == commandID {
		return handlers.Nothing() // bound by this fulfil before
	}
	return bind(s, lid, c.InstallCode, true, events.DeriveID(commandID, "bound/"+lid), now, key)
}

// Unbind takes back a binding fulfil commandID made, when another license
// of the fulfil was refused: a fulfil binds all its licenses or none.
func Unbind(s State, commandID, lid string, now time.Time) handlers.Decision {
	if !s.Exists || s.BoundBy != commandID {
		return handlers.Nothing()
	}
	return handlers.Emit(events.LicenseReleasedType, &events.LicenseReleased{LicenseID: lid, InstallCode: s.BoundTo, TransferredAt: now},
		events.DeriveID(commandID, "unbound/"+lid))
}

// Fulfilled completes fulfil c (command commandID) once all its licenses
// are bound by it (states, in the order c names them): the outcome, with
// their grants.
func Fulfilled(commandID string, c *events.Fulfil, states []State, now time.Time) handlers.Decision {
	d := &events.Fulfilled{InstallCode: c.InstallCode, LicenseIDs: c.LicenseIDs, FulfilledAt: now}
	for i, s := range states {
		if s.BoundBy != commandID || s.Grant == nil {
			return handlers.Refuse(events.ReasonAlreadyActive, "license %s changed while it was being fulfilled", c.LicenseIDs[i])
		}
		d.CustomerID = s.Customer
		d.Grants = append(d.Grants, *s.Grant)
	}
	return handlers.Emit(events.FulfilledType, d, events.DeriveID(commandID, "fulfilled"))
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
