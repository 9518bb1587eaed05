package provisioning_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/provisioning"
	"github.com/licensebus/licensebus/handlers/spec"
)

const ic = "IC-0001"

func dev(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

var n int

func ev(t events.Type, d events.Data) *events.Message {
	n++
	return spec.Event(t, d, fmt.Sprint("e-", n), "")
}
func registered() *events.Message {
	return ev(events.RegisteredType, &events.Registered{InstallCode: ic, Name: "SC", Version: "3.4"})
}
func auto(on bool) *events.Message {
	return ev(events.AutoProvisionSetType, &events.AutoProvisionSet{InstallCode: ic, Enabled: on})
}
func activated(devices int) *events.Message {
	return ev(events.LicenseActivatedType, &events.LicenseActivated{InstallCode: ic, LicenseID: "c0ffee00-1111-4222-8333-444455556666", Kind: events.Capacity, Devices: devices})
}
func added(from, to int) *events.Message {
	var ds []events.NewDevice
	for i := from; i < to; i++ {
		ds = append(ds, events.NewDevice{DeviceID: dev(i), Name: "d", Protocol: events.LON})
	}
	return ev(events.DevicesAddedType, &events.DevicesAdded{InstallCode: ic, Devices: ds})
}
func provisioned(ids ...string) *events.Message {
	return ev(events.DevicesProvisionedType, &events.DevicesProvisioned{InstallCode: ic, DeviceIDs: ids})
}

// What reactive provisioning sends, as given/when/then: given a
// SmartServer's events, when a trigger arrives, then these devices.
func TestSpec(t *testing.T) {
	tests := []struct {
		name  string
		given []*events.Message
		sent  []string // devices with a command on its way
		when  *events.Message
		then  []string
	}{
		{"policy off: nothing", []*events.Message{registered(), activated(2)}, nil, added(0, 2), nil},
		{"devices added on a licensed SmartServer are provisioned", []*events.Message{registered(), auto(true), activated(2)}, nil, added(0, 2), []string{dev(0), dev(1)}},
		{"devices beyond capacity stay purple", []*events.Message{registered(), auto(true), activated(1)}, nil, added(0, 2), []string{dev(0)}},
		{"an activation makes the purple devices blue", []*events.Message{registered(), auto(true), added(0, 2)}, nil, activated(2), []string{dev(0), dev(1)}},
		{"turning the policy on takes every blue device", []*events.Message{registered(), activated(3), added(0, 3), provisioned(dev(0))}, nil, auto(true), []string{dev(1), dev(2)}},
		{"a device with a command on its way is not sent twice", []*events.Message{registered(), activated(3), added(0, 3)}, []string{dev(1)}, auto(true), []string{dev(0), dev(2)}},
		{"a trigger takes only what it made blue", []*events.Message{registered(), auto(true), activated(4), added(0, 2)}, nil, added(2, 4), []string{dev(2), dev(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s provisioning.State
			for _, m := range tt.given {
				provisioning.Evolve(&s, m)
			}
			s.MarkSent(tt.sent)
			provisioning.Evolve(&s, tt.when)
			if got := provisioning.Provision(&s, tt.when); !slices.Equal(got, tt.then) {
				t.Fatalf("Provision=%v, want %v", got, tt.then)
			}
		})
	}
}

// Ensure batches take consecutive devices of one cause, up to the limit.
func TestBatch(t *testing.T) {
	tests := []struct {
		causes []string
		max    int
		want   int
	}{
		{[]string{"a"}, 10, 1},
		{[]string{"a", "a", "a", "b"}, 10, 3},
		{[]string{"a", "a", "a"}, 2, 2},
		{[]string{"a", "b", "a"}, 10, 1},
	}
	for _, tt := range tests {
		if got := provisioning.Batch(tt.causes, tt.max); got != tt.want {
			t.Errorf("Batch(%v, %d)=%d, want %d", tt.causes, tt.max, got, tt.want)
		}
	}
}
