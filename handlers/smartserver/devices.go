package smartserver

import (
	"slices"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/small"
)

// Devices holds the devices of one SmartServer in the order they were
// added, and derives their states with the colour rule:
//
//   - capacity is the sum of the device counts of the active capacity
//     licenses; a SmartServer below 3.3 needs none and licenses every device;
//   - the first capacity devices in order of addition are licensed, the
//     rest unlicensed (purple) — deterministic, so every replica and every
//     rebuild derives the same colours;
//   - a licensed device is provisioned (green) or unprovisioned (blue);
//   - an unlicensed device is never provisioned: it loses provisioning, and
//     needs provisioning again once licensed (the manual's transfer → blue).
//
// The device side, the provisioner and the devices view fold events into
// a Devices (Fold); it is a value with no locking of its own. Folds that
// decide on colours only keep ids (Fold's idsOnly): their table is ids,
// not Devices, 24 bytes a device where an events.Device takes 72 — at fleet
// scale, tens of MB per fold. Len and At read either.
type Devices struct {
	Devices  []events.Device `json:"devices"`
	Version  string          `json:"version"`
	Capacity int             `json:"capacity"`
	// Licenses are the active capacity licenses and their device counts;
	// Fold keeps them and Capacity in step.
	Licenses small.Map[int] `json:"capacity_licenses,omitempty"`
	// ids is the table of a fold that keeps ids only, compact says it is.
	ids     []idDevice
	compact bool
}

// idDevice is a device of a table that keeps ids only.
type idDevice struct {
	id          string
	state       uint8 // index in deviceStates
	provisioned bool
}

var deviceStates = [...]events.DeviceState{"", events.Unlicensed, events.Unprovisioned, events.Provisioned}

func stateIndex(s events.DeviceState) uint8 {
	for i, v := range deviceStates {
		if v == s {
			return uint8(i)
		}
	}
	return 0
}

// Len is the number of devices.
func (t *Devices) Len() int {
	if t.compact {
		return len(t.ids)
	}
	return len(t.Devices)
}

// At returns device i in order of addition (without name and protocol in
// a table that keeps ids only).
func (t *Devices) At(i int) events.Device {
	if t.compact {
		d := &t.ids[i]
		return events.Device{ID: d.id, State: deviceStates[d.state], Provisioned: d.provisioned}
	}
	return t.Devices[i]
}

func (t *Devices) id(i int) string {
	if t.compact {
		return t.ids[i].id
	}
	return t.Devices[i].ID
}

func (t *Devices) setProvisioned(i int, p bool) {
	if t.compact {
		t.ids[i].provisioned = p
	} else {
		t.Devices[i].Provisioned = p
	}
}

// grow makes room for n more devices.
func (t *Devices) grow(n int) {
	if t.compact {
		t.ids = slices.Grow(t.ids, n)
	} else {
		t.Devices = slices.Grow(t.Devices, n)
	}
}

func (t *Devices) add(id, name, protocol string) {
	if t.compact {
		t.ids = append(t.ids, idDevice{id: id})
	} else {
		t.Devices = append(t.Devices, events.Device{ID: id, Name: name, Protocol: internProtocol(protocol)})
	}
}

// Index returns the position of device id, or -1.
func (t *Devices) Index(id string) int {
	if t.compact {
		return slices.IndexFunc(t.ids, func(d idDevice) bool { return d.id == id })
	}
	return slices.IndexFunc(t.Devices, func(d events.Device) bool { return d.ID == id })
}

// Add appends a device (unprovisioned) and re-derives the states.
func (t *Devices) Add(id, name, protocol string) []events.Device {
	if t.Index(id) >= 0 {
		return nil
	}
	t.add(id, name, protocol)
	return t.derive()
}

// internProtocol returns the package's own string for a known protocol, so
// that a fleet's tables do not each hold a decoded copy of "lon".
func internProtocol(p string) string {
	switch p {
	case events.LON:
		return events.LON
	case events.BACnet:
		return events.BACnet
	case events.Modbus:
		return events.Modbus
	}
	return p
}

// Remove drops a device, freeing its slot for the next one.
func (t *Devices) Remove(id string) []events.Device {
	i := t.Index(id)
	if i < 0 {
		return nil
	}
	old := t.At(i)
	if t.compact {
		t.ids = slices.Delete(t.ids, i, i+1)
	} else {
		t.Devices = slices.Delete(t.Devices, i, i+1)
	}
	old.State = ""
	return append(t.derive(), old)
}

// SetProvisioned marks a device provisioned or not.
func (t *Devices) SetProvisioned(id string, p bool) []events.Device {
	i := t.Index(id)
	if i < 0 {
		return nil
	}
	t.setProvisioned(i, p)
	return t.derive()
}

