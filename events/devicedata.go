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
// without one of these per device (see DeviceTable).
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
