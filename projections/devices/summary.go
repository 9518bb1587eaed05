package devices

// Summaries returns the device summary of each SmartServer in ics, in
// order; a SmartServer without devices or capacity has a zero summary
// with its install code.
func (m *Model) Summaries(ics ...string) []Server {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Server, len(ics))
	for i, ic := range ics {
		if s := m.servers[ic]; s != nil {
			out[i] = s.Server
			out[i].Licenses = nil
		}
		out[i].InstallCode = ic
	}
	return out
}
