package events

import (
	"maps"
	"slices"
)

// Device protocols DMM manages.
const (
	LON    = "lon"
	BACnet = "bacnet"
	Modbus = "modbus"
)

// DeviceState is the state a DMM device shows in the Devices widget.
type DeviceState string

// Device states and the colours the widget shows them in.
const (
	Unlicensed    DeviceState = "unlicensed"    // purple
	Unprovisioned DeviceState = "unprovisioned" // blue
	Provisioned   DeviceState = "provisioned"   // green
)

// Colour is the widget's colour of a state.
func (s DeviceState) Colour() string {
	switch s {
	case Unlicensed:
		return "purple"
	case Unprovisioned:
		return "blue"
	case Provisioned:
		return "green"
	}
	return ""
}

// Device is one device in a DeviceTable.
type Device struct {
	ID          string      `json:"device_id"`
	Name        string      `json:"name"`
	Protocol    string      `json:"protocol"`
	Provisioned bool        `json:"provisioned"`
	State       DeviceState `json:"state"`
}

// DeviceTable holds the devices of one SmartServer in the order they were
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
// Handlers and projections fold events into a DeviceTable; it is a value
// with no locking of its own.
type DeviceTable struct {
	Devices  []Device `json:"devices"`
	Version  string   `json:"version"`
	Capacity int      `json:"capacity"`
	// Licenses are the active capacity licenses and their device counts;
	// Fold keeps them and Capacity in step.
	Licenses map[string]int `json:"capacity_licenses,omitempty"`
}

// Index returns the position of device id, or -1.
func (t *DeviceTable) Index(id string) int {
	return slices.IndexFunc(t.Devices, func(d Device) bool { return d.ID == id })
}

// Add appends a device (unprovisioned) and re-derives the states.
func (t *DeviceTable) Add(id, name, protocol string) []Device {
	if t.Index(id) >= 0 {
		return nil
	}
	t.Devices = append(t.Devices, Device{ID: id, Name: name, Protocol: internProtocol(protocol)})
	return t.derive()
}

// internProtocol returns the package's own string for a known protocol, so
// that a fleet's tables do not each hold a decoded copy of "lon".
func internProtocol(p string) string {
	switch p {
	case LON:
		return LON
	case BACnet:
		return BACnet
	case Modbus:
		return Modbus
	}
	return p
}

// Remove drops a device, freeing its slot for the next one.
func (t *DeviceTable) Remove(id string) []Device {
	i := t.Index(id)
	if i < 0 {
		return nil
	}
	old := t.Devices[i]
	t.Devices = slices.Delete(t.Devices, i, i+1)
	old.State = ""
	return append(t.derive(), old)
}

// SetProvisioned marks a device provisioned or not.
func (t *DeviceTable) SetProvisioned(id string, p bool) []Device {
	i := t.Index(id)
	if i < 0 {
		return nil
	}
	t.Devices[i].Provisioned = p
	return t.derive()
}

// SetLicensing sets the firmware version and the licensed capacity.
func (t *DeviceTable) SetLicensing(version string, capacity int) []Device {
	t.Version, t.Capacity = version, capacity
	return t.derive()
}

// DeprovisionAll deprovisions every device (licenses went to the cloud).
func (t *DeviceTable) DeprovisionAll() []Device {
	for i := range t.Devices {
		t.Devices[i].Provisioned = false
	}
	return t.derive()
}

// Licensed is how many devices, from the first added, are licensed.
func (t *DeviceTable) Licensed() int {
	if !NeedsLicense(t.Version) {
		return len(t.Devices)
	}
	return min(t.Capacity, len(t.Devices))
}

// derive recomputes every state and returns the devices whose state
// changed (a removed device is returned by Remove with an empty state).
func (t *DeviceTable) derive() []Device {
	licensed := t.Licensed()
	var changed []Device
	for i := range t.Devices {
		d := &t.Devices[i]
		s := Unlicensed
		if i < licensed {
			s = Unprovisioned
			if d.Provisioned {
				s = Provisioned
			}
		} else {
			d.Provisioned = false
		}
		if d.State != s {
			d.State = s
			changed = append(changed, *d)
		}
	}
	return changed
}

// Clone copies the table.
func (t *DeviceTable) Clone() DeviceTable {
	c := *t
	c.Devices = slices.Clone(t.Devices)
	c.Licenses = maps.Clone(t.Licenses)
	return c
}

// AddMany appends devices in order and derives the states once. Folds that
// decide on colours only (handlers) pass idsOnly and keep no names: at
// fleet scale that is tens of MB per fold.
func (t *DeviceTable) AddMany(ds []NewDevice, idsOnly bool) []Device {
	// Room for the batch at once: growing by appends would leave up to
	// half the array spare in each of a fleet's tables.
	t.Devices = slices.Grow(t.Devices, len(ds))
	for _, d := range ds {
		if t.Index(d.DeviceID) < 0 {
			dev := Device{ID: d.DeviceID}
			if !idsOnly {
				dev.Name, dev.Protocol = d.Name, internProtocol(d.Protocol)
			}
			t.Devices = append(t.Devices, dev)
		}
	}
	return t.derive()
}

// ProvisionMany marks devices provisioned and derives the states once.
func (t *DeviceTable) ProvisionMany(ids []string) []Device {
	for _, id := range ids {
		if i := t.Index(id); i >= 0 {
			t.Devices[i].Provisioned = true
		}
	}
	return t.derive()
}

// Fold applies one SmartServer event to the table — the only place that
// knows which events change colours — and returns the devices whose state
// changed. Folds that decide on colours only pass idsOnly and keep no
// device names. The table tracks the active capacity licenses itself.
func (t *DeviceTable) Fold(d Data, idsOnly bool) []Device {
	switch e := d.(type) {
	case *Registered:
		return t.SetLicensing(e.Version, t.Capacity)
	case *LicenseActivated:
		if e.Kind != Capacity {
			return nil
		}
		if t.Licenses == nil {
			t.Licenses = map[string]int{}
		}
		t.Licenses[e.LicenseID] = e.Devices
		return t.SetLicensing(t.Version, t.licensed())
	case *LicensesTransferred:
		for _, lid := range e.LicenseIDs {
			delete(t.Licenses, lid)
		}
		// Licenses gone to the cloud deprovision every device: after the
		// next activation they are blue, not green.
		return append(t.DeprovisionAll(), t.SetLicensing(t.Version, t.licensed())...)
	case *DeviceAdded:
		if idsOnly {
			return t.Add(e.DeviceID, "", "")
		}
		return t.Add(e.DeviceID, e.Name, e.Protocol)
	case *DevicesAdded:
		return t.AddMany(e.Devices, idsOnly)
	case *DeviceRemoved:
		return t.Remove(e.DeviceID)
	case *DeviceProvisioned:
		return t.SetProvisioned(e.DeviceID, true)
	case *DevicesProvisioned:
		return t.ProvisionMany(e.DeviceIDs)
	case *DeviceDeprovisioned:
		return t.SetProvisioned(e.DeviceID, false)
	}
	return nil
}

func (t *DeviceTable) licensed() int {
	n := 0
	for _, d := range t.Licenses {
		n += d
	}
	return n
}
