package licensing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/projections/licensing"
)

// Ensure the outcomes view keeps an outcome for its horizon, names it to
// the runner once it is past, skips outcomes already past it in a replay,
// and records which command an outcome is of.
func TestOutcomesHorizon(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	o := licensing.OutcomesWithin(24*time.Hour, func() time.Time { return now })
	if o.TTL() != 24*time.Hour {
		t.Fatalf("TTL=%v, want the horizon", o.TTL())
	}
	created := func(at time.Time) (string, *events.Message) {
		id := uuid.NewString()
		cmd := &events.CreateCustomer{Name: "P"}
		m, err := events.New(events.CustomerCreatedType, &events.CustomerCreated{CustomerID: uuid.NewString(), Name: "P"},
			events.Meta{ID: uuid.NewString(), Source: "/t", CorrelationID: id, CausationID: id, Time: at,
				CommandDigest: events.CommandDigest(events.CreateCustomerType, cmd)})
		if err != nil {
			t.Fatal(err)
		}
		return id, m
	}
	keys := func() []string {
		var ks []string
		o.EachChange(func(k string, _ []byte) { ks = append(ks, k) })
		return ks
	}
	expired := func() []string {
		var ks []string
		o.Expired(func(k string) { ks = append(ks, k) })
		return ks
	}

	first, m := created(t0)
	o.Apply(1, m)
	if got := keys(); !slices.Equal(got, []string{first}) {
		t.Fatalf("written %v, want %v", got, []string{first})
	}
	// A day and a half on, a new outcome starts a generation and the
	// first is past the horizon.
	now = t0.Add(36 * time.Hour)
	_, m = created(now)
	o.Apply(2, m)
	keys()
	if got := expired(); !slices.Equal(got, []string{first}) {
		t.Fatalf("expired %v, want %v", got, []string{first})
	}
	// A replay skips what is past the horizon.
	o.Reset()
	_, m = created(t0)
	o.Apply(1, m)
	if got := keys(); len(got) != 0 {
		t.Fatalf("replay wrote %v, want nothing past the horizon", got)
	}
}
