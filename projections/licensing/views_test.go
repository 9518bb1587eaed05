package licensing

import (
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

func TestStatus(t *testing.T) {
	// Mid-morning, so a day boundary computed from the clock time would show.
	today := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	tests := []struct {
		name    string
		kind    string
		expires string
		today   time.Time
		want    string
	}{
		{"capacity", events.Capacity, "", today, "Active"},
		{"capacity ignores a stray date", events.Capacity, day(-10), today, "Active"},
		{"maintenance in 61 days", events.Maintenance, day(61), today, "Active"},
		{"maintenance in 60 days", events.Maintenance, day(60), today, "Expiring " + day(60)},
		{"maintenance in 1 day", events.Maintenance, day(1), today, "Expiring " + day(1)},
		{"maintenance expires today", events.Maintenance, day(0), today, "Expiring " + day(0)},
		// The expiry day is the last valid day, even at its last second.
		{"expires today late evening", events.Maintenance, day(0), time.Date(2024, 3, 1, 23, 59, 59, 0, time.UTC), "Expiring " + day(0)},
		{"maintenance expired yesterday", events.Maintenance, day(-1), today, "Expired " + day(-1)},
		{"maintenance expired long ago", events.Maintenance, "2020-01-01", today, "Expired 2020-01-01"},
		// The calendar day of today counts, whatever its time zone.
		{"today in another zone", events.Maintenance, "2024-03-01", time.Date(2024, 3, 1, 1, 0, 0, 0, time.FixedZone("UTC+9", 9*3600)), "Expiring 2024-03-01"},
		{"maintenance without date", events.Maintenance, "", today, "Active"},
		{"maintenance with unreadable date", events.Maintenance, "soon", today, "Active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.kind, tt.expires, tt.today); got != tt.want {
				t.Fatalf("Status(%q, %q, %v)=%v, want %v", tt.kind, tt.expires, tt.today, got, tt.want)
			}
		})
	}
}

// Ensure the Description column counts devices in words that agree with
// the number: "1 device", "200 devices".
func TestDescription(t *testing.T) {
	tests := []struct {
		kind    string
		devices int
		expires string
		want    string
	}{
		{events.Capacity, 1, "", "Device capacity, 1 device"},
		{events.Capacity, 200, "", "Device capacity, 200 devices"},
		{events.Maintenance, 1, "2099-01-31", "Maintenance, 1 device, expires 2099-01-31"},
		{events.Maintenance, 1000, "2099-01-31", "Maintenance, 1000 devices, expires 2099-01-31"},
	}
	for _, tt := range tests {
		if got := Description(tt.kind, tt.devices, tt.expires); got != tt.want {
			t.Errorf("Description(%q, %d, %q)=%q, want %q", tt.kind, tt.devices, tt.expires, got, tt.want)
		}
	}
}
