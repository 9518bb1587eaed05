package audit

import (
	"bytes"
	trail "github.com/licensebus/licensebus/events/audit"
	"slices"
)

// plainCanonical is Canonical for the JSON licensebus itself writes: no
// white space, strings of printable ASCII without escapes, integers of at
// most 15 digits, no repeated member names. It sorts members by reading
// spans of raw, without decoding into maps, which is most of what the
// generic path costs. ok is false for anything else, which the generic
// path handles.
func plainCanonical(raw []byte) (canon []byte, ok bool) {
	p := plainJSON{in: raw, out: make([]byte, 0, len(raw))}
	end, ok := p.skip(0, 0)
	if !ok || end != len(raw) {
		return nil, false
	}
	if !p.write(0, 0) {
		return nil, false
	}
	return p.out, true
}

// plainJSON reads and rewrites one plain JSON document.
type plainJSON struct {
	in, out []byte
}

// maxPlainDepth bounds nesting on the fast path; deeper documents take the
// generic one.
const maxPlainDepth = 16

// skip returns the end of the plain value that starts at i.
func (p *plainJSON) skip(i, depth int) (int, bool) {
	in := p.in
	if i >= len(in) || depth > maxPlainDepth {
		return 0, false
	}
	switch c := in[i]; {
	case c == '"':
		return p.skipString(i)
	case c == '{':
		i++
		if i < len(in) && in[i] == '}' {
			return i + 1, true
		}
		for {
			end, ok := p.skipString(i)
			if !ok || end >= len(in) || in[end] != ':' {
				return 0, false
			}
			if i, ok = p.skip(end+1, depth+1); !ok || i >= len(in) {
				return 0, false
			}
			switch in[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		i++
		if i < len(in) && in[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = p.skip(i, depth+1); !ok || i >= len(in) {
				return 0, false
			}
			switch in[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return p.skipInt(i)
	case bytes.HasPrefix(in[i:], []byte("true")):
		return i + 4, true
	case bytes.HasPrefix(in[i:], []byte("false")):
		return i + 5, true
	case bytes.HasPrefix(in[i:], []byte("null")):
		return i + 4, true
	}
	return 0, false
}

// skipString returns the end of the string at i: printable ASCII only, no
// escapes (the only form JCS keeps as it is, whatever wrote it).
func (p *plainJSON) skipString(i int) (int, bool) {
	in := p.in
	if i >= len(in) || in[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(in); j++ {
		switch c := in[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return 0, false
		}
	}
	return 0, false
}

// skipInt returns the end of the integer at i: -?(0|[1-9][0-9]*), at most
// 15 digits (exact as a double, so ECMAScript writes the same digits), not
// -0, not followed by a fraction or an exponent.
func (p *plainJSON) skipInt(i int) (int, bool) {
	in := p.in
	start := i
	if in[i] == '-' {
		i++
	}
	digits := i
	for i < len(in) && in[i] >= '0' && in[i] <= '9' {
		i++
	}
	n := i - digits
	switch {
	case n == 0 || n > 15:
		return 0, false
	case in[digits] == '0' && (n > 1 || digits > start): // leading zero, or -0
		return 0, false
	case i < len(in) && (in[i] == '.' || in[i] == 'e' || in[i] == 'E'):
		return 0, false
	}
	return i, true
}

// member is one object member: the name without its quotes, and where its
// value starts.
type member struct {
	name  []byte
	value int
}

// members appends the members of the (plain) object at i to ms.
func (p *plainJSON) members(i, depth int, ms []member) []member {
	in := p.in
	if in[i+1] == '}' {
		return ms
	}
	for j := i + 1; ; {
		end, _ := p.skipString(j)
		v := end + 1
		ms = append(ms, member{name: in[j+1 : end-1], value: v})
		next, _ := p.skip(v, depth+1)
		if in[next] == '}' {
			return ms
		}
		j = next + 1
	}
}

// str returns the string at i, if there is one.
func (p *plainJSON) str(i int) (string, bool) {
	if p.in[i] != '"' {
		return "", false
	}
	end, _ := p.skipString(i)
	return string(p.in[i+1 : end-1]), true
}

// each calls f with where each element of the array at i starts; nothing
// if there is no array at i.
func (p *plainJSON) each(i int, f func(int)) {
	in := p.in
	if in[i] != '[' || in[i+1] == ']' {
		return
	}
	for j := i + 1; ; {
		f(j)
		next, _ := p.skip(j, 1)
		if in[next] == ']' {
			return
		}
		j = next + 1
	}
}

// plainFields sets the ids and reasons the plain document raw names, as
// setData does from the decoded document. raw must have passed
// plainCanonical (so it is plain and has no repeated names).
func plainFields(e *trail.Entry, raw []byte) {
	p := plainJSON{in: raw}
	if raw[0] != '{' {
		return
	}
	var buf [16]member
	ms := p.members(0, 0, buf[:0])
	at := func(k string) (int, bool) {
		for _, m := range ms {
			if string(m.name) == k {
				return m.value, true
			}
		}
		return 0, false
	}
	str := func(k string) string {
		if i, ok := at(k); ok {
			s, _ := p.str(i)
			return clip(s)
		}
		return ""
	}
	strs := func(k string) []string {
		var out []string
		if i, ok := at(k); ok {
			p.each(i, func(j int) {
				if s, ok := p.str(j); ok && len(out) < maxIDs {
					out = append(out, clip(s))
				}
			})
		}
		return out
	}
	e.LicenseID, e.InstallCode, e.CustomerID, e.DeviceID = str("license_id"), str("install_code"), str("customer_id"), str("device_id")
	e.LicenseIDs, e.DeviceIDs = strs("license_ids"), strs("device_ids")
	if i, ok := at("devices"); ok { // batches of devices, each with its device_id
		p.each(i, func(j int) {
			if p.in[j] != '{' || len(e.DeviceIDs) >= maxIDs {
				return
			}
			var buf [16]member
			for _, m := range p.members(j, 1, buf[:0]) {
				if string(m.name) == "device_id" {
					if id, ok := p.str(m.value); ok && id != "" {
						e.DeviceIDs = append(e.DeviceIDs, clip(id))
					}
				}
			}
		})
	}
	if e.Kind == trail.KindRejection {
		e.Reason, e.Message, e.CommandID, e.CommandType = str("reason"), str("message"), str("command_id"), str("command_type")
	}
}

// write appends the canonical form of the (already skipped, so plain)
// value at i.
func (p *plainJSON) write(i, depth int) bool {
	in := p.in
	switch in[i] {
	case '{':
		var buf [16]member
		ms := p.members(i, depth, buf[:0])
		// ASCII names: byte order is UTF-16 order.
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.name, b.name) })
		p.out = append(p.out, '{')
		for k, m := range ms {
			if k > 0 {
				if bytes.Equal(ms[k-1].name, m.name) {
					return false // the generic decoder keeps the last one
				}
				p.out = append(p.out, ',')
			}
			p.out = append(p.out, '"')
			p.out = append(p.out, m.name...)
			p.out = append(p.out, '"', ':')
			if !p.write(m.value, depth+1) {
				return false
			}
		}
		p.out = append(p.out, '}')
	case '[':
		p.out = append(p.out, '[')
		if in[i+1] != ']' {
			for j := i + 1; ; {
				if !p.write(j, depth+1) {
					return false
				}
				next, _ := p.skip(j, depth+1)
				if in[next] == ']' {
					break
				}
				p.out = append(p.out, ',')
				j = next + 1
			}
		}
		p.out = append(p.out, ']')
	default: // strings, integers and literals are canonical as they are
		end, _ := p.skip(i, depth)
		p.out = append(p.out, in[i:end]...)
	}
	return true
}
