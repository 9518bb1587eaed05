package licensing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Account is the Manage Customer Accounts row of SmartServer ic.
func (m *Model) Account(ic string) (AccountRow, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.servers[ic]
	if s == nil {
		return AccountRow{}, fmt.Errorf("%w: %s", ErrUnknownServer, ic)
	}
	return m.account(s), nil
}

// account renders s; the caller holds the lock.
func (m *Model) account(s *SmartServer) AccountRow {
	r := AccountRow{SegmentController: s.Name, InstallCode: s.InstallCode, CustomerID: s.CustomerID, Version: s.Version}
	if c := m.customers[s.CustomerID]; c != nil {
		r.CustomerName = c.Name
	}
	return r
}

// AccountPage is one page of the Manage Customer Accounts view, for a
// console that pages through a fleet: the SmartServers whose install code,
// segment controller, Customer ID or customer name contains search (any
// case; "" matches all), by install code, limit of them from offset; and
// how many match in all. At 10,000 SmartServers it costs about a
// millisecond, so it is computed on each call rather than kept sorted.
func (m *Model) AccountPage(search string, offset, limit int) (rows []AccountRow, total int) {
	search = strings.ToLower(strings.TrimSpace(search))
	m.mu.RLock()
	match := make([]*SmartServer, 0, len(m.servers))
	for _, s := range m.servers {
		if search == "" || m.matches(s, search) {
			match = append(match, s)
		}
	}
	slices.SortFunc(match, func(a, b *SmartServer) int { return cmp.Compare(a.InstallCode, b.InstallCode) })
	total = len(match)
	offset = min(max(offset, 0), total)
	end := min(offset+max(limit, 0), total)
	rows = make([]AccountRow, 0, end-offset)
	for _, s := range match[offset:end] {
		rows = append(rows, m.account(s))
	}
	m.mu.RUnlock()
	return rows, total
}

func (m *Model) matches(s *SmartServer, search string) bool {
	has := func(v string) bool { return v != "" && strings.Contains(strings.ToLower(v), search) }
	if has(s.InstallCode) || has(s.Name) || has(s.CustomerID) {
		return true
	}
	c := m.customers[s.CustomerID]
	return c != nil && has(c.Name)
}
