package license_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers/license"
	"github.com/licensebus/licensebus/handlers/spec"
)

const (
	cid   = "2133c667-af41-4518-94df-a2bb3b775330"
	other = "9f0a4c3e-0d5b-4b8e-9a41-7c2f3e5d6a10"
	lid   = "c0ffee00-1111-4222-8333-444455556666"
)

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// key is the cloud's signing key in the tables.
var key = grant.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))

// boundTo is the binding the rules emit: the terms, and the grant signed
// with key for the event id id.
func boundTo(ic, id string, offline bool) *events.LicenseBound {
	g := &grant.Grant{GrantID: id, LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: grant.Time(now)}
	if err := key.Sign(g); err != nil {
		panic(err)
	}
	return &events.LicenseBound{LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: now, Offline: offline, Grant: g}
}

// fulfilled is a binding by fulfil fulfil-1, with its grant.
func fulfilled(ic string) given {
	return given{boundTo(ic, events.DeriveID("fulfil-1", "bound/"+lid), true), "fulfil-1"}
}

// given is an event of the license and the id of what caused it.
type given struct {
	data  events.Data
	cause string
}

func added() given {
	return given{&events.LicenseAdded{LicenseID: lid, CustomerID: cid, Kind: events.Capacity, Devices: 200}, "cmd-0"}
}
func bound(ic, request string) given {
	return given{&events.LicenseBound{LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200}, request}
}
func released(ic string) given {
	return given{&events.LicenseReleased{LicenseID: lid, InstallCode: ic}, "transfer-1"}
}

func state(gs []given) license.State {
	var s license.State
	for _, g := range gs {
		s = license.Evolve(s, g.data, g.cause)
	}
	return s
}

