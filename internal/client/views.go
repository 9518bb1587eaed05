package client

import (
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
)

// Queries of the web console: one SmartServer at a time, and the fleet a
// page at a time, so that a page costs the same at 10 or 10,000
// SmartServers.
const (
	QuerySmartServer = "smartserver" // Params.InstallCode → SmartServer
	QueryFleetPage   = "fleet_page"  // Params.Search, Offset, Limit → FleetPage
)

// MaxPage bounds Params.Limit of a page query.
const MaxPage = 500

// SmartServer is one SmartServer's account row and device summary.
type SmartServer struct {
	Account licensing.AccountRow `json:"account"`
	Devices devices.Server       `json:"devices"`
}

// FleetPage is one page of the fleet: the SmartServers that match the
// search, with their devices, and the fleet's totals.
type FleetPage struct {
	Search       string         `json:"search"`
	Offset       int            `json:"offset"`
	Limit        int            `json:"limit"`
	Total        int            `json:"total"` // SmartServers that match
	SmartServers []SmartServer  `json:"smartservers"`
	Devices      devices.Counts `json:"devices"`  // the whole fleet's, per colour
	Licenses     []LicenseCount `json:"licenses"` // the inventory's, per kind and state
}

// LicenseCount is how many licenses of a kind are in a state.
type LicenseCount struct {
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Licenses int    `json:"licenses"`
}
