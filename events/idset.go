package events

// IDSet is a set of message ids. Handlers and the outcomes view remember
// every id they have seen, hundreds of thousands at fleet scale, so ids in
// the lowercase canonical UUID form licensebus and its clients generate are
// kept as 16 bytes in a map that holds no pointers, which the garbage
// collector never scans; any other id is kept as a string.
type IDSet struct {
	uuids map[[16]byte]struct{}
	other map[string]struct{}
}

// Add puts id in the set and reports whether it was new: one lookup where
// Has and Add would take two.
func (s *IDSet) Add(id string) bool {
	if u, ok := compactUUID(id); ok {
		if s.uuids == nil {
			s.uuids = make(map[[16]byte]struct{})
		}
		n := len(s.uuids)
		s.uuids[u] = struct{}{}
		return len(s.uuids) > n
	}
	if s.other == nil {
		s.other = make(map[string]struct{})
	}
	n := len(s.other)
	s.other[id] = struct{}{}
	return len(s.other) > n
}

// Has reports whether id is in the set.
func (s *IDSet) Has(id string) bool {
	if u, ok := compactUUID(id); ok {
		_, found := s.uuids[u]
		return found
	}
	_, found := s.other[id]
	return found
}

// Grow makes room for n more ids in UUID form, so that adding them does not
// rehash the set step by step.
func (s *IDSet) Grow(n int) {
	if n <= 0 {
		return
	}
	m := make(map[[16]byte]struct{}, len(s.uuids)+n)
	for u := range s.uuids {
		m[u] = struct{}{}
	}
	s.uuids = m
}

// Len is the number of ids in the set.
func (s *IDSet) Len() int { return len(s.uuids) + len(s.other) }

// compactUUID returns the 16 bytes of an id in lowercase canonical UUID
// form (8-4-4-4-12 hex digits). Only that form is compacted, so two ids
// that differ as strings never share an entry.
func compactUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	for i, j := 0, 0; j < 16; j++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++ // the hyphen
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		i += 2
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Handled remembers the messages that caused events, and of the commands
// among them the digest of what they asked (CommandDigest): what a handler
// needs to tell a repeat — no second effect, the first outcome stands —
// from a command id used again for another command.
type Handled struct {
	ids     IDSet
	digests map[[16]byte][8]byte
	other   map[string]string
}

// Add records that id caused an event; digest is the commanddigest the
// event carried ("" for none).
func (h *Handled) Add(id, digest string) {
	h.ids.Add(id)
	if digest == "" {
		return
	}
	var d [8]byte
	if u, ok := compactUUID(id); ok && len(digest) == 16 && decodeHex(d[:], digest) {
		if h.digests == nil {
			h.digests = make(map[[16]byte][8]byte)
		}
		h.digests[u] = d
		return
	}
	if h.other == nil {
		h.other = make(map[string]string)
	}
	h.other[id] = digest
}

// Lookup reports whether id caused an event, and the digest recorded for
// it ("" when none was: events written before digests, or not a command).
func (h *Handled) Lookup(id string) (found bool, digest string) {
	if !h.ids.Has(id) {
		return false, ""
	}
	if u, ok := compactUUID(id); ok {
		if d, ok := h.digests[u]; ok {
			return true, encodeHex(d[:])
		}
		return true, ""
	}
	return true, h.other[id]
}

// Len is the number of ids recorded.
func (h *Handled) Len() int { return h.ids.Len() }

func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func encodeHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
