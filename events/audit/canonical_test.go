package audit

import (
	"testing"
)

// Ensure Canonical follows RFC 8785: member order by UTF-16 code units,
// ECMAScript numbers, minimal string escapes, no whitespace.
func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"whitespace and order", `{ "b": 1, "a": [ true, false, null ] }`, `{"a":[true,false,null],"b":1}`},
		{"nested", `{"z":{"y":2,"x":1},"a":{}}`, `{"a":{},"z":{"x":1,"y":2}}`},
		// RFC 8785 section 3.2.3: sorting by UTF-16 puts U+1F600 (a
		// surrogate pair) before U+FB33, unlike code point order.
		{"utf-16 order", `{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
			"{\"\\r\":2,\"1\":4,\"\u0080\":6,\"\u00f6\":7,\"\u20ac\":1,\"\U0001F600\":5,\"\ufb33\":3}"},
		{"escapes", `"\u20ac$\u000f\nA'B\"\\\\\"\/<>&\u2028"`, "\"\u20ac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/<>&\u2028\""},
		{"short escapes", `"\b\f\t\r\u0001\u001f"`, `"\b\f\t\r\u0001\u001f"`},
		{"integers", `[0,-0,1,-1,100,9007199254740991]`, `[0,0,1,-1,100,9007199254740991]`},
		{"decimals", `[4.50,2e-3,0.000001,1e-7,333333333.33333329,1.5]`, `[4.5,0.002,0.000001,1e-7,333333333.3333333,1.5]`},
		{"exponents", `[1e21,1e30,1E+30,123456789012345678901,1e20,-1.5e-10]`, `[1e+21,1e+30,1e+30,123456789012345680000,100000000000000000000,-1.5e-10]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Canonical(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			again, err := Canonical(got)
			if err != nil || string(again) != string(got) {
				t.Fatalf("not idempotent: %s → %s (%v)", got, again, err)
			}
		})
	}
}

// Ensure what is not one JSON value is refused rather than hashed.
func TestCanonicalRefuses(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1} {"b":2}`, `1e400`, `{"a":1}x`} {
		if got, err := Canonical([]byte(in)); err == nil {
			t.Errorf("Canonical(%q)=%s, want an error", in, got)
		}
	}
}
