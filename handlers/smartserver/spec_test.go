package smartserver_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
	"github.com/licensebus/licensebus/handlers/smartserver"
	"github.com/licensebus/licensebus/handlers/spec"
)

const (
	ic   = "IC-0001"
	cid  = "2133c667-af41-4518-94df-a2bb3b775330"
	cid2 = "9f0a4c3e-0d5b-4b8e-9a41-7c2f3e5d6a10"
	cap1 = "c0ffee00-1111-4222-8333-444455556666"
	mnt1 = "c0ffee00-2222-4222-8333-444455556666"
)

var at = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// dev is the id of the i-th device a table adds; devX is on another
// SmartServer.
func dev(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

var devX = dev(99)

// The SmartServer's events, as a table gives them.
var seq int

func ev(t events.Type, d events.Data, cause string) *events.Message {
	seq++
	return spec.Event(t, d, fmt.Sprint("e-", seq), cause)
}
func registered(version string) *events.Message {
	return ev(events.RegisteredType, &events.Registered{InstallCode: ic, Name: "SC-01", Version: version}, "")
}
func customerSet(c string) *events.Message {
	return ev(events.CustomerIDSetType, &events.CustomerIDSet{InstallCode: ic, CustomerID: c}, "")
}
func downloaded(c string) *events.Message {
	return ev(events.LicensesDownloadedType, &events.LicensesDownloaded{InstallCode: ic, CustomerID: c}, "")
}
func activated(lid string, devices int) *events.Message {
	return ev(events.LicenseActivatedType, &events.LicenseActivated{InstallCode: ic, LicenseID: lid, Kind: events.Capacity, Devices: devices, ActivatedAt: at}, "bound-"+lid)
}
func transferRequested(lids ...string) *events.Message {
	return spec.Event(events.TransferRequestedType, &events.TransferRequested{InstallCode: ic, LicenseIDs: lids}, "transfer-1", "cmd-0")
}
func released(lid string) *events.Message {
	return ev(events.LicenseReleasedType, &events.LicenseReleased{LicenseID: lid, InstallCode: ic, TransferredAt: at}, "transfer-1")
}
func transferred(lids ...string) *events.Message {
	return ev(events.LicensesTransferredType, &events.LicensesTransferred{InstallCode: ic, LicenseIDs: lids}, "")
}
func devicesAdded(n int) *events.Message {
	ds := make([]events.NewDevice, n)
	for i := range ds {
		ds[i] = events.NewDevice{DeviceID: dev(i), Name: fmt.Sprint("AHU-", i), Protocol: events.BACnet}
	}
	return ev(events.DevicesAddedType, &events.DevicesAdded{InstallCode: ic, Devices: ds}, "")
}
func provisioned(ids ...string) *events.Message {
	return ev(events.DevicesProvisionedType, &events.DevicesProvisioned{InstallCode: ic, DeviceIDs: ids}, "")
}

// The cloud's keys: key signs, old was revoked, stranger is nobody's.
var key, old, stranger = keyOf(7), keyOf(8), keyOf(9)

func keyOf(b byte) grant.Key {
	return grant.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
}

// trust is what the SmartServer trusts: grants are required from event
// stream seq 100 on.
var trust = func() smartserver.Trust {
	revoked := old.Public()
	revoked.Revoked = true
	return smartserver.Trust{Keys: grant.Keys{key.ID: key.Public(), old.ID: revoked}, Since: 100}
}()

// signed is the grant of license lid's binding "bound-<lid>" to SmartServer
// on, signed by k; edit changes it after signing.
func signed(lid, on string, k grant.Key, edit func(*grant.Grant)) *grant.Grant {
	g := &grant.Grant{GrantID: "bound-" + lid, LicenseID: lid, CustomerID: cid, InstallCode: on, Kind: events.Capacity, Devices: 200, BoundAt: grant.Time(at)}
	if err := k.Sign(g); err != nil {
		panic(err)
	}
	if edit != nil {
		edit(g)
	}
	return g
}

// bound is the cloud's binding of lid to this SmartServer carrying g.
func bound(lid string, g *grant.Grant) *events.Message {
	return spec.Event(events.LicenseBoundType, &events.LicenseBound{LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: at, Grant: g}, "bound-"+lid, "req-1")
}

// rebound is a later binding of lid to this SmartServer (after it gave
// the license back), with its own signed grant.
func rebound(lid string, when time.Time) *events.Message {
	g := &grant.Grant{GrantID: "bound2-" + lid, LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: grant.Time(when)}
	if err := key.Sign(g); err != nil {
		panic(err)
	}
	return spec.Event(events.LicenseBoundType, &events.LicenseBound{LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: when, Grant: g}, "bound2-"+lid, "req-2")
}

// file is a license file of grants gs; importing is the command.
func file(gs ...*grant.Grant) *events.ImportLicenses {
	f := grant.File{Format: grant.FileFormat, IssuedAt: grant.Time(at)}
	for _, g := range gs {
		f.Grants = append(f.Grants, *g)
	}
	raw, err := f.Encode()
	if err != nil {
		panic(err)
	}
	return &events.ImportLicenses{InstallCode: ic, LicenseFile: raw}
}

func imported(gs ...*grant.Grant) *events.LicensesImported {
	d := &events.LicensesImported{InstallCode: ic}
	for _, g := range gs {
		d.LicenseIDs = append(d.LicenseIDs, g.LicenseID)
		d.Licenses = append(d.Licenses, events.Imported{LicenseID: g.LicenseID, Kind: g.Kind, Devices: g.Devices, ActivatedAt: at, GrantID: g.GrantID, KeyID: g.KeyID})
	}
	return d
}

// ready is a SmartServer of the manual, set up to activate licenses.
func ready() []*events.Message {
	return []*events.Message{registered("3.4"), customerSet(cid), downloaded(cid)}
}

func with(base []*events.Message, more ...*events.Message) []*events.Message {
	return append(append([]*events.Message{}, base...), more...)
}

func fold(given []*events.Message) *smartserver.State {
	s := &smartserver.State{}
	for _, m := range given {
		smartserver.Evolve(s, m)
	}
	return s
}

// The rules of a SmartServer, as given/when/then: the manual's Manage
// Licenses dialog, the DMM devices, and how the cloud's answers are
// recorded.
func TestSpec(t *testing.T) {
	activate := &events.ActivateLicense{InstallCode: ic, LicenseID: cap1}
	owners := map[string]string{devX: "IC-0002"}
	tests := []struct {
		name  string
		given []*events.Message
		// when is a command (cmd-1), or an answer of the cloud stored at
		// seq (200 if 0).
		when     events.Data
		answer   *events.Message
		seq      uint64
		customer bool // the customer a command names exists
		then     spec.Then
	}{
		// Registering.
		{name: "a SmartServer is registered with its name and version", when: &events.Register{InstallCode: ic, Name: "SC-01", Version: "3.4"},
			then: spec.Then{Type: events.RegisteredType, Data: &events.Registered{InstallCode: ic, Name: "SC-01", Version: "3.4"}}},
		{name: "registering it again the same is a repeat", given: ready(), when: &events.Register{InstallCode: ic, Name: "SC-01", Version: "3.4"},
			then: spec.Then{Type: events.RegisteredType, Data: &events.Registered{InstallCode: ic, Name: "SC-01", Version: "3.4"}}},
		{name: "registering it again with another name or version is refused", given: ready(), when: &events.Register{InstallCode: ic, Name: "OTHER", Version: "3.1"},
			then: spec.Then{Reason: events.ReasonAlreadyExists}},
		{name: "commands to an unknown SmartServer are refused", when: &events.DownloadLicenses{InstallCode: ic},
			then: spec.Then{Reason: events.ReasonUnknownServer}},
		{name: "a new firmware version is recorded", given: ready(), when: &events.SetVersion{InstallCode: ic, Version: "3.5"},
			then: spec.Then{Type: events.VersionSetType, Data: &events.VersionSet{InstallCode: ic, Version: "3.5", Previous: "3.4"}}},
		{name: "going below 3.3 with licenses active is refused", given: with(ready(), activated(cap1, 200)), when: &events.SetVersion{InstallCode: ic, Version: "3.2"},
			then: spec.Then{Reason: events.ReasonLicensesActive}},

		// Manage Customer Accounts: Save.
		{name: "Save stores an existing customer's Customer ID", given: []*events.Message{registered("3.4")}, customer: true,
			when: &events.SetCustomerID{InstallCode: ic, CustomerID: cid},
			then: spec.Then{Type: events.CustomerIDSetType, Data: &events.CustomerIDSet{InstallCode: ic, CustomerID: cid}}},
		{name: "a Customer ID with no account in the portal is refused", given: []*events.Message{registered("3.4")}, customer: false,
			when: &events.SetCustomerID{InstallCode: ic, CustomerID: cid}, then: spec.Then{Reason: events.ReasonUnknownCustomer}},

		// Download Licenses from the Cloud.
		{name: "download fetches the licenses of the SmartServer's customer", given: []*events.Message{registered("3.4"), customerSet(cid)},
			when: &events.DownloadLicenses{InstallCode: ic},
			then: spec.Then{Type: events.LicensesDownloadedType, Data: &events.LicensesDownloaded{InstallCode: ic, CustomerID: cid}}},
		{name: "download without a Customer ID is refused", given: []*events.Message{registered("3.4")},
			when: &events.DownloadLicenses{InstallCode: ic}, then: spec.Then{Reason: events.ReasonCustomerNotSet}},

		// ACTIVATE.
		{name: "activating asks the cloud to bind the license", given: ready(), when: activate,
			then: spec.Then{Type: events.ActivationRequestedType, Data: &events.ActivationRequested{InstallCode: ic, LicenseID: cap1, CustomerID: cid}}},
		{name: "below 3.3 no license is needed", given: []*events.Message{registered("3.2"), customerSet(cid), downloaded(cid)}, when: activate,
			then: spec.Then{Reason: events.ReasonNotRequired}},
		{name: "activating without a Customer ID is refused", given: []*events.Message{registered("3.4")}, when: activate,
			then: spec.Then{Reason: events.ReasonCustomerNotSet}},
		{name: "activating before downloading is refused", given: []*events.Message{registered("3.4"), customerSet(cid)}, when: activate,
			then: spec.Then{Reason: events.ReasonNotDownloaded}},
		{name: "a new Customer ID needs a new download", given: with(ready(), customerSet(cid2)), when: activate,
			then: spec.Then{Reason: events.ReasonNotDownloaded}},
		{name: "activating during a transfer to the cloud is refused", given: with(ready(), activated(mnt1, 200), transferRequested(mnt1)), when: activate,
			then: spec.Then{Reason: events.ReasonTransferInFlight}},
		{name: "a license active here already is refused", given: with(ready(), activated(cap1, 200)), when: activate,
			then: spec.Then{Reason: events.ReasonAlreadyActive}},

		// The cloud's answers.
		{name: "the cloud's binding activates the license once its grant verifies", given: ready(),
			answer: bound(cap1, signed(cap1, ic, key, nil)),
			then:   spec.Then{Type: events.LicenseActivatedType, Data: &events.LicenseActivated{InstallCode: ic, LicenseID: cap1, Kind: events.Capacity, Devices: 200, ActivatedAt: at}}},
		{name: "a binding recorded before decides nothing", given: with(ready(), activated(cap1, 200)),
			answer: bound(cap1, signed(cap1, ic, key, nil))},
		{name: "a binding whose grant was edited is refused", given: ready(),
			answer: bound(cap1, signed(cap1, ic, key, func(g *grant.Grant) { g.Devices = 2000 })), then: spec.Then{Reason: events.ReasonBadSignature}},
		{name: "a binding with another binding's grant is refused", given: ready(),
			answer: bound(cap1, signed(mnt1, ic, key, nil)), then: spec.Then{Reason: events.ReasonBadSignature}},
		{name: "a binding whose terms differ from its grant is refused", given: ready(),
			answer: spec.Event(events.LicenseBoundType, &events.LicenseBound{LicenseID: cap1, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 5000, BoundAt: at, Grant: signed(cap1, ic, key, nil)}, "bound-"+cap1, "req-1"),
			then:   spec.Then{Reason: events.ReasonBadSignature}},
		{name: "a binding without a grant, written after grants were required, is refused", given: ready(),
			answer: bound(cap1, nil), then: spec.Then{Reason: events.ReasonBadSignature}},
		{name: "a binding without a grant written before grants existed is taken", given: ready(), answer: bound(cap1, nil), seq: 50,
			then: spec.Then{Type: events.LicenseActivatedType, Data: &events.LicenseActivated{InstallCode: ic, LicenseID: cap1, Kind: events.Capacity, Devices: 200, ActivatedAt: at}}},
		{name: "a binding signed by a key nobody trusts is refused", given: ready(),
			answer: bound(cap1, signed(cap1, ic, stranger, nil)), then: spec.Then{Reason: events.ReasonUnknownKey}},
		{name: "a binding signed by a revoked key is refused", given: ready(),
			answer: bound(cap1, signed(cap1, ic, old, nil)), then: spec.Then{Reason: events.ReasonKeyRevoked}},
		{name: "a binding given back before is not taken again", given: with(ready(), activated(cap1, 200), transferRequested(cap1), released(cap1), transferred(cap1)),
			answer: bound(cap1, signed(cap1, ic, key, nil)), then: spec.Then{Reason: events.ReasonGrantUsed}},
		{name: "a license given back and bound again takes the new binding", given: with(ready(), activated(cap1, 200), transferRequested(cap1), released(cap1), transferred(cap1)),
			answer: rebound(cap1, at.Add(time.Hour)),
			then:   spec.Then{Type: events.LicenseActivatedType, Data: &events.LicenseActivated{InstallCode: ic, LicenseID: cap1, Kind: events.Capacity, Devices: 200, ActivatedAt: at.Add(time.Hour)}}},
		{name: "a binding made offline waits for its license file", given: ready(),
			answer: spec.Event(events.LicenseBoundType, &events.LicenseBound{LicenseID: cap1, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: at, Offline: true, Grant: signed(cap1, ic, key, nil)}, "bound-"+cap1, "fulfil-1")},

		// Add License: a license file from the License Customer Portal.
		{name: "a license file activates its licenses at once", given: ready(), when: file(signed(cap1, ic, key, nil), signed(mnt1, ic, key, nil)),
			then: spec.Then{Type: events.LicensesImportedType, Data: imported(signed(cap1, ic, key, nil), signed(mnt1, ic, key, nil))}},
		{name: "a SmartServer never online, without a Customer ID, imports its file", given: []*events.Message{registered("3.4")}, when: file(signed(cap1, ic, key, nil)),
			then: spec.Then{Type: events.LicensesImportedType, Data: imported(signed(cap1, ic, key, nil))}},
		{name: "a file with an edited grant is refused", given: ready(), when: file(signed(cap1, ic, key, nil), signed(mnt1, ic, key, func(g *grant.Grant) { g.Devices++ })),
			then: spec.Then{Reason: events.ReasonBadSignature}},
		{name: "a file signed by a key nobody trusts is refused", given: ready(), when: file(signed(cap1, ic, stranger, nil)),
			then: spec.Then{Reason: events.ReasonUnknownKey}},
		{name: "a file signed by a revoked key is refused", given: ready(), when: file(signed(cap1, ic, old, nil)),
			then: spec.Then{Reason: events.ReasonKeyRevoked}},
		{name: "a file for another SmartServer is refused", given: ready(), when: file(signed(cap1, "IC-0002", key, nil)),
			then: spec.Then{Reason: events.ReasonInstallCodeMismatch}},
		{name: "a file with another customer's license is refused", given: with(ready(), customerSet(cid2)), when: file(signed(cap1, ic, key, nil)),
			then: spec.Then{Reason: events.ReasonCustomerMismatch}},
		{name: "a file with a license active here is refused", given: with(ready(), activated(cap1, 200)), when: file(signed(cap1, ic, key, nil)),
			then: spec.Then{Reason: events.ReasonAlreadyActive}},
		{name: "a file whose grant was given back with a transfer is refused", given: with(ready(), activated(cap1, 200), transferRequested(cap1), released(cap1), transferred(cap1)),
			when: file(signed(cap1, ic, key, nil)), then: spec.Then{Reason: events.ReasonGrantUsed}},
		{name: "a file with a license twice is refused", given: ready(), when: file(signed(cap1, ic, key, nil), signed(cap1, ic, key, nil)),
			then: spec.Then{Reason: events.ReasonMalformedLicense}},
		{name: "an imported capacity license makes devices blue, as an online one", given: with(ready(), devicesAdded(2), ev(events.LicensesImportedType, imported(signed(cap1, ic, key, nil)), "cmd-0")),
			when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(1)},
			then: spec.Then{Type: events.DeviceProvisionedType, Data: &events.DeviceProvisioned{InstallCode: ic, DeviceID: dev(1)}}},
		{name: "a file during a transfer to the cloud is refused", given: with(ready(), activated(mnt1, 200), transferRequested(mnt1)), when: file(signed(cap1, ic, key, nil)),
			then: spec.Then{Reason: events.ReasonTransferInFlight}},
		{name: "a release that is not the last decides nothing", given: with(ready(), activated(cap1, 200), activated(mnt1, 200), transferRequested(cap1, mnt1)),
			answer: released(cap1)},
		{name: "the last release completes the transfer", given: with(ready(), activated(cap1, 200), activated(mnt1, 200), transferRequested(cap1, mnt1), released(cap1)),
			answer: released(mnt1),
			then:   spec.Then{Type: events.LicensesTransferredType, Data: &events.LicensesTransferred{InstallCode: ic, LicenseIDs: []string{cap1, mnt1}, TransferredAt: at}}},

		// TRANSFER LICENSES.
		{name: "transfer to cloud gives back every active license", given: with(ready(), activated(mnt1, 200), activated(cap1, 200)),
			when: &events.TransferToCloud{InstallCode: ic},
			then: spec.Then{Type: events.TransferRequestedType, Data: &events.TransferRequested{InstallCode: ic, LicenseIDs: []string{cap1, mnt1}}}},
		{name: "transfer with no active license is refused", given: ready(), when: &events.TransferToCloud{InstallCode: ic},
			then: spec.Then{Reason: events.ReasonNoActiveLicenses}},
		{name: "a second transfer while one runs is refused", given: with(ready(), activated(cap1, 200), transferRequested(cap1)),
			when: &events.TransferToCloud{InstallCode: ic}, then: spec.Then{Reason: events.ReasonTransferInFlight}},
		{name: "after a transfer the licenses can be activated again", given: with(ready(), activated(cap1, 200), transferRequested(cap1), released(cap1), transferred(cap1)),
			when: activate,
			then: spec.Then{Type: events.ActivationRequestedType, Data: &events.ActivationRequested{InstallCode: ic, LicenseID: cap1, CustomerID: cid}}},

		// DMM devices.
		{name: "a device is added with the id asked for", given: ready(), when: &events.AddDevice{InstallCode: ic, DeviceID: dev(9), Name: "AHU-9", Protocol: events.LON},
			then: spec.Then{Type: events.DeviceAddedType, Data: &events.DeviceAdded{InstallCode: ic, DeviceID: dev(9), Name: "AHU-9", Protocol: events.LON}}},
		{name: "a device id in use on any SmartServer is refused", given: ready(), when: &events.AddDevice{InstallCode: ic, DeviceID: devX, Name: "AHU", Protocol: events.LON},
			then: spec.Then{Reason: events.ReasonAlreadyExists}},
		{name: "a blue device is provisioned", given: with(ready(), activated(cap1, 2), devicesAdded(2)), when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(1)},
			then: spec.Then{Type: events.DeviceProvisionedType, Data: &events.DeviceProvisioned{InstallCode: ic, DeviceID: dev(1)}}},
		{name: "a purple device (over capacity) cannot be provisioned", given: with(ready(), activated(cap1, 1), devicesAdded(2)),
			when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(1)}, then: spec.Then{Reason: events.ReasonUnlicensed}},
		{name: "after a transfer every device is purple", given: with(ready(), activated(cap1, 2), devicesAdded(2), provisioned(dev(0)), transferRequested(cap1), released(cap1), transferred(cap1)),
			when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(0)}, then: spec.Then{Reason: events.ReasonUnlicensed}},
		{name: "a new activation after a transfer makes them blue, not green", given: with(ready(), activated(cap1, 2), devicesAdded(2), provisioned(dev(0)), transferRequested(cap1), released(cap1), transferred(cap1), activated(mnt1, 2)),
			when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(0)},
			then: spec.Then{Type: events.DeviceProvisionedType, Data: &events.DeviceProvisioned{InstallCode: ic, DeviceID: dev(0)}}},
		{name: "a green device cannot be provisioned again", given: with(ready(), activated(cap1, 2), devicesAdded(2), provisioned(dev(0))),
			when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(0)}, then: spec.Then{Reason: events.ReasonAlreadyProvisioned}},
		{name: "an unknown device is refused", given: ready(), when: &events.ProvisionDevice{InstallCode: ic, DeviceID: dev(7)},
			then: spec.Then{Reason: events.ReasonUnknownDevice}},
		{name: "a device of another SmartServer is refused", given: ready(), when: &events.RemoveDevice{InstallCode: ic, DeviceID: devX},
			then: spec.Then{Reason: events.ReasonOtherServer}},
		{name: "a batch provisions what it can and says why not the rest", given: with(ready(), activated(cap1, 1), devicesAdded(2)),
			when: &events.ProvisionDevices{InstallCode: ic, DeviceIDs: []string{dev(0), dev(1)}},
			then: spec.Then{Type: events.DevicesProvisionedType, Data: &events.DevicesProvisioned{InstallCode: ic, DeviceIDs: []string{dev(0)},
				Refused: []events.Refusal{{DeviceID: dev(1), Reason: events.ReasonUnlicensed,
					Message: "device " + dev(1) + " is unlicensed (purple): SmartServer IC-0001 licenses 1 device; activate a capacity license first"}}}}},
		{name: "deprovisioning a device that is not green is refused", given: with(ready(), activated(cap1, 2), devicesAdded(2)),
			when: &events.DeprovisionDevice{InstallCode: ic, DeviceID: dev(0)}, then: spec.Then{Reason: events.ReasonNotProvisioned}},
		{name: "removing a device frees its slot", given: with(ready(), activated(cap1, 1), devicesAdded(2)),
			when: &events.RemoveDevice{InstallCode: ic, DeviceID: dev(0)},
			then: spec.Then{Type: events.DeviceRemovedType, Data: &events.DeviceRemoved{InstallCode: ic, DeviceID: dev(0)}}},
		{name: "reactive provisioning is switched per SmartServer", given: ready(), when: &events.SetAutoProvision{InstallCode: ic, Enabled: true},
			then: spec.Then{Type: events.AutoProvisionSetType, Data: &events.AutoProvisionSet{InstallCode: ic, Enabled: true}}},
		{name: "a command of another aggregate is no SmartServer command", given: ready(), when: &events.CreateCustomer{Name: "P"},
			then: spec.Then{Reason: events.ReasonUnknownType}},
	}
	var reasons []events.Reason
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fold(tt.given)
			before := s.Clone()
			var got handlers.Decision
			if tt.answer != nil {
				// Answers are decided on a state that has folded them.
				smartserver.Evolve(s, tt.answer)
				before = s.Clone()
				seq := tt.seq
				if seq == 0 {
					seq = 200
				}
				got = smartserver.Answer(s, ic, tt.answer, seq, trust)
			} else {
				c := smartserver.Command{ID: "cmd-1", Data: tt.when, CustomerExists: tt.customer, Owners: map[string]string{}, Keys: trust.Keys}
				for _, id := range smartserver.Named(c.ID, tt.when) {
					if o := owners[id]; o != "" {
						c.Owners[id] = o
					}
				}
				got = smartserver.Decide(s, ic, c)
			}
			spec.Check(t, got, tt.then)
			if fmt.Sprint(*s) != fmt.Sprint(before) {
				t.Fatalf("deciding changed the state")
			}
		})
		reasons = append(reasons, tt.then.Reason)
	}
	spec.Covers(t, smartserver.Reasons(), reasons)
}