// The rules of a license in the cloud, as given/when/then: added to a
// customer's inventory, bound to one SmartServer at a time, released.
func TestSpec(t *testing.T) {
	add := &events.AddLicense{LicenseID: lid, CustomerID: cid, Kind: events.Capacity, Devices: 200}
	request := func(ic, customer string) *events.ActivationRequested {
		return &events.ActivationRequested{InstallCode: ic, LicenseID: lid, CustomerID: customer}
	}
	tests := []struct {
		name string
		// given are the license's events; customer whether its customer
		// has an account.
		given    []given
		customer bool
		// when is one of: a command to add the license, an activation
		// request (request-1), or a transfer request from transferFrom.
		add          *events.AddLicense
		request      *events.ActivationRequested
		transferFrom string
		// fulfil binds lid for fulfil-1, for customer (cid if empty);
		// unbind takes fulfil-1's binding back; complete is fulfil-1's
		// outcome.
		fulfil           *events.Fulfil
		fulfilFor        string
		unbind, complete bool
		then             spec.Then
	}{
		{name: "a purchased license is added to its customer's inventory", customer: true, add: add,
			then: spec.Then{Type: events.LicenseAddedType, Data: &events.LicenseAdded{LicenseID: lid, CustomerID: cid, Kind: events.Capacity, Devices: 200, AddedAt: now}}},
		{name: "a license of an unknown customer is refused", customer: false, add: add,
			then: spec.Then{Reason: events.ReasonUnknownCustomer}},
		{name: "an existing license is not added again", given: []given{added()}, customer: true, add: add,
			then: spec.Then{Reason: events.ReasonAlreadyExists}},
		{name: "adding it again with other terms is refused", given: []given{added()}, customer: true,
			add:  &events.AddLicense{LicenseID: lid, CustomerID: cid, Kind: events.Capacity, Devices: 1000},
			then: spec.Then{Reason: events.ReasonAlreadyExists}},

		{name: "activation binds a license in the cloud to the SmartServer, with its signed grant", given: []given{added()}, request: request("IC-1", cid),
			then: spec.Then{Type: events.LicenseBoundType, Data: boundTo("IC-1", events.DeriveID("request-1", "bound"), false)}},
		{name: "an unknown license is refused", request: request("IC-1", cid), then: spec.Then{Reason: events.ReasonUnknownLicense}},
		{name: "another customer's license is refused", given: []given{added()}, request: request("IC-1", other),
			then: spec.Then{Reason: events.ReasonCustomerMismatch}},
		{name: "a license active on another SmartServer is refused", given: []given{added(), bound("IC-2", "request-0")}, request: request("IC-1", cid),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "a license active on this SmartServer is refused", given: []given{added(), bound("IC-1", "request-0")}, request: request("IC-1", cid),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "the same request answered again decides nothing", given: []given{added(), bound("IC-1", "request-1")}, request: request("IC-1", cid)},
		{name: "a released license can be bound again, elsewhere", given: []given{added(), bound("IC-2", "request-0"), released("IC-2")}, request: request("IC-1", cid),
			then: spec.Then{Type: events.LicenseBoundType, Data: boundTo("IC-1", events.DeriveID("request-1", "bound"), false)}},
		{name: "a license fulfilled offline is not activated online elsewhere", given: []given{added(), fulfilled("IC-2")}, request: request("IC-1", cid),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "a license fulfilled for this SmartServer is imported, not activated online", given: []given{added(), fulfilled("IC-1")}, request: request("IC-1", cid),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},

		// The License Customer Portal: offline activation.
		{name: "fulfil binds a license in the cloud offline, with its signed grant", given: []given{added()}, fulfil: fulfilOf("IC-1"),
			then: spec.Then{Type: events.LicenseBoundType, Data: boundTo("IC-1", events.DeriveID("fulfil-1", "bound/"+lid), true)}},
		{name: "fulfil of an unknown license is refused", fulfil: fulfilOf("IC-1"), then: spec.Then{Reason: events.ReasonUnknownLicense}},
		{name: "fulfil of another customer's license is refused", given: []given{added()}, fulfil: fulfilOf("IC-1"), fulfilFor: other,
			then: spec.Then{Reason: events.ReasonCustomerMismatch}},
		{name: "fulfil of a license active on another SmartServer is refused", given: []given{added(), bound("IC-2", "request-0")}, fulfil: fulfilOf("IC-1"),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "fulfil of a license bound to this SmartServer is refused", given: []given{added(), bound("IC-1", "request-0")}, fulfil: fulfilOf("IC-1"),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "the same fulfil handled again binds nothing more", given: []given{added(), fulfilled("IC-1")}, fulfil: fulfilOf("IC-1"), then: spec.Then{}},
		{name: "a fulfil whose other license was refused takes its binding back", given: []given{added(), fulfilled("IC-1")}, unbind: true,
			then: spec.Then{Type: events.LicenseReleasedType, Data: &events.LicenseReleased{LicenseID: lid, InstallCode: "IC-1", TransferredAt: now}}},
		{name: "a binding of another fulfil is not taken back", given: []given{added(), bound("IC-1", "request-0")}, unbind: true},
		{name: "a fulfil completes with the grants of its licenses", given: []given{added(), fulfilled("IC-1")}, complete: true,
			then: spec.Then{Type: events.FulfilledType, Data: &events.Fulfilled{InstallCode: "IC-1", CustomerID: cid, LicenseIDs: []string{lid},
				Grants: []grant.Grant{*boundTo("IC-1", events.DeriveID("fulfil-1", "bound/"+lid), true).Grant}, FulfilledAt: now}}},

		{name: "transfer to cloud releases a license bound to the SmartServer", given: []given{added(), bound("IC-1", "request-0")}, transferFrom: "IC-1",
			then: spec.Then{Type: events.LicenseReleasedType, Data: &events.LicenseReleased{LicenseID: lid, InstallCode: "IC-1", TransferredAt: now}}},
		{name: "a license no longer bound there was released already", given: []given{added(), bound("IC-1", "request-0"), released("IC-1")}, transferFrom: "IC-1"},
	}
	var reasons []events.Reason
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := state(tt.given)
			switch {
			case tt.add != nil:
				spec.Check(t, license.Add(s, "cmd-1", tt.add, tt.customer, now), tt.then)
			case tt.request != nil:
				spec.Check(t, license.Bind(s, "request-1", tt.request, now, key), tt.then)
			case tt.fulfil != nil:
				customer := license.FulfilCustomer(tt.fulfil, s)
				if tt.fulfilFor != "" {
					customer = tt.fulfilFor
				}
				spec.Check(t, license.Fulfil(s, "fulfil-1", tt.fulfil, lid, customer, now, key), tt.then)
			case tt.unbind:
				spec.Check(t, license.Unbind(s, "fulfil-1", lid, now), tt.then)
			case tt.complete:
				spec.Check(t, license.Fulfilled("fulfil-1", fulfilOf("IC-1"), []license.State{s}, now), tt.then)
			default:
				spec.Check(t, license.Release(s, "transfer-1", tt.transferFrom, lid, now), tt.then)
			}
		})
		reasons = append(reasons, tt.then.Reason)
	}
	spec.Covers(t, license.Reasons(), reasons)
}

func fulfilOf(ic string) *events.Fulfil {
	return &events.Fulfil{InstallCode: ic, LicenseIDs: []string{lid}}
}
