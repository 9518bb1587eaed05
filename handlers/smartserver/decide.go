package smartserver

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
)

// Command is a SmartServer command with the facts from outside the
// SmartServer its rules need.
type Command struct {
	// ID is the command's CloudEvent id; the ids of the events it causes
	// and of devices added without one derive from it.
	ID string
	// Data is the command: *events.Register, *events.ActivateLicense, …
	Data events.Data
	// CustomerExists says whether the customer a SetCustomerID names has
	// an account in the cloud.
	CustomerExists bool
	// Owners maps the devices the command names (Named) to the SmartServer
	// each is on; a device on none is absent.
	Owners map[string]string
	// Keys are the cloud's keys the SmartServer trusts, for the grants of
	// an ImportLicenses (a grant.Keys, or a grant.Memo of them).
	Keys grant.Verifier
}

// Trust is what the SmartServer trusts of the cloud's answers: the keys of
// their grants, and from where in the event stream a binding must carry
// one.
type Trust struct {
	// Keys are the keys it trusts (a grant.Keys, revoked ones marked, or a
	// grant.Memo of them).
	Keys grant.Verifier
	// Since is the event stream sequence of the first key the cloud
	// published (0: none yet): bindings stored before it were written
	// before grants existed and are taken without one; from it on, a
	// binding without a grant is refused.
	Since uint64
}

// Named lists the devices a command names, those added without an id with
// the id they get: what Command.Owners must answer for.
func Named(commandID string, d events.Data) []string {
	switch c := d.(type) {
	case *events.AddDevice:
		return []string{deviceID(commandID, c.DeviceID, -1)}
	case *events.AddDevices:
		ids := make([]string, len(c.Devices))
		for i, nd := range c.Devices {
			ids[i] = deviceID(commandID, nd.DeviceID, i)
		}
		return ids
	case *events.ProvisionDevices:
		return c.DeviceIDs
	case *events.ProvisionDevice:
		return []string{c.DeviceID}
	case *events.RemoveDevice:
		return []string{c.DeviceID}
	case *events.DeprovisionDevice:
		return []string{c.DeviceID}
	}
	return nil
}

// deviceID is the id of an added device: its own, or derived from the
// command (the i-th of a batch; -1 for a single device).
func deviceID(commandID, id string, i int) string {
	switch {
	case id != "":
		return id
	case i < 0:
		return events.DeriveID(commandID, "device")
	}
	return events.DeriveID(commandID, fmt.Sprint("device/", i))
}

