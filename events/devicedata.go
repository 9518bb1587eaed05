package events

// AddDevice adds a LON, BACnet or Modbus device to a SmartServer's DMM.
// DeviceID may be empty: it is then derived from the command id.
type AddDevice struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id,omitempty"`
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
}

// RemoveDevice removes a device, freeing its license slot.
type RemoveDevice struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// ProvisionDevice provisions a blue (licensed, unprovisioned) device.
type ProvisionDevice struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// DeprovisionDevice takes a green device back to blue.
type DeprovisionDevice struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// SetAutoProvision turns reactive provisioning on or off for a SmartServer.
type SetAutoProvision struct {
	InstallCode string `json:"install_code"`
	Enabled     bool   `json:"enabled"`
}

// DeviceAdded: a device is in the SmartServer's DMM, after every device
// added before it.
type DeviceAdded struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
}

// DeviceRemoved: the device is gone and its slot free.
type DeviceRemoved struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// DeviceProvisioned: the device is provisioned (green).
type DeviceProvisioned struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// DeviceDeprovisioned: the device is no longer provisioned. Licenses
// transferred to the cloud deprovision every device of the SmartServer
// without one of these per device (see smartserver.Devices).
type DeviceDeprovisioned struct {
	InstallCode string `json:"install_code"`
	DeviceID    string `json:"device_id"`
}

// AutoProvisionSet: the SmartServer's reactive provisioning policy.
type AutoProvisionSet struct {
	InstallCode string `json:"install_code"`
	Enabled     bool   `json:"enabled"`
}

func checkProtocol(p string) error {
	switch p {
	case LON, BACnet, Modbus:
		return nil
	}
	return Reject(ReasonInvalidData, "protocol must be lon, bacnet or modbus, got %q", p)
}

func checkDevice(ic, id string) error {
	if err := checkInstallCode(ic); err != nil {
		return err
	}
	return checkUUID("device_id", id)
}

// Validate implements Data.
func (d *AddDevice) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if err := checkOptionalUUID("device_id", d.DeviceID); err != nil {
		return err
	}
	return checkProtocol(d.Protocol)
}

// Validate implements Data.
func (d *RemoveDevice) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *ProvisionDevice) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *DeprovisionDevice) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *SetAutoProvision) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *DeviceAdded) Validate() error {
	if err := checkDevice(d.InstallCode, d.DeviceID); err != nil {
		return err
	}
	return checkProtocol(d.Protocol)
}

// Validate implements Data.
func (d *DeviceRemoved) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *DeviceProvisioned) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *DeviceDeprovisioned) Validate() error { return checkDevice(d.InstallCode, d.DeviceID) }

// Validate implements Data.
func (d *AutoProvisionSet) Validate() error { return checkInstallCode(d.InstallCode) }

// Key implements Data.
func (d *AddDevice) Key() string           { return d.InstallCode }
func (d *RemoveDevice) Key() string        { return d.InstallCode }
func (d *ProvisionDevice) Key() string     { return d.InstallCode }
func (d *DeprovisionDevice) Key() string   { return d.InstallCode }
func (d *SetAutoProvision) Key() string    { return d.InstallCode }
func (d *DeviceAdded) Key() string         { return d.InstallCode }
func (d *DeviceRemoved) Key() string       { return d.InstallCode }
func (d *DeviceProvisioned) Key() string   { return d.InstallCode }
func (d *DeviceDeprovisioned) Key() string { return d.InstallCode }
func (d *AutoProvisionSet) Key() string    { return d.InstallCode }

// MaxDeviceBatch bounds the devices of one batch command, keeping events
// well under the NATS payload limit.
const MaxDeviceBatch = 1000

// NewDevice is one device of an AddDevices batch.
type NewDevice struct {
	DeviceID string `json:"device_id,omitempty"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
}

// AddDevices adds several devices at once, in the order given (a DMM
// discovery). Empty device ids are derived from the command id and the
// position.
type AddDevices struct {
	InstallCode string      `json:"install_code"`
	Devices     []NewDevice `json:"devices"`
}

// DevicesAdded: the devices are in the DMM, in this order, after every
// device added before them.
type DevicesAdded struct {
	InstallCode string      `json:"install_code"`
	Devices     []NewDevice `json:"devices"`
}

// ProvisionDevices provisions several blue devices at once.
type ProvisionDevices struct {
	InstallCode string   `json:"install_code"`
	DeviceIDs   []string `json:"device_ids"`
}

// Refusal is why one device of a batch was not provisioned.
type Refusal struct {
	DeviceID string `json:"device_id"`
	Reason   Reason `json:"reason"`
	Message  string `json:"message"`
}

// DevicesProvisioned: DeviceIDs are provisioned (green); Refused lists the
// devices of the command that were not, and why. A command none of whose
// devices could be provisioned is rejected instead.
type DevicesProvisioned struct {
	InstallCode string    `json:"install_code"`
	DeviceIDs   []string  `json:"device_ids"`
	Refused     []Refusal `json:"refused,omitempty"`
}

func checkBatch(n int) error {
	if n == 0 {
		return Reject(ReasonInvalidData, "a batch needs at least one device")
	}
	if n > MaxDeviceBatch {
		return Reject(ReasonInvalidData, "a batch holds at most %d devices, got %d", MaxDeviceBatch, n)
	}
	return nil
}

// Validate implements Data.
func (d *AddDevices) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if err := checkBatch(len(d.Devices)); err != nil {
		return err
	}
	for _, nd := range d.Devices {
		if err := checkOptionalUUID("device_id", nd.DeviceID); err != nil {
			return err
		}
		if err := checkProtocol(nd.Protocol); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements Data.
func (d *DevicesAdded) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	for _, nd := range d.Devices {
		if err := checkUUID("device_id", nd.DeviceID); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements Data.
func (d *ProvisionDevices) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if err := checkBatch(len(d.DeviceIDs)); err != nil {
		return err
	}
	for _, id := range d.DeviceIDs {
		if err := checkUUID("device_id", id); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements Data.
func (d *DevicesProvisioned) Validate() error { return checkInstallCode(d.InstallCode) }

// Key implements Data.
func (d *AddDevices) Key() string         { return d.InstallCode }
func (d *DevicesAdded) Key() string       { return d.InstallCode }
func (d *ProvisionDevices) Key() string   { return d.InstallCode }
func (d *DevicesProvisioned) Key() string { return d.InstallCode }
