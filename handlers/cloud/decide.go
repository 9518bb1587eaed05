package cloud

import (
	"context"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
)

func (h *Handler) createCustomer(ctx context.Context, m *events.Message, c *events.CreateCustomer) (uint64, *events.Message, error) {
	id := c.CustomerID
	if id == "" {
		id = events.DeriveID(m.ID(), "customer")
	}
	return h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		h.mu.RLock()
		existing := h.st.customers[id]
		h.mu.RUnlock()
		if existing != nil {
			return bus.Decision{Filter: events.AggregateFilter("customer", id), Expect: existing.seq},
				events.Reject(events.ReasonAlreadyExists, "customer %s exists already (%s)", id, existing.name)
		}
		ev, err := events.New(events.CustomerCreatedType, &events.CustomerCreated{CustomerID: id, Name: c.Name},
			m.Next(events.DeriveID(m.ID(), "created"), events.CloudSource, m.Actor()))
		return bus.Decision{Event: ev, Filter: events.AggregateFilter("customer", id), Expect: 0}, err
	})
}

func (h *Handler) addLicense(ctx context.Context, m *events.Message, c *events.AddLicense) (uint64, *events.Message, error) {
	id := c.LicenseID
	if id == "" {
		id = events.DeriveID(m.ID(), "license")
	}
	h.ensureKnown(ctx, func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.st.customers[c.CustomerID] != nil
	})
	return h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		h.mu.RLock()
		cust, existing := h.st.customers[c.CustomerID], h.st.licenses[id]
		h.mu.RUnlock()
		if cust == nil {
			return bus.Decision{Filter: events.AggregateFilter("customer", c.CustomerID)},
				events.Reject(events.ReasonUnknownCustomer, "no customer account %s", c.CustomerID)
		}
		if existing != nil {
			return bus.Decision{Filter: events.AggregateFilter("license", id), Expect: existing.seq},
				events.Reject(events.ReasonAlreadyExists, "license %s exists already", id)
		}
		ev, err := events.New(events.LicenseAddedType, &events.LicenseAdded{
			LicenseID: id, CustomerID: c.CustomerID, Kind: c.Kind, Devices: c.Devices, Expires: c.Expires, AddedAt: now(h.now),
		}, m.Next(events.DeriveID(m.ID(), "added"), events.CloudSource, m.Actor()))
		return bus.Decision{Event: ev, Filter: events.AggregateFilter("license", id), Expect: 0}, err
	})
}

// handleReaction answers the device side's requests, as the reactor hands
// them over (decoded: what does not decode is no request).
func (h *Handler) handleReaction(ctx context.Context, d *bus.Delivery) error {
	m := d.Message
	// The request must be in the fold before deciding on it, or a later
	// redelivery check could miss our own answer.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.fold.WaitFor(wctx, d.Seq); err != nil {
		return err
	}
	switch r := m.Data.(type) {
	case *events.ActivationRequested:
		if h.handled(m.ID()) {
			return nil
		}
		seq, out, err := h.bind(ctx, m, r)
		return h.finish(ctx, m, seq, out, err)
	case *events.TransferRequested:
		for _, lid := range r.LicenseIDs {
			seq, out, err := h.release(ctx, m, r.InstallCode, lid)
			if err := h.finish(ctx, m, seq, out, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Handler) bind(ctx context.Context, m *events.Message, r *events.ActivationRequested) (uint64, *events.Message, error) {
	h.ensureKnown(ctx, func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.st.licenses[r.LicenseID] != nil
	})
	return h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		h.mu.RLock()
		l := h.st.licenses[r.LicenseID]
		var snap license
		if l != nil {
			snap = *l
		}
		h.mu.RUnlock()
		on := bus.Decision{Filter: events.AggregateFilter("license", r.LicenseID), Expect: snap.seq}
		switch {
		case l == nil:
			return on, events.Reject(events.ReasonUnknownLicense, "no license %s in the cloud", r.LicenseID)
		case snap.boundBy == m.ID():
			return bus.Decision{}, nil // answered before a redelivery
		case snap.customer != r.CustomerID:
			return on, events.Reject(events.ReasonCustomerMismatch,
				"license %s belongs to another customer than %s, the Customer ID of SmartServer %s", r.LicenseID, r.CustomerID, r.InstallCode)
		case snap.boundTo == r.InstallCode:
			return on, events.Reject(events.ReasonAlreadyActive, "license %s is already active on SmartServer %s", r.LicenseID, r.InstallCode)
		case snap.boundTo != "":
			return on, events.Reject(events.ReasonAlreadyActive,
				"license %s is active on another SmartServer; transfer it to the cloud there first", r.LicenseID)
		}
		ev, err := events.New(events.LicenseBoundType, &events.LicenseBound{
			LicenseID: r.LicenseID, CustomerID: snap.customer, InstallCode: r.InstallCode,
			Kind: snap.kind, Devices: snap.devices, Expires: snap.expires, BoundAt: now(h.now),
		}, m.Next(events.DeriveID(m.ID(), "bound"), events.CloudSource, events.CloudSource))
		return bus.Decision{Event: ev, Filter: events.AggregateFilter("license", r.LicenseID), Expect: snap.seq}, err
	})
}

// release gives one license back to the cloud. It is idempotent by state:
// a license no longer bound to the SmartServer is skipped.
func (h *Handler) release(ctx context.Context, m *events.Message, ic, lid string) (uint64, *events.Message, error) {
	return h.app.Execute(ctx, h.fold, func() (bus.Decision, error) {
		h.mu.RLock()
		l := h.st.licenses[lid]
		var snap license
		if l != nil {
			snap = *l
		}
		h.mu.RUnlock()
		if l == nil || snap.boundTo != ic {
			return bus.Decision{}, nil
		}
		ev, err := events.New(events.LicenseReleasedType, &events.LicenseReleased{
			LicenseID: lid, InstallCode: ic, TransferredAt: now(h.now),
		}, m.Next(events.DeriveID(m.ID(), "released/"+lid), events.CloudSource, events.CloudSource))
		return bus.Decision{Event: ev, Filter: events.AggregateFilter("license", lid), Expect: snap.seq}, err
	})
}
