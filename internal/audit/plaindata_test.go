package audit

import (
	"reflect"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/segmentio/encoding/json"
)

// The fast path records exactly what the generic one does, or declines.
func TestPlainDataMatchesGeneric(t *testing.T) {
	docs := []struct {
		name  string
		data  string
		plain bool // the fast path takes it
	}{
		{"license activated", `{"install_code":"SS-1","license_id":"123e4567-e89b-12d3-a456-426614174000","kind":"capacity","devices":200,"activated_at":"2026-11-26T04:05:06.789Z"}`, true},
		{"rejection", `{"command_id":"c1","command_type":"t","reason":"wrong_state","message":"license is bound to SS-2","license_id":"l1"}`, true},
		{"id lists", `{"license_ids":["a","b",3,null],"device_ids":["d1"],"devices":[{"device_id":"d2","name":"x"},{"name":"no id"},{"device_id":""},7]}`, true},
		{"nested and empty", `{"z":{"b":[],"a":{}},"a":[[1,-2],[true,false,null]],"m":0}`, true},
		{"not an object", `["x",1]`, true},
		{"a string", `"x"`, true},
		{"white space", `{"a": 1}`, false},
		{"escaped quote", `{"a":"x\"y"}`, false},
		{"non-ASCII", `{"a":"gerät"}`, false},
		{"repeated name", `{"a":1,"a":2}`, false},
		{"repeated nested name", `{"b":{"a":1,"a":2}}`, false},
		{"fraction", `{"a":1.5}`, false},
		{"exponent", `{"a":1e3}`, false},
		{"minus zero", `{"a":-0}`, false},
		{"sixteen digits", `{"a":1234567890123456}`, false},
		{"trailing data", `{"a":1}x`, false},
		{"not JSON", `{"a":`, false},
	}
	for _, typ := range events.Types() { // every type's data as licensebus encodes it
		info, _ := events.Lookup(typ)
		b, err := json.Marshal(info.New())
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, struct {
			name  string
			data  string
			plain bool
		}{string(typ), string(b), true})
	}
	many := `{"license_ids":[` + strings.Repeat(`"x",`, 300) + `"y"]}` // more ids than an entry lists
	docs = append(docs, struct {
		name  string
		data  string
		plain bool
	}{"many ids", many, true})
	for _, d := range docs {
		for _, kind := range []trail.Kind{trail.KindEvent, trail.KindRejection} {
			t.Run(d.name+"/"+string(kind), func(t *testing.T) {
				fast, generic := trail.Entry{Kind: kind}, trail.Entry{Kind: kind}
				setData(&fast, []byte(d.data))
				setDataGeneric(&generic, []byte(d.data))
				if _, ok := plainCanonical([]byte(d.data)); ok != d.plain {
					t.Fatalf("fast path = %v, want %v", ok, d.plain)
				}
				if !reflect.DeepEqual(fast, generic) {
					t.Errorf("fast path:\n%+v\ngeneric:\n%+v", fast, generic)
				}
			})
		}
	}
}

// Whatever the document, the fast path declines or agrees.
func FuzzPlainData(f *testing.F) {
	f.Add(`{"license_id":"l","devices":[{"device_id":"d"}],"n":12}`)
	f.Add(`[1,{"b":"x","a":[]}]`)
	f.Fuzz(func(t *testing.T, data string) {
		if _, ok := plainCanonical([]byte(data)); !ok {
			return
		}
		for _, kind := range []trail.Kind{trail.KindEvent, trail.KindRejection} {
			fast, generic := trail.Entry{Kind: kind}, trail.Entry{Kind: kind}
			setData(&fast, []byte(data))
			setDataGeneric(&generic, []byte(data))
			if !reflect.DeepEqual(fast, generic) {
				t.Errorf("%s: fast path:\n%+v\ngeneric:\n%+v", data, fast, generic)
			}
		}
	})
}

// What recording an event's data costs the auditor, on each path.
func BenchmarkSetData(b *testing.B) {
	data := []byte(`{"install_code":"SS-1","license_id":"123e4567-e89b-12d3-a456-426614174000","kind":"capacity","devices":200,"activated_at":"2026-11-26T04:05:06.789Z"}`)
	for _, path := range []struct {
		name string
		set  func(*trail.Entry, []byte)
	}{{"plain", setData}, {"generic", setDataGeneric}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e trail.Entry
				path.set(&e, data)
			}
		})
	}
}
