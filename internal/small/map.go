// Package small holds Map, a map for the handful of keys one aggregate
// keeps of a kind: a SmartServer's active licenses, their device counts,
// the licenses of a transfer. Tens of thousands of aggregates each keep a
// few, and a Go map of even one entry takes a group of eight slots (near a
// kilobyte for a license's record); a slice takes what its entries take.
package small

import (
	"bytes"
	"encoding/json"
	"iter"
	"slices"
	"strings"
)

// Map is a map from string keys, kept as a slice in the order keys were
// first set and searched in order: for a few keys, as fast as a map. The
// zero value is an empty map ready to use; copying a Map shares its
// entries (Clone does not).
type Map[V any] []Entry[V]

// Entry is one key and its value.
type Entry[V any] struct {
	Key   string
	Value V
}

func (m Map[V]) index(k string) int {
	for i := range m {
		if m[i].Key == k {
			return i
		}
	}
	return -1
}

// Get returns the value of k and whether k is set.
func (m Map[V]) Get(k string) (V, bool) {
	if i := m.index(k); i >= 0 {
		return m[i].Value, true
	}
	var zero V
	return zero, false
}

// Has reports whether k is set.
func (m Map[V]) Has(k string) bool { return m.index(k) >= 0 }

// Set sets k to v.
func (m *Map[V]) Set(k string, v V) {
	if i := m.index(k); i >= 0 {
		(*m)[i].Value = v
		return
	}
	*m = append(*m, Entry[V]{k, v})
}

// Delete removes k, if set.
func (m *Map[V]) Delete(k string) {
	if i := m.index(k); i >= 0 {
		*m = slices.Delete(*m, i, i+1)
	}
	if len(*m) == 0 {
		*m = nil // nothing kept for an aggregate that has none
	}
}

// Keys returns the keys in sorted order.
func (m Map[V]) Keys() []string {
	keys := make([]string, len(m))
	for i := range m {
		keys[i] = m[i].Key
	}
	slices.Sort(keys)
	return keys
}

// All yields every key and value, in the order keys were first set.
func (m Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, e := range m {
			if !yield(e.Key, e.Value) {
				return
			}
		}
	}
}

// Clone returns a copy that shares nothing with m (values are copied as
// values are).
func (m Map[V]) Clone() Map[V] { return slices.Clone(m) }

// MarshalJSON writes m as a JSON object with its keys sorted, as
// encoding/json writes a Go map: the form is the same as before Map.
func (m Map[V]) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	sorted := slices.SortedFunc(slices.Values(m), func(a, b Entry[V]) int { return strings.Compare(a.Key, b.Key) })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object (or null) into m, keys sorted.
func (m *Map[V]) UnmarshalJSON(data []byte) error {
	var all map[string]V
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	*m = nil
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range all {
			if !yield(k) {
				return
			}
		}
	}) {
		*m = append(*m, Entry[V]{k, all[k]})
	}
	return nil
}