// SetLicensing sets the firmware version and the licensed capacity.
func (t *Devices) SetLicensing(version string, capacity int) []events.Device {
	t.Version, t.Capacity = version, capacity
	return t.derive()
}

// DeprovisionAll deprovisions every device (licenses went to the cloud).
func (t *Devices) DeprovisionAll() []events.Device {
	for i := range t.Len() {
		t.setProvisioned(i, false)
	}
	return t.derive()
}

// Licensed is how many devices, from the first added, are licensed.
func (t *Devices) Licensed() int {
	if !events.NeedsLicense(t.Version) {
		return t.Len()
	}
	return min(t.Capacity, t.Len())
}

// derive recomputes every state and returns the devices whose state
// changed (a removed device is returned by Remove with an empty state).
func (t *Devices) derive() []events.Device {
	licensed := t.Licensed()
	var changed []events.Device
	for i := range t.Len() {
		// Read in place: this runs for every device on every event that
		// touches the table, and most devices keep their state.
		var cur events.DeviceState
		var provisioned bool
		if t.compact {
			cur, provisioned = deviceStates[t.ids[i].state], t.ids[i].provisioned
		} else {
			cur, provisioned = t.Devices[i].State, t.Devices[i].Provisioned
		}
		s := events.Unlicensed
		if i < licensed {
			s = events.Unprovisioned
			if provisioned {
				s = events.Provisioned
			}
		} else if provisioned {
			t.setProvisioned(i, false)
		}
		if cur != s {
			if t.compact {
				t.ids[i].state = stateIndex(s)
			} else {
				t.Devices[i].State = s
			}
			changed = append(changed, t.At(i))
		}
	}
	return changed
}

// Clone copies the table.
func (t *Devices) Clone() Devices {
	c := *t
	c.Devices = slices.Clone(t.Devices)
	c.ids = slices.Clone(t.ids)
	c.Licenses = t.Licenses.Clone()
	return c
}

// AddMany appends devices in order and derives the states once.
func (t *Devices) AddMany(ds []events.NewDevice) []events.Device {
	// Room for the batch at once: growing by appends would leave up to
	// half the array spare in each of a fleet's tables.
	t.grow(len(ds))
	for _, d := range ds {
		if t.Index(d.DeviceID) < 0 {
			t.add(d.DeviceID, d.Name, d.Protocol)
		}
	}
	return t.derive()
}

// ProvisionMany marks devices provisioned and derives the states once.
func (t *Devices) ProvisionMany(ids []string) []events.Device {
	for _, id := range ids {
		if i := t.Index(id); i >= 0 {
			t.setProvisioned(i, true)
		}
	}
	return t.derive()
}

// Fold applies one SmartServer event to the table — the only place that
// knows which events change colours — and returns the devices whose state
// changed. Folds that decide on colours only pass idsOnly and keep no
// device names. The table tracks the active capacity licenses itself.
func (t *Devices) Fold(d events.Data, idsOnly bool) []events.Device {
	if t.Len() == 0 {
		t.compact = idsOnly
	}
	switch e := d.(type) {
	case *events.Registered:
		return t.SetLicensing(e.Version, t.Capacity)
	case *events.VersionSet:
		return t.SetLicensing(e.Version, t.Capacity)
	case *events.LicenseActivated:
		if e.Kind != events.Capacity {
			return nil
		}
		t.Licenses.Set(e.LicenseID, e.Devices)
		return t.SetLicensing(t.Version, t.licensed())
	case *events.LicensesImported:
		for _, l := range e.Licenses {
			if l.Kind == events.Capacity {
				t.Licenses.Set(l.LicenseID, l.Devices)
			}
		}
		return t.SetLicensing(t.Version, t.licensed())
	case *events.LicensesTransferred:
		for _, lid := range e.LicenseIDs {
			t.Licenses.Delete(lid)
		}
		// Licenses gone to the cloud deprovision every device: after the
		// next activation they are blue, not green.
		return append(t.DeprovisionAll(), t.SetLicensing(t.Version, t.licensed())...)
	case *events.DeviceAdded:
		return t.Add(e.DeviceID, e.Name, e.Protocol)
	case *events.DevicesAdded:
		return t.AddMany(e.Devices)
	case *events.DeviceRemoved:
		return t.Remove(e.DeviceID)
	case *events.DeviceProvisioned:
		return t.SetProvisioned(e.DeviceID, true)
	case *events.DevicesProvisioned:
		return t.ProvisionMany(e.DeviceIDs)
	case *events.DeviceDeprovisioned:
		return t.SetProvisioned(e.DeviceID, false)
	}
	return nil
}

func (t *Devices) licensed() int {
	n := 0
	for _, e := range t.Licenses {
		n += e.Value
	}
	return n
}
