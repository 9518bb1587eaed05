package audit

import (
	"slices"
	"strings"
	"time"
)

// Filter selects entries: every condition it sets must hold.
type Filter struct {
	LicenseID   string // the entry names this license (license_id or license_ids)
	InstallCode string // the entry names this SmartServer
	CustomerID  string // the entry names this customer
	// Types are CloudEvent types, each whole or a tail of it after a dot
	// (license_activated, smartserver.license_activated); one must match.
	Types []string
	Kinds []Kind // one must match
	// Since: the source message was stored at or after it.
	Since time.Time
}

// Match says e passes f.
func (f *Filter) Match(e *Entry) bool {
	if f.LicenseID != "" && e.LicenseID != f.LicenseID && !slices.Contains(e.LicenseIDs, f.LicenseID) {
		return false
	}
	if f.InstallCode != "" && e.InstallCode != f.InstallCode {
		return false
	}
	if f.CustomerID != "" && e.CustomerID != f.CustomerID {
		return false
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, e.Kind) {
		return false
	}
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool { return e.Type == t || strings.HasSuffix(e.Type, "."+t) }) {
		return false
	}
	if !f.Since.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, e.StreamTime); err == nil && t.Before(f.Since) {
			return false
		}
	}
	return true
}
