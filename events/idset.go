package events

import "time"

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

// Each calls f with every id of the set, in no order.
func (s *IDSet) Each(f func(id string)) {
	for u := range s.uuids {
		f(formatUUID(u))
	}
	for id := range s.other {
		f(id)
	}
}

// formatUUID is the lowercase canonical form of u, the id compactUUID read.
func formatUUID(u [16]byte) string {
	const digits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = digits[c>>4], digits[c&15]
		j += 2
	}
	return string(b[:])
}

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

// DefaultHorizon is how long a command id is remembered unless serve is
// told otherwise (--horizon): a week, so a script retried over a long
// weekend still gets its first outcome. The handlers' handled sets and the
// outcomes view hold a horizon's worth of commands, and the outcomes
// bucket keeps an outcome that long.
const DefaultHorizon = 7 * 24 * time.Hour

// Handled remembers the messages that caused events, and of the commands
// among them the digest of what they asked (CommandDigest): what a handler
// needs to tell a repeat — no second effect, the first outcome stands —
// from a command id used again for another command. It forgets what is
// older than its horizon: ids are kept in generations by the time of the
// event that recorded them, and a generation is dropped whole once all it
// holds is past the horizon, so memory is bounded by what a horizon's
// worth of commands takes (and an eighth more).
type Handled struct {
	// Horizon is how long an id is remembered; 0 is for ever.
	Horizon time.Duration
	// OnForget, if set, is called with each id as it is forgotten.
	OnForget func(id string)
	gens     []generation // oldest first
	latest   time.Time    // the latest time recorded
}

// generation holds the ids recorded in one slice of time.
type generation struct {
	start   time.Time
	end     time.Time // the latest time it records
	ids     IDSet
	digests map[[16]byte][8]byte
	other   map[string]string
}

// Add records that id caused an event at time at; digest is the
// commanddigest the event carried ("" for none). An id with a digest is
// kept in the digests alone, not in ids as well: most ids are commands'
// and a second entry for each would take a fifth of the set's memory.
func (h *Handled) Add(id, digest string, at time.Time) {
	g := h.generation(at)
	if digest == "" {
		g.ids.Add(id)
		return
	}
	var d [8]byte
	if u, ok := compactUUID(id); ok && len(digest) == 16 && decodeHex(d[:], digest) {
		if g.digests == nil {
			g.digests = make(map[[16]byte][8]byte)
		}
		g.digests[u] = d
		return
	}
	if g.other == nil {
		g.other = make(map[string]string)
	}
	g.other[id] = digest
}

// generation returns the generation that records time at, starting a new
// one (and dropping those past the horizon) when at is past the newest
// one's slice. Events come in stream order, so times mostly rise; an
// earlier time goes to the newest generation, which keeps it longer, never
// shorter.
func (h *Handled) generation(at time.Time) *generation {
	if at.After(h.latest) {
		h.latest = at
	}
	slice := h.Horizon / 8
	if n := len(h.gens); n > 0 && (h.Horizon <= 0 || at.Before(h.gens[n-1].start.Add(slice))) {
		g := &h.gens[n-1]
		if at.After(g.end) {
			g.end = at
		}
		return g
	}
	if h.Horizon > 0 {
		// A generation goes once the latest thing it records is past the
		// horizon.
		cut := h.latest.Add(-h.Horizon)
		drop := 0
		for drop < len(h.gens) && h.gens[drop].end.Before(cut) {
			drop++
		}
		if drop > 0 {
			if h.OnForget != nil {
				for i := range h.gens[:drop] {
					h.gens[i].each(h.OnForget)
				}
			}
			clear(h.gens[:drop])
			h.gens = append(h.gens[:0], h.gens[drop:]...)
		}
	}
	h.gens = append(h.gens, generation{start: at, end: at})
	return &h.gens[len(h.gens)-1]
}

// Lookup reports whether id caused an event within the horizon, and the
// digest recorded for it ("" when none was: events written before digests,
// or not a command).
func (h *Handled) Lookup(id string) (found bool, digest string) {
	u, isUUID := compactUUID(id)
	for i := len(h.gens) - 1; i >= 0; i-- {
		g := &h.gens[i]
		if isUUID {
			if d, ok := g.digests[u]; ok {
				return true, encodeHex(d[:])
			}
		}
		if d, ok := g.other[id]; ok {
			return true, d
		}
		if g.ids.Has(id) {
			found = true
		}
	}
	return found, ""
}

// Grow makes room for n more ids without digests recorded at time at.
func (h *Handled) Grow(n int, at time.Time) { h.generation(at).ids.Grow(n) }

// Len is the number of ids recorded and not yet forgotten.
func (h *Handled) Len() int {
	n := 0
	for i := range h.gens {
		n += h.gens[i].len()
	}
	return n
}

func (g *generation) len() int { return g.ids.Len() + len(g.digests) + len(g.other) }

// each calls f with every id of g.
func (g *generation) each(f func(id string)) {
	g.ids.Each(f)
	for u := range g.digests {
		f(formatUUID(u))
	}
	for id := range g.other {
		f(id)
	}
}

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
