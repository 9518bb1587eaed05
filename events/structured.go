package events

import (
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/segmentio/encoding/json"
)

// ContentTypeStructured is the Content-Type of a structured-mode CloudEvent.
const ContentTypeStructured = "application/cloudevents+json"

// Encode returns m as a structured-mode CloudEvent NATS message: header
// Content-Type application/cloudevents+json, the whole event as JSON in the
// payload, and Nats-Msg-Id set to the CloudEvent id so JetStream dedupes
// repeats. Structured, because every reader parses the headers of every
// message it receives, and a binary-mode event's dozen headers cost each
// reader several times what two do (docs/performance.md).
func (m *Message) Encode() Msg {
	body, ok := m.appendStructured(make([]byte, 0, structuredSize+len(m.Event.DataEncoded)))
	if !ok {
		// JSON cannot carry a string that is not UTF-8 (a foreign id, say)
		// unchanged; binary mode's percent-encoding can.
		if !m.utf8Attrs() {
			return m.EncodeBinary()
		}
		var err error
		if body, err = m.CloudEvent().MarshalJSON(); err != nil {
			return m.EncodeBinary()
		}
	}
	h := make(map[string][]string, 2)
	vs := make(values, 0, 2)
	h["Content-Type"] = vs.one(ContentTypeStructured)
	h[MsgIDHeader] = vs.one(m.Event.ID())
	return Msg{Subject: m.Subject(), Header: h, Data: body}
}

// structuredSize is about the length of a licensebus event without its data.
const structuredSize = 400

