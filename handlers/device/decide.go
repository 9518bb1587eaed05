package device

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
)

func (h *Handler) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := bus.Screen(ctx, h.app, h.dl, d, func(i events.Info) bool { return i.Command && i.Side == events.DeviceSide }, events.DeviceSource)
	if !ok || err != nil {
		return err
	}
	m := d.Message
	if h.handled(m.ID()) {
		return nil
	}
	ic := m.Data.Key()
	seq, out, err := h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		return h.decide(ctx, m, ic)
	})
	return h.finish(ctx, m, seq, out, err)
}

// decide turns one SmartServer command into the event it causes, or a
// rejection, on the SmartServer's current state.
func (h *Handler) decide(ctx context.Context, m *events.Message, ic string) (bus.Decision, error) {
	ss, known := h.server(ctx, ic)
	// on is the state this decision rests on; refusals return it too.
	on := bus.Decision{Filter: events.AggregateFilter("smartserver", ic), Expect: ss.seq}
	next := func(t events.Type, data events.Data) (bus.Decision, error) {
		ev, err := events.New(t, data, m.Next(events.DeriveID(m.ID(), string(t)), events.DeviceSource+"/"+ic, m.Actor()))
		return bus.Decision{Event: ev, Filter: events.AggregateFilter("smartserver", ic), Expect: ss.seq}, err
	}
	if r, ok := m.Data.(*events.Register); ok {
		return next(events.RegisteredType, &events.Registered{InstallCode: ic, Name: r.Name, Version: r.Version})
	}
	if !known {
		return on, events.Reject(events.ReasonUnknownServer, "no SmartServer with install code %s is registered", ic)
	}
	switch c := m.Data.(type) {
	case *events.SetCustomerID:
		if !h.customerKnown(ctx, c.CustomerID) {
			return on, events.Reject(events.ReasonUnknownCustomer, "no customer account %s in the License Partner Portal", c.CustomerID)
		}
		return next(events.CustomerIDSetType, &events.CustomerIDSet{InstallCode: ic, CustomerID: c.CustomerID, Previous: ss.customer})

	case *events.DownloadLicenses:
		if ss.customer == "" {
			return on, events.Reject(events.ReasonCustomerNotSet, "SmartServer %s has no Customer ID; set it in Manage Customer Accounts first", ic)
		}
		return next(events.LicensesDownloadedType, &events.LicensesDownloaded{InstallCode: ic, CustomerID: ss.customer})

	case *events.ActivateLicense:
		switch {
		case !events.NeedsLicense(ss.version):
			return on, events.Reject(events.ReasonNotRequired, "SmartServer %s runs %s; license management applies to 3.3 and higher", ic, ss.version)
		case ss.customer == "":
			return on, events.Reject(events.ReasonCustomerNotSet, "SmartServer %s has no Customer ID; set it in Manage Customer Accounts first", ic)
		case ss.downloadedFor != ss.customer:
			return on, events.Reject(events.ReasonNotDownloaded, "download the licenses of customer %s on SmartServer %s first", ss.customer, ic)
		case len(ss.transferring) > 0:
			return on, events.Reject(events.ReasonTransferInFlight, "a transfer to the cloud is in progress on SmartServer %s", ic)
		}
		if _, ok := ss.active[c.LicenseID]; ok {
			return on, events.Reject(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", c.LicenseID, ic)
		}
		return next(events.ActivationRequestedType, &events.ActivationRequested{InstallCode: ic, LicenseID: c.LicenseID, CustomerID: ss.customer})

	case *events.AddDevice:
		id := c.DeviceID
		if id == "" {
			id = events.DeriveID(m.ID(), "device")
		}
		if owner := h.owner(id); owner != "" {
			return on, events.Reject(events.ReasonAlreadyExists, "device %s exists already on SmartServer %s", id, owner)
		}
		return next(events.DeviceAddedType, &events.DeviceAdded{InstallCode: ic, DeviceID: id, Name: c.Name, Protocol: c.Protocol})

	case *events.AddDevices:
		added := make([]events.NewDevice, len(c.Devices))
		seen := make(map[string]bool, len(c.Devices))
		for i, nd := range c.Devices {
			if nd.DeviceID == "" {
				nd.DeviceID = events.DeriveID(m.ID(), fmt.Sprint("device/", i))
			}
			if owner := h.owner(nd.DeviceID); owner != "" || seen[nd.DeviceID] {
				return on, events.Reject(events.ReasonAlreadyExists, "device %s exists already", nd.DeviceID)
			}
			seen[nd.DeviceID] = true
			added[i] = nd
		}
		return next(events.DevicesAddedType, &events.DevicesAdded{InstallCode: ic, Devices: added})

	case *events.ProvisionDevices:
		var ok []string
		var refused []events.Refusal
		seen := make(map[string]bool, len(c.DeviceIDs))
		for _, id := range c.DeviceIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			d, err := h.device(ss, ic, id)
			if err == nil {
				err = provisionable(ss, ic, d)
			}
			if rej := events.AsRejection(err); rej != nil {
				refused = append(refused, events.Refusal{DeviceID: id, Reason: rej.Reason, Message: rej.Message})
				continue
			}
			ok = append(ok, id)
		}
		if len(ok) == 0 {
			return on, &events.Rejection{Reason: refused[0].Reason, Message: fmt.Sprintf("none of the %d devices can be provisioned: %s", len(refused), refused[0].Message)}
		}
		return next(events.DevicesProvisionedType, &events.DevicesProvisioned{InstallCode: ic, DeviceIDs: ok, Refused: refused})

	case *events.RemoveDevice:
		if _, err := h.device(ss, ic, c.DeviceID); err != nil {
			return on, err
		}
		return next(events.DeviceRemovedType, &events.DeviceRemoved{InstallCode: ic, DeviceID: c.DeviceID})

	case *events.ProvisionDevice:
		d, err := h.device(ss, ic, c.DeviceID)
		if err == nil {
			err = provisionable(ss, ic, d)
		}
		if err != nil {
			return on, err
		}
		return next(events.DeviceProvisionedType, &events.DeviceProvisioned{InstallCode: ic, DeviceID: c.DeviceID})

	case *events.DeprovisionDevice:
		d, err := h.device(ss, ic, c.DeviceID)
		if err != nil {
			return on, err
		}
		if d.State != events.Provisioned {
			return on, events.Reject(events.ReasonNotProvisioned, "device %s is not provisioned", c.DeviceID)
		}
		return next(events.DeviceDeprovisionedType, &events.DeviceDeprovisioned{InstallCode: ic, DeviceID: c.DeviceID})

	case *events.SetAutoProvision:
		return next(events.AutoProvisionSetType, &events.AutoProvisionSet{InstallCode: ic, Enabled: c.Enabled})

	case *events.TransferToCloud:
		if len(ss.transferring) > 0 {
			return on, events.Reject(events.ReasonTransferInFlight, "a transfer to the cloud is already in progress on SmartServer %s", ic)
		}
		if len(ss.active) == 0 {
			return on, events.Reject(events.ReasonNoActiveLicenses, "SmartServer %s has no active licenses to transfer", ic)
		}
		lids := make([]string, 0, len(ss.active))
		for lid := range ss.active {
			lids = append(lids, lid)
		}
		slices.Sort(lids)
		return next(events.TransferRequestedType, &events.TransferRequested{InstallCode: ic, LicenseIDs: lids})
	}
	return on, events.Reject(events.ReasonUnknownType, "%s is not a SmartServer command", m.Type())
}

