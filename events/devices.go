package events

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

// Device is one DMM device as the colour rule (smartserver.Devices) derives it.
type Device struct {
	ID          string      `json:"device_id"`
	Name        string      `json:"name"`
	Protocol    string      `json:"protocol"`
	Provisioned bool        `json:"provisioned"`
	State       DeviceState `json:"state"`
}