// appendStructured appends m's JSON event format to b for the events
// licensebus builds: JSON data it encoded itself, no data schema, no
// extensions but its own. ok is false for anything else, which sdk-go
// encodes.
func (m *Message) appendStructured(b []byte) ([]byte, bool) {
	e := &m.Event
	if !m.jsonData || len(e.DataEncoded) == 0 || e.DataContentType() != event.ApplicationJSON || e.DataSchema() != "" ||
		len(e.Extensions()) != 0 || e.SpecVersion() != event.CloudEventsVersionV1 {
		return b, false
	}
	var ok bool
	b = append(b, `{"specversion":"1.0","id":`...)
	if b, ok = appendJSONString(b, e.ID()); !ok {
		return b, false
	}
	b = append(b, `,"source":`...)
	if b, ok = appendJSONString(b, e.Source()); !ok {
		return b, false
	}
	b = append(b, `,"type":`...)
	if b, ok = appendJSONString(b, e.Type()); !ok {
		return b, false
	}
	if s := e.Subject(); s != "" {
		b = append(b, `,"subject":`...)
		if b, ok = appendJSONString(b, s); !ok {
			return b, false
		}
	}
	if t := e.Time(); !t.IsZero() {
		b = append(b, `,"time":"`...)
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"datacontenttype":"application/json"`...)
	for _, x := range m.exts.all() {
		if x[1] != "" {
			b = append(b, ',', '"')
			b = append(b, x[0]...)
			b = append(b, '"', ':')
			if b, ok = appendJSONString(b, x[1]); !ok {
				return b, false
			}
		}
	}
	b = append(b, `,"data":`...)
	b = append(b, e.DataEncoded...)
	return append(b, '}'), true
}

// appendJSONString appends s as a JSON string: as it is when it is
// printable ASCII without quote or backslash (every id, type and source
// licensebus writes), escaped by the JSON encoder otherwise. ok is false
// for a string that is not UTF-8, which JSON would change.
func appendJSONString(b []byte, s string) ([]byte, bool) {
	if plainString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), true
	}
	if !utf8.ValidString(s) {
		return b, false
	}
	out, err := json.Append(b, s, 0)
	return out, err == nil
}

// utf8Attrs says every string attribute and extension of m is UTF-8.
func (m *Message) utf8Attrs() bool {
	e := &m.Event
	for _, s := range []string{e.ID(), e.Source(), e.Type(), e.Subject(), e.DataContentType(), e.DataSchema(),
		m.exts.correlation, m.exts.causation, m.exts.actor, m.exts.digest, m.exts.traceparent, m.exts.tracestate} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for k, v := range e.Extensions() {
		if s, ok := v.(string); !utf8.ValidString(k) || ok && !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// plainString says s needs no escaping in JSON and decodes to itself.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainStructured decodes the structured-mode events licensebus writes
// without sdk-go's parser: a JSON object of string attributes without
// escapes, specversion 1.0, only the attributes and extensions licensebus
// sets, each once, and data that is a JSON object. The attributes are
// views of body until kept, the data a slice of it. ok is false for
// anything else (and for anything invalid), which takes the general path;
// what it accepts decodes to the event sdk-go's parser would give.
func plainStructured(body []byte) (e event.Event, x exts, ok bool) {
	var a attrs
	var data []byte
	var seen uint16
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return e, x, false
	}
	i = skipWS(body, i+1)
	for {
		var key string
		if key, i, ok = rawString(body, i); !ok {
			return e, x, false
		}
		if i = skipWS(body, i); i >= len(body) || body[i] != ':' {
			return e, x, false
		}
		// sdk-go's data is the value with the white space before it.
		value := i + 1
		i = skipWS(body, value)
		bit, to := a.member(key)
		if bit == 0 || seen&bit != 0 {
			return e, x, false // foreign or repeated: the general path decides
		}
		seen |= bit
		if to == nil { // data
			if i >= len(body) || body[i] != '{' {
				return e, x, false
			}
			end, valid := skipValue(body, i, 0)
			if !valid {
				return e, x, false
			}
			data, i = body[value:end], end
		} else if *to, i, ok = rawString(body, i); !ok {
			return e, x, false
		}
		if i = skipWS(body, i); i >= len(body) {
			return e, x, false
		}
		if body[i] == '}' {
			i++
			break
		}
		if body[i] != ',' {
			return e, x, false
		}
		i = skipWS(body, i+1)
	}
	if skipWS(body, i) != len(body) || a.spec != event.CloudEventsVersionV1 || data == nil {
		return e, x, false
	}
	var t time.Time
	if a.tm != "" {
		var err error
		// sdk-go keeps a time that parses to zero; the plain context has no
		// room for it, so it goes the general way.
		if t, err = time.Parse(time.RFC3339Nano, a.tm); err != nil || t.IsZero() || t.UTC().Year() < 1 || t.UTC().Year() > 9999 {
			return e, x, false
		}
	}
	if e, ok = a.plainEvent(t, data); !ok {
		return e, x, false
	}
	return e, a.exts(), true
}

// member returns the bit of a structured event's member and where its
// string value goes; data has a bit and no string. Bit 0: not one
// licensebus writes.
func (a *attrs) member(key string) (uint16, *string) {
	switch key {
	case "specversion":
		return 1 << 0, &a.spec
	case "id":
		a.has |= 1
		return 1 << 1, &a.id
	case "source":
		a.has |= 2
		return 1 << 2, &a.source
	case "type":
		a.has |= 4
		return 1 << 3, &a.typ
	case "subject":
		return 1 << 4, &a.subject
	case "time":
		return 1 << 5, &a.tm
	case "datacontenttype":
		return 1 << 6, &a.dct
	case ExtCorrelationID:
		return 1 << 7, &a.correlation
	case ExtCausationID:
		return 1 << 8, &a.causation
	case ExtActor:
		return 1 << 9, &a.actor
	case "data":
		return 1 << 10, nil
	case ExtCommandDigest:
		return 1 << 11, &a.digest
	case ExtTraceParent:
		return 1 << 12, &a.traceparent
	case ExtTraceState:
		return 1 << 13, &a.tracestate
	}
	return 0, nil
}

// rawString reads the JSON string at b[i] that has no escapes and only
// printable ASCII, as a view of b.
func rawString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		if c := b[j]; !printable[c] {
			if c == '"' {
				return bytesView(b[i+1 : j]), j + 1, true
			}
			return "", i, false
		}
	}
	return "", i, false
}

// printable marks the bytes a JSON string may hold as they are and that
// decode to themselves, but its quote: printable ASCII but '"' and '\\'.
var printable = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// maxDepth bounds skipValue's recursion on hostile input; deeper data takes
// the general path.
const maxDepth = 64

// skipValue returns the end of the JSON value at b[i], checking its
// grammar (RFC 8259) so that only valid JSON takes the fast path.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		return skipMembers(b, i+1, depth, '}', true)
	case c == '[':
		return skipMembers(b, i+1, depth, ']', false)
	case c == '"':
		return skipString(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	}
	return i, false
}

// skipMembers skips an object's members (keyed) or an array's elements
// after the opening bracket, through the closing one.
func skipMembers(b []byte, i, depth int, closing byte, keyed bool) (int, bool) {
	i = skipWS(b, i)
	if i < len(b) && b[i] == closing {
		return i + 1, true
	}
	for {
		var ok bool
		if keyed {
			if i, ok = skipString(b, i); !ok {
				return i, false
			}
			if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipWS(b, i+1)
		}
		if i, ok = skipValue(b, i, depth+1); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case closing:
			return i + 1, true
		case ',':
			i = skipWS(b, i+1)
		default:
			return i, false
		}
	}
}

func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c >= 0x80 || printable[c] {
			continue
		}
		switch {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return j, false
		case c == '\\':
			if j+1 >= len(b) {
				return j, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(b) {
					return j, false
				}
				for _, h := range b[j+2 : j+6] {
					if _, ok := unhex(h); !ok {
						return j, false
					}
				}
				j += 5
			default:
				return j, false
			}
		}
	}
	return len(b), false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipNumber checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// bytesView is b as a string without copying; b must not change while the
// string is in use (decoding keeps what it holds on to with attrs.keep).
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
