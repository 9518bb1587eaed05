package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// structuredBody is a licensebus event as NATS writes it.
func structuredBody(t testing.TB) string {
	at := time.Date(2026, 11, 26, 4, 5, 6, 789, time.UTC)
	m, err := New(LicenseActivatedType, &LicenseActivated{InstallCode: "SS-1", LicenseID: "123e4567-e89b-12d3-a456-426614174000",
		Kind: Capacity, Devices: 200, ActivatedAt: at}, Meta{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: DeviceSource,
		CorrelationID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", CausationID: "9b2f6c1e-3d4a-4f8b-9c0d-1e2f3a4b5c6d", Actor: "user:ann", Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return string(m.Encode().Data)
}

// generalStructured is what sdk-go's parser makes of body, as Decode's
// general path does.
func generalStructured(body []byte) (event.Event, exts, error) {
	e := event.New()
	if err := unmarshalStructured(&e, body); err != nil {
		return e, exts{}, err
	}
	e, err := validated(e)
	return e, takeExts(&e), err
}

// checkPlainStructured fails when the fast path takes body and builds
// anything but what sdk-go's parser builds.
func checkPlainStructured(t *testing.T, body []byte) bool {
	t.Helper()
	got, gotX, ok := plainStructured(body)
	if !ok {
		return false
	}
	want, wantX, err := generalStructured(body)
	if err != nil {
		t.Fatalf("the general path refuses what the fast path took: %v\n%s", err, body)
	}
	if want.SpecVersion() != event.CloudEventsVersionV1 {
		t.Fatalf("fast path took specversion %q", want.SpecVersion())
	}
	if gotX != wantX {
		t.Errorf("extensions %+v, want %+v", gotX, wantX)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fast path:\n%#v\n%s\ngeneral:\n%#v\n%s", got.Context, got.DataEncoded, want.Context, want.DataEncoded)
	}
	return true
}

func TestPlainStructuredMatchesGeneral(t *testing.T) {
	base := structuredBody(t)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(base), &obj); err != nil {
		t.Fatal(err)
	}
	// with re-encodes the event with members changed (nil deletes); Go's
	// encoder sorts the members, so data comes first.
	with := func(kv ...string) string {
		o := map[string]json.RawMessage{}
		for k, v := range obj {
			o[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(o, kv[i])
			} else {
				o[kv[i]] = json.RawMessage(kv[i+1])
			}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(base), "", "\t"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		plain      bool
	}{
		{"as licensebus writes it", base, true},
		{"indented", indented.String(), true},
		{"members in another order", with(), true},
		{"white space around", " \r\n" + base + "\t ", true},
		{"no extensions", with(ExtActor, "", ExtCorrelationID, "", ExtCausationID, ""), true},
		{"no subject", with("subject", ""), true},
		{"no time", with("time", ""), true},
		{"time with an offset", with("time", `"2026-11-26T05:05:06.5+01:00"`), true},
		{"unknown type", with("type", `"com.example.other"`), true},
		{"data with every kind of value", with("data", `{"a":[1,-2.5e+3,0,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9y"],"b":{},"c":[],"d":{"e":[{}]}}`), true},
		{"empty id", with("id", `""`), false},
		{"zero time", with("time", `"0001-01-01T00:00:00Z"`), false},
		{"bad time", with("time", `"yesterday"`), false},
		{"escaped actor", with(ExtActor, `"user:\u0061nn"`), false},
		{"non-ASCII actor", with(ExtActor, `"user:zoë"`), false},
		{"an extension that is not a string", with(ExtActor, `7`), false},
		{"trace context", with(ExtTraceParent, `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`, ExtTraceState, `"lb=1"`), true},
		{"foreign extension", with("partitionkey", `"k"`), false},
		{"data schema", with("dataschema", `"https://example.com/s.json"`), false},
		{"other content type", with("datacontenttype", `"application/json; charset=utf-8"`), false},
		{"no content type", with("datacontenttype", ""), false},
		{"data_base64", with("data", "", "data_base64", `"e30="`), false},
		{"no data", with("data", ""), false},
		{"data an array", with("data", `[1]`), false},
		{"data a string", with("data", `"x"`), false},
		{"specversion 0.3", with("specversion", `"0.3"`), false},
		{"no specversion", with("specversion", ""), false},
		{"source with a scheme", with("source", `"https://example.com/x"`), false},
		{"repeated member", strings.Replace(base, `"type":`, `"type":"x","type":`, 1), false},
		{"trailing garbage", base + "x", false},
		{"two objects", base + base, false},
		{"truncated", base[:len(base)-1], false},
		{"data with a bad literal", strings.Replace(base, `"data":{`, `"data":{"z":tru,`, 1), false},
		{"data with a bad number", strings.Replace(base, `"data":{`, `"data":{"z":01,`, 1), false},
		{"data with a bad escape", strings.Replace(base, `"data":{`, `"data":{"z":"\x",`, 1), false},
		{"data with a control character", strings.Replace(base, `"data":{`, "\"data\":{\"z\":\"\x01\",", 1), false},
		{"data with a trailing comma", strings.Replace(base, `"data":{`, `"data":{"z":1,}`, 1), false},
		{"data nested too deep", strings.Replace(base, `"data":{`, `"data":{"z":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+",", 1), false},
		{"not an object", `[]`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkPlainStructured(t, []byte(tt.body)); got != tt.plain {
				t.Fatalf("fast path = %v, want %v:\n%s", got, tt.plain, tt.body)
			}
		})
	}
}

func FuzzPlainStructured(f *testing.F) {
	base := structuredBody(f)
	f.Add([]byte(base))
	f.Add([]byte(strings.Replace(base, `"data":{`, `"data":{"a":[1,-2.5e+3,true,null,"\u00e9"],`, 1)))
	f.Fuzz(func(t *testing.T, body []byte) { checkPlainStructured(t, body) })
}