// handleReaction records the cloud's answers on the SmartServer, as the
// reactor hands them over (decoded: what does not decode is no answer).
func (h *Handler) handleReaction(ctx context.Context, d *bus.Delivery) error {
	m := d.Message
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.fold.WaitFor(wctx, d.Seq); err != nil {
		return err
	}
	var ic string
	var decide func(ss smartserver) (bus.Decision, error)
	switch e := m.Data.(type) {
	case *events.LicenseBound:
		ic = e.InstallCode
		decide = func(ss smartserver) (bus.Decision, error) {
			if a, ok := ss.active[e.LicenseID]; ok && a.by == m.ID() {
				return bus.Decision{}, nil
			}
			ev, err := events.New(events.LicenseActivatedType, &events.LicenseActivated{
				InstallCode: ic, LicenseID: e.LicenseID, Kind: e.Kind, Devices: e.Devices, Expires: e.Expires, ActivatedAt: e.BoundAt,
			}, m.Next(events.DeriveID(m.ID(), "activated"), events.DeviceSource+"/"+ic, events.DeviceSource+"/"+ic))
			return bus.Decision{Event: ev, Filter: events.AggregateFilter("smartserver", ic), Expect: ss.seq}, err
		}
	case *events.LicenseReleased:
		ic = e.InstallCode
		decide = func(ss smartserver) (bus.Decision, error) {
			if len(ss.transferring) == 0 || !slices.Contains(ss.transferring, e.LicenseID) {
				return bus.Decision{}, nil
			}
			for _, lid := range ss.transferring {
				if !ss.released[lid] {
					return bus.Decision{}, nil // the last release completes the transfer
				}
			}
			// The transfer request is the cause the CLI correlates with.
			meta := m.Next(events.DeriveID(ss.transferBy, "transferred"), events.DeviceSource+"/"+ic, events.DeviceSource+"/"+ic)
			ev, err := events.New(events.LicensesTransferredType, &events.LicensesTransferred{
				InstallCode: ic, LicenseIDs: ss.transferring, TransferredAt: e.TransferredAt,
			}, meta)
			return bus.Decision{Event: ev, Filter: events.AggregateFilter("smartserver", ic), Expect: ss.seq}, err
		}
	default:
		return nil
	}
	seq, out, err := h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		ss, ok := h.server(ctx, ic)
		if !ok {
			bus.LogMsg(h.log.Warn(), m).Str("install_code", ic).Msg("cloud answered for an unknown SmartServer; ignored")
			return bus.Decision{}, nil
		}
		return decide(ss)
	})
	return h.finish(ctx, m, seq, out, err)
}

// owner returns the SmartServer a device is on, or "".
func (h *Handler) owner(id string) string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st.owners[id]
}

// device finds a device on SmartServer ic, or says why not.
func (h *Handler) device(ss smartserver, ic, id string) (events.Device, error) {
	if i := ss.devices.Index(id); i >= 0 {
		return ss.devices.Devices[i], nil
	}
	if owner := h.owner(id); owner != "" {
		return events.Device{}, events.Reject(events.ReasonOtherServer, "device %s is on SmartServer %s, not %s", id, owner, ic)
	}
	return events.Device{}, events.Reject(events.ReasonUnknownDevice, "no device %s on SmartServer %s", id, ic)
}

// provisionable says why device d of SmartServer ic cannot be provisioned.
func provisionable(ss smartserver, ic string, d events.Device) error {
	switch d.State {
	case events.Unlicensed:
		return events.Reject(events.ReasonUnlicensed,
			"device %s is unlicensed (purple): SmartServer %s licenses %d devices; activate a capacity license first", d.ID, ic, ss.devices.Licensed())
	case events.Provisioned:
		return events.Reject(events.ReasonAlreadyProvisioned, "device %s is provisioned already", d.ID)
	}
	return nil
}