// Decide decides on a command for SmartServer ic in state s.
func Decide(s *State, ic string, c Command) handlers.Decision {
	emit := func(t events.Type, d events.Data) handlers.Decision {
		return handlers.Emit(t, d, events.DeriveID(c.ID, string(t)))
	}
	if r, ok := c.Data.(*events.Register); ok {
		return register(s, ic, r, emit)
	}
	if !s.Registered {
		return handlers.Refuse(events.ReasonUnknownServer, "no SmartServer with install code %s is registered", ic)
	}
	switch d := c.Data.(type) {
	case *events.SetVersion:
		if !events.NeedsLicense(d.Version) && len(s.Active) > 0 {
			return handlers.Refuse(events.ReasonLicensesActive,
				"SmartServer %s has %s active; transfer them to the cloud before going to %s, below 3.3", ic, count(len(s.Active), "license"), d.Version)
		}
		return emit(events.VersionSetType, &events.VersionSet{InstallCode: ic, Version: d.Version, Previous: s.Version})

	case *events.SetCustomerID:
		if !c.CustomerExists {
			return handlers.Refuse(events.ReasonUnknownCustomer, "no customer account %s in the License Partner Portal", d.CustomerID)
		}
		return emit(events.CustomerIDSetType, &events.CustomerIDSet{InstallCode: ic, CustomerID: d.CustomerID, Previous: s.Customer})

	case *events.DownloadLicenses:
		if s.Customer == "" {
			return handlers.Refuse(events.ReasonCustomerNotSet, "SmartServer %s has no Customer ID; set it in Manage Customer Accounts first", ic)
		}
		return emit(events.LicensesDownloadedType, &events.LicensesDownloaded{InstallCode: ic, CustomerID: s.Customer})

	case *events.ActivateLicense:
		switch {
		case !events.NeedsLicense(s.Version):
			return handlers.Refuse(events.ReasonNotRequired, "SmartServer %s runs %s; license management applies to 3.3 and higher", ic, s.Version)
		case s.Customer == "":
			return handlers.Refuse(events.ReasonCustomerNotSet, "SmartServer %s has no Customer ID; set it in Manage Customer Accounts first", ic)
		case s.DownloadedFor != s.Customer:
			return handlers.Refuse(events.ReasonNotDownloaded, "download the licenses of customer %s on SmartServer %s first", s.Customer, ic)
		case len(s.Transfer.Licenses) > 0:
			return handlers.Refuse(events.ReasonTransferInFlight, "a transfer to the cloud is in progress on SmartServer %s", ic)
		}
		if s.Active.Has(d.LicenseID) {
			return handlers.Refuse(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", d.LicenseID, ic)
		}
		return emit(events.ActivationRequestedType, &events.ActivationRequested{InstallCode: ic, LicenseID: d.LicenseID, CustomerID: s.Customer})

	case *events.TransferToCloud:
		if len(s.Transfer.Licenses) > 0 {
			return handlers.Refuse(events.ReasonTransferInFlight, "a transfer to the cloud is already in progress on SmartServer %s", ic)
		}
		if len(s.Active) == 0 {
			return handlers.Refuse(events.ReasonNoActiveLicenses, "SmartServer %s has no active licenses to transfer", ic)
		}
		lids := s.Active.Keys()
		return emit(events.TransferRequestedType, &events.TransferRequested{InstallCode: ic, LicenseIDs: lids})

	case *events.SetAutoProvision:
		return emit(events.AutoProvisionSetType, &events.AutoProvisionSet{InstallCode: ic, Enabled: d.Enabled})

	case *events.ImportLicenses:
		return importLicenses(s, ic, d, c.Keys, emit)
	}
	return decideDevices(s, ic, c, emit)
}

// importLicenses activates the licenses of a license file, each as the
// cloud's binding activates it online, once every grant verifies and
// applies to the SmartServer: all of them, or none.
func importLicenses(s *State, ic string, d *events.ImportLicenses, keys grant.Verifier, emit func(events.Type, events.Data) handlers.Decision) handlers.Decision {
	switch {
	case !events.NeedsLicense(s.Version):
		return handlers.Refuse(events.ReasonNotRequired, "SmartServer %s runs %s; license management applies to 3.3 and higher", ic, s.Version)
	case len(s.Transfer.Licenses) > 0:
		return handlers.Refuse(events.ReasonTransferInFlight, "a transfer to the cloud is in progress on SmartServer %s", ic)
	}
	f, err := d.File()
	if err != nil {
		return handlers.Decision{Refuse: events.AsRejection(err)}
	}
	if keys == nil {
		keys = grant.Keys{}
	}
	out := &events.LicensesImported{InstallCode: ic}
	seen := make(map[string]bool, len(f.Grants))
	for i := range f.Grants {
		g := &f.Grants[i]
		if rej := events.GrantError(keys.Verify(g)); rej != nil {
			return handlers.Decision{Refuse: rej}
		}
		if g.InstallCode != ic {
			return handlers.Refuse(events.ReasonInstallCodeMismatch, "the license file is for SmartServer %s, not %s", g.InstallCode, ic)
		}
		if s.Customer != "" && g.CustomerID != s.Customer {
			return handlers.Refuse(events.ReasonCustomerMismatch,
				"license %s belongs to customer %s, not to %s, the Customer ID of SmartServer %s", g.LicenseID, g.CustomerID, s.Customer, ic)
		}
		if seen[g.LicenseID] {
			return handlers.Refuse(events.ReasonMalformedLicense, "license %s is in the file twice", g.LicenseID)
		}
		seen[g.LicenseID] = true
		if s.Active.Has(g.LicenseID) {
			return handlers.Refuse(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", g.LicenseID, ic)
		}
		at, err := time.Parse(time.RFC3339Nano, g.BoundAt)
		if err != nil {
			return handlers.Refuse(events.ReasonMalformedLicense, "bound_at %q of license %s is not an RFC 3339 time", g.BoundAt, g.LicenseID)
		}
		if s.UsedUp(g.LicenseID, at) {
			return handlers.Refuse(events.ReasonGrantUsed,
				"the grant of license %s was used on SmartServer %s and the license transferred to the cloud since; a new license file binds it again", g.LicenseID, ic)
		}
		out.LicenseIDs = append(out.LicenseIDs, g.LicenseID)
		out.Licenses = append(out.Licenses, events.Imported{LicenseID: g.LicenseID, Kind: g.Kind, Devices: g.Devices, Expires: g.Expires,
			ActivatedAt: at, GrantID: g.GrantID, KeyID: g.KeyID})
	}
	return emit(events.LicensesImportedType, out)
}

// register announces a SmartServer. Registering it again with the same name
// and version is a repeat that changes nothing; with other values it is
// refused, saying what differs: a new version is SetVersion's.
func register(s *State, ic string, r *events.Register, emit func(events.Type, events.Data) handlers.Decision) handlers.Decision {
	if s.Registered {
		var diff []string
		if s.Name != r.Name {
			diff = append(diff, fmt.Sprintf("name %q, not %q", s.Name, r.Name))
		}
		if s.Version != r.Version {
			diff = append(diff, fmt.Sprintf("version %s, not %s (smartserver set-version changes it)", s.Version, r.Version))
		}
		if len(diff) > 0 {
			return handlers.Refuse(events.ReasonAlreadyExists, "SmartServer %s is registered already with %s", ic, strings.Join(diff, "; "))
		}
	}
	return emit(events.RegisteredType, &events.Registered{InstallCode: ic, Name: r.Name, Version: r.Version})
}

// decideDevices decides on the DMM device commands.
func decideDevices(s *State, ic string, c Command, emit func(events.Type, events.Data) handlers.Decision) handlers.Decision {
	switch d := c.Data.(type) {
	case *events.AddDevice:
		id := deviceID(c.ID, d.DeviceID, -1)
		if owner := c.Owners[id]; owner != "" {
			return handlers.Refuse(events.ReasonAlreadyExists, "device %s exists already on SmartServer %s", id, owner)
		}
		return emit(events.DeviceAddedType, &events.DeviceAdded{InstallCode: ic, DeviceID: id, Name: d.Name, Protocol: d.Protocol})

	case *events.AddDevices:
		added := make([]events.NewDevice, len(d.Devices))
		seen := make(map[string]bool, len(d.Devices))
		for i, nd := range d.Devices {
			nd.DeviceID = deviceID(c.ID, nd.DeviceID, i)
			if c.Owners[nd.DeviceID] != "" || seen[nd.DeviceID] {
				return handlers.Refuse(events.ReasonAlreadyExists, "device %s exists already", nd.DeviceID)
			}
			seen[nd.DeviceID] = true
			added[i] = nd
		}
		return emit(events.DevicesAddedType, &events.DevicesAdded{InstallCode: ic, Devices: added})

	case *events.ProvisionDevices:
		var ok []string
		var refused []events.Refusal
		seen := make(map[string]bool, len(d.DeviceIDs))
		for _, id := range d.DeviceIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			if rej := provisionable(s, ic, id, c.Owners); rej != nil {
				refused = append(refused, events.Refusal{DeviceID: id, Reason: rej.Reason, Message: rej.Message})
				continue
			}
			ok = append(ok, id)
		}
		if len(ok) == 0 {
			return handlers.Refuse(refused[0].Reason, "none of the %s can be provisioned: %s", count(len(refused), "device"), refused[0].Message)
		}
		return emit(events.DevicesProvisionedType, &events.DevicesProvisioned{InstallCode: ic, DeviceIDs: ok, Refused: refused})

	case *events.ProvisionDevice:
		if rej := provisionable(s, ic, d.DeviceID, c.Owners); rej != nil {
			return handlers.Decision{Refuse: rej}
		}
		return emit(events.DeviceProvisionedType, &events.DeviceProvisioned{InstallCode: ic, DeviceID: d.DeviceID})

	case *events.RemoveDevice:
		if _, rej := device(s, ic, d.DeviceID, c.Owners); rej != nil {
			return handlers.Decision{Refuse: rej}
		}
		return emit(events.DeviceRemovedType, &events.DeviceRemoved{InstallCode: ic, DeviceID: d.DeviceID})

	case *events.DeprovisionDevice:
		dev, rej := device(s, ic, d.DeviceID, c.Owners)
		if rej != nil {
			return handlers.Decision{Refuse: rej}
		}
		if dev.State != events.Provisioned {
			return handlers.Refuse(events.ReasonNotProvisioned, "device %s is not provisioned", d.DeviceID)
		}
		return emit(events.DeviceDeprovisionedType, &events.DeviceDeprovisioned{InstallCode: ic, DeviceID: d.DeviceID})
	}
	return handlers.Refuse(events.ReasonUnknownType, "%T is not a SmartServer command", c.Data)
}

// device finds a device on SmartServer ic, or says why not.
func device(s *State, ic, id string, owners map[string]string) (events.Device, *events.Rejection) {
	if i := s.Devices.Index(id); i >= 0 {
		return s.Devices.At(i), nil
	}
	if owner := owners[id]; owner != "" && owner != ic {
		return events.Device{}, events.Reject(events.ReasonOtherServer, "device %s is on SmartServer %s, not %s", id, owner, ic)
	}
	return events.Device{}, events.Reject(events.ReasonUnknownDevice, "no device %s on SmartServer %s", id, ic)
}

// provisionable says why device id of SmartServer ic cannot be
// provisioned, nil if it can.
func provisionable(s *State, ic, id string, owners map[string]string) *events.Rejection {
	d, rej := device(s, ic, id, owners)
	if rej != nil {
		return rej
	}
	switch d.State {
	case events.Unlicensed:
		return events.Reject(events.ReasonUnlicensed,
			"device %s is unlicensed (purple): SmartServer %s licenses %s; activate a capacity license first", id, ic, count(s.Devices.Licensed(), "device"))
	case events.Provisioned:
		return events.Reject(events.ReasonAlreadyProvisioned, "device %s is provisioned already", id)
	}
	return nil
}

// Answer decides how SmartServer ic in state s — which has folded m, stored
// at seq in the event stream — records the cloud's answer m: a bound
// license becomes active once its grant verifies under t (a binding made
// offline waits for its license file); the last license released completes
// the transfer. An answer recorded before decides nothing.
func Answer(s *State, ic string, m *events.Message, seq uint64, t Trust) handlers.Decision {
	if !s.Registered {
		return handlers.Nothing()
	}
	switch e := m.Data.(type) {
	case *events.LicenseBound:
		if e.Offline {
			return handlers.Nothing() // activated by importing the license file
		}
		if a, ok := s.Active.Get(e.LicenseID); ok && a.By == m.ID() {
			return handlers.Nothing()
		}
		if rej := checkBinding(s, m.ID(), e, seq, t); rej != nil {
			return handlers.Decision{Refuse: rej}
		}
		return handlers.Emit(events.LicenseActivatedType, &events.LicenseActivated{
			InstallCode: ic, LicenseID: e.LicenseID, Kind: e.Kind, Devices: e.Devices, Expires: e.Expires, ActivatedAt: e.BoundAt,
		}, events.DeriveID(m.ID(), "activated"))
	case *events.LicenseReleased:
		t := s.Transfer
		if !slices.Contains(t.Licenses, e.LicenseID) {
			return handlers.Nothing()
		}
		for _, lid := range t.Licenses {
			if !t.Released.Has(lid) {
				return handlers.Nothing() // the last release completes the transfer
			}
		}
		// Derived from the transfer request: the same completion whichever
		// release is handled last.
		return handlers.Emit(events.LicensesTransferredType, &events.LicensesTransferred{
			InstallCode: ic, LicenseIDs: t.Licenses, TransferredAt: e.TransferredAt,
		}, events.DeriveID(t.By, "transferred"))
	}
	return handlers.Nothing()
}

// checkBinding says why binding e (event id, stored at seq) must not
// activate its license: a grant that does not verify, that is not this
// binding's, or that was used and given back; or no grant where one is
// required. nil: it may.
func checkBinding(s *State, id string, e *events.LicenseBound, seq uint64, t Trust) *events.Rejection {
	g := e.Grant
	if g == nil {
		if t.Since == 0 || seq < t.Since {
			return nil // written before grants existed
		}
		return events.Reject(events.ReasonBadSignature,
			"binding %s of license %s carries no grant, and every binding from event stream seq %d on must", id, e.LicenseID, t.Since)
	}
	keys := t.Keys
	if keys == nil {
		keys = grant.Keys{}
	}
	if rej := events.GrantError(keys.Verify(g)); rej != nil {
		return rej
	}
	if g.GrantID != id || g.LicenseID != e.LicenseID || g.CustomerID != e.CustomerID || g.InstallCode != e.InstallCode ||
		g.Kind != e.Kind || g.Devices != e.Devices || g.Expires != e.Expires || g.BoundAt != grant.Time(e.BoundAt) {
		return events.Reject(events.ReasonBadSignature, "binding %s of license %s says other terms than the grant it carries", id, e.LicenseID)
	}
	if s.UsedUp(e.LicenseID, e.BoundAt) {
		return events.Reject(events.ReasonGrantUsed, "binding %s of license %s was used and given back to the cloud before", id, e.LicenseID)
	}
	return nil
}

// count says "1 device", "2 devices".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Reasons are the refusals the SmartServer rules give.
func Reasons() []events.Reason {
	return []events.Reason{events.ReasonUnknownServer, events.ReasonAlreadyExists, events.ReasonLicensesActive,
		events.ReasonUnknownCustomer, events.ReasonCustomerNotSet, events.ReasonNotRequired, events.ReasonNotDownloaded,
		events.ReasonTransferInFlight, events.ReasonAlreadyActive, events.ReasonNoActiveLicenses,
		events.ReasonUnknownDevice, events.ReasonOtherServer, events.ReasonUnlicensed, events.ReasonAlreadyProvisioned,
		events.ReasonNotProvisioned, events.ReasonUnknownType,
		events.ReasonBadSignature, events.ReasonUnknownKey, events.ReasonKeyRevoked, events.ReasonInstallCodeMismatch,
		events.ReasonCustomerMismatch, events.ReasonGrantUsed, events.ReasonMalformedLicense}
}