// Ensure what a SmartServer remembers of the licenses it gave back is one
// entry per license, however often it activates and transfers it (the soak
// bench found it growing by one grant id per cycle), and that every grant
// given back stays used up.
func TestSpentIsOnePerLicense(t *testing.T) {
	var s smartserver.State
	for _, m := range ready() {
		smartserver.Evolve(&s, m)
	}
	for i := range 50 {
		when := at.Add(time.Duration(i) * time.Hour)
		for _, m := range []*events.Message{
			ev(events.LicenseActivatedType, &events.LicenseActivated{InstallCode: ic, LicenseID: cap1, Kind: events.Capacity, Devices: 200, ActivatedAt: when}, fmt.Sprintf("bound-%d", i)),
			transferRequested(cap1), released(cap1), transferred(cap1),
		} {
			smartserver.Evolve(&s, m)
		}
		if !s.UsedUp(cap1, when) || s.UsedUp(cap1, when.Add(time.Minute)) {
			t.Fatalf("cycle %d: binding at %v used up %v, a later one %v; want true, false", i, when, s.UsedUp(cap1, when), s.UsedUp(cap1, when.Add(time.Minute)))
		}
	}
	if len(s.Spent) != 1 {
		t.Errorf("%d entries remembered for one license given back 50 times, want 1", len(s.Spent))
	}
}
