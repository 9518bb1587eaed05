package main

import (
	"github.com/licensebus/licensebus/internal/client"
)

// smartServer answers QuerySmartServer: one SmartServer's account row and
// devices, without walking the fleet.
func (s *Server) smartServer(p client.Params) (client.SmartServer, error) {
	acc, err := s.lic.Account(p.InstallCode)
	if err != nil {
		return client.SmartServer{}, err
	}
	return client.SmartServer{Account: acc, Devices: s.dev.Summaries(p.InstallCode)[0]}, nil
}

// fleetPage answers QueryFleetPage: a page of SmartServers that match the
// search, and the fleet's totals.
func (s *Server) fleetPage(p client.Params) client.FleetPage {
	limit := p.Limit
	if limit <= 0 || limit > client.MaxPage {
		limit = 50
	}
	rows, total := s.lic.AccountPage(p.Search, p.Offset, limit)
	ics := make([]string, len(rows))
	for i, r := range rows {
		ics[i] = r.InstallCode
	}
	sums := s.dev.Summaries(ics...)
	page := client.FleetPage{Search: p.Search, Offset: max(p.Offset, 0), Limit: limit, Total: total,
		SmartServers: make([]client.SmartServer, len(rows)), Devices: s.dev.Totals()}
	for _, n := range s.lic.Counts() {
		page.Licenses = append(page.Licenses, client.LicenseCount{Kind: n.Kind, State: n.State, Licenses: n.N})
	}
	for i, r := range rows {
		page.SmartServers[i] = client.SmartServer{Account: r, Devices: sums[i]}
	}
	return page
}
