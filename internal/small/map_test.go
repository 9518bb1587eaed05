package small

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestMap(t *testing.T) {
	var m Map[int]
	if _, ok := m.Get("a"); ok || m.Has("a") || len(m) != 0 {
		t.Fatal("zero Map is not empty")
	}
	m.Set("b", 2)
	m.Set("a", 1)
	m.Set("b", 3)
	if v, ok := m.Get("b"); !ok || v != 3 || len(m) != 2 {
		t.Fatalf("Get(b) = %d, %v; len %d", v, ok, len(m))
	}
	if got := m.Keys(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Keys = %v", got)
	}
	c := m.Clone()
	c.Set("a", 9)
	if v, _ := m.Get("a"); v != 1 {
		t.Fatal("Clone shares entries")
	}
	m.Delete("a")
	m.Delete("zz")
	if m.Has("a") || len(m) != 1 {
		t.Fatalf("after Delete: %v", m)
	}
	m.Delete("b")
	if m != nil {
		t.Fatal("an emptied Map keeps its array")
	}
}

func TestMapJSONIsAnObject(t *testing.T) {
	tests := []struct {
		m    Map[int]
		want string
	}{
		{nil, `null`},
		{Map[int]{}, `{}`},
		{Map[int]{{"z", 1}, {"a", 2}}, `{"a":2,"z":1}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.m)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.m, b, err, tt.want)
		}
		// The same as a Go map's form.
		if tt.m != nil {
			std := map[string]int{}
			for k, v := range tt.m.All() {
				std[k] = v
			}
			if b2, _ := json.Marshal(std); string(b2) != string(b) {
				t.Errorf("Map %s, map %s", b, b2)
			}
		}
		var back Map[int]
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.m.All() {
			if got, ok := back.Get(k); !ok || got != v {
				t.Errorf("round trip of %s: %s = %d, %v", b, k, got, ok)
			}
		}
	}
}
