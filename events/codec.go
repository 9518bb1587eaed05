package events

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/segmentio/encoding/json"
)

// CloudEvent extension attributes licensebus sets. Extension names must be
// lowercase alphanumerics.
const (
	ExtCorrelationID = "correlationid"
	ExtCausationID   = "causationid"
	ExtActor         = "actor"
)

// Sources: commands name their client, events the side that produced them.
const (
	CloudSource  = "/licensebus/cloud"
	DeviceSource = "/licensebus/device"
)

// Meta is what links a message to the rest of its story.
type Meta struct {
	ID            string    // CloudEvent id; also the JetStream Nats-Msg-Id
	Source        string    // CloudEvent source
	CorrelationID string    // id of the command that started the chain
	CausationID   string    // id of the message that directly caused this one
	Actor         string    // who asked: a user, a service or a handler
	Time          time.Time // when; zero means now
}

// Message is a decoded CloudEvent with typed data.
type Message struct {
	Event event.Event
	Info  Info
	Data  Data
}

// ID returns the CloudEvent id.
func (m *Message) ID() string { return m.Event.ID() }

// Type returns the CloudEvent type.
func (m *Message) Type() Type { return Type(m.Event.Type()) }

// CorrelationID returns the correlationid extension, or the event id for a
// message that starts its own chain.
func (m *Message) CorrelationID() string {
	if v := m.ext(ExtCorrelationID); v != "" {
		return v
	}
	return m.Event.ID()
}

// CausationID returns the causationid extension.
func (m *Message) CausationID() string { return m.ext(ExtCausationID) }

// Actor returns the actor extension.
func (m *Message) Actor() string { return m.ext(ExtActor) }

func (m *Message) ext(name string) string {
	// Read the context's map in place: Event.Extensions() copies it, and
	// handlers ask for these three on every message.
	var v any
	switch c := m.Event.Context.(type) {
	case *event.EventContextV1:
		v = c.Extensions[name]
	default:
		v = m.Event.Extensions()[name]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(v)
	}
}

// Next returns the Meta of a message caused by m: same correlation, caused
// by m, with the given id and source.
func (m *Message) Next(id, source, actor string) Meta {
	return Meta{ID: id, Source: source, CorrelationID: m.CorrelationID(), CausationID: m.ID(), Actor: actor}
}

// New builds and validates a CloudEvent of type t carrying data.
func New(t Type, data Data, meta Meta) (*Message, error) { return build(t, data, meta, true) }

func build(t Type, data Data, meta Meta, validate bool) (*Message, error) {
	info, ok := Lookup(t)
	if !ok {
		return nil, Reject(ReasonUnknownType, "unknown type %q", t)
	}
	if validate {
		if err := data.Validate(); err != nil {
			return nil, err
		}
	}
	e := event.New()
	e.SetID(meta.ID)
	e.SetSource(meta.Source)
	e.SetType(string(t))
	e.SetSubject(data.Key())
	tm := meta.Time
	if tm.IsZero() {
		tm = time.Now().UTC()
	}
	e.SetTime(tm)
	if meta.CorrelationID != "" {
		e.SetExtension(ExtCorrelationID, meta.CorrelationID)
	}
	if meta.CausationID != "" {
		e.SetExtension(ExtCausationID, meta.CausationID)
	}
	if meta.Actor != "" {
		e.SetExtension(ExtActor, meta.Actor)
	}
	body, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", t, err)
	}
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = body
	if err := e.Validate(); err != nil {
		return nil, Reject(ReasonMalformed, "invalid CloudEvent: %v", err)
	}
	return &Message{Event: e, Info: info, Data: data}, nil
}

// Subject returns the NATS subject m belongs on.
func (m *Message) Subject() string {
	if m.Info.Command {
		return CommandSubject(m.Info, m.Data)
	}
	return EventSubject(m.Info, m.Data)
}

// NATS returns m as a binary-mode CloudEvent NATS message: one ce-* header
// per attribute (percent-encoded as the NATS binding asks), the JSON data as
// payload, and Nats-Msg-Id set to the CloudEvent id so JetStream dedupes
// repeats.
func (m *Message) NATS() *nats.Msg {
	e := &m.Event
	h := make(nats.Header, 12)
	h["ce-specversion"] = []string{e.SpecVersion()}
	h["ce-id"] = []string{pctEncode(e.ID())}
	h["ce-source"] = []string{pctEncode(e.Source())}
	h["ce-type"] = []string{pctEncode(e.Type())}
	if s := e.Subject(); s != "" {
		h["ce-subject"] = []string{pctEncode(s)}
	}
	if !e.Time().IsZero() {
		h["ce-time"] = []string{e.Time().UTC().Format(time.RFC3339Nano)}
	}
	if ct := e.DataContentType(); ct != "" {
		h["ce-datacontenttype"] = []string{pctEncode(ct)}
	}
	if ds := e.DataSchema(); ds != "" {
		h["ce-dataschema"] = []string{pctEncode(ds)}
	}
	// The context's own map: Event.Extensions copies it.
	exts := map[string]any(nil)
	if c, ok := e.Context.(*event.EventContextV1); ok {
		exts = c.Extensions
	} else {
		exts = e.Extensions()
	}
	for k, v := range exts {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		h[extHeader(k)] = []string{pctEncode(s)}
	}
	h[nats.MsgIdHdr] = []string{e.ID()}
	return &nats.Msg{Subject: m.Subject(), Header: h, Data: e.DataEncoded}
}

// extHeader is the header of extension k, without building the names
// licensebus sets on every event.
func extHeader(k string) string {
	switch k {
	case ExtCorrelationID:
		return "ce-" + ExtCorrelationID
	case ExtCausationID:
		return "ce-" + ExtCausationID
	case ExtActor:
		return "ce-" + ExtActor
	}
	return "ce-" + k
}

// Decode reads a NATS message as a CloudEvent, binary mode (ce-* headers,
// matched case-insensitively) or structured mode (Content-Type
// application/cloudevents+json), validates it, and decodes its data.
// Errors are *Rejection with ReasonMalformed, ReasonUnknownType,
// ReasonInvalidData, ReasonBadUUID or ReasonBadInstallCode. On a data error
// the returned Message is still filled in, so the caller can correlate the
// rejection.
func Decode(h nats.Header, body []byte) (*Message, error) {
	e, err := decodeEvent(h, body)
	if err != nil {
		return nil, err
	}
	m := &Message{Event: e}
	info, ok := Lookup(Type(e.Type()))
	if !ok {
		return m, Reject(ReasonUnknownType, "unknown CloudEvent type %q", e.Type())
	}
	m.Info = info
	ct := e.DataContentType()
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasSuffix(ct, "+json") && ct != "text/json" {
		return m, Reject(ReasonInvalidData, "datacontenttype %q is not JSON", ct)
	}
	d := info.New()
	raw := e.Data()
	if len(raw) == 0 {
		return m, Reject(ReasonInvalidData, "%s has no data", e.Type())
	}
	if err := json.Unmarshal(raw, d); err != nil {
		return m, Reject(ReasonInvalidData, "%s data: %v", e.Type(), err)
	}
	m.Data = d
	if err := d.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

func decodeEvent(h nats.Header, body []byte) (event.Event, error) {
	// One pass over the headers into the attributes they carry: no map of
	// them, and the extensions licensebus sets go straight into the
	// context (they are valid names with string values), since the
	// setters' checks cost more than the rest of the decoding.
	var structured bool
	var spec, id, source, typ, subject, schema, dct, ct, tm string
	var has uint8 // which of id, source, type were present, even if empty
	var exts map[string]any
	var other [][2]string
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		if len(k) >= 3 && (k[0] == 'c' || k[0] == 'C') && (k[1] == 'e' || k[1] == 'E') && k[2] == '-' {
			v, err := pctDecode(vs[0])
			if err != nil {
				return event.Event{}, Reject(ReasonMalformed, "header %s: %v", k, err)
			}
			switch name := lowerASCII(k[3:]); name {
			case "specversion":
				spec = v
			case "id":
				id, has = v, has|1
			case "source":
				source, has = v, has|2
			case "type":
				typ, has = v, has|4
			case "subject":
				subject = v
			case "dataschema":
				schema = v
			case "datacontenttype":
				dct = v
			case "time":
				tm = v
			case ExtCorrelationID, ExtCausationID, ExtActor:
				if exts == nil {
					exts = make(map[string]any, 3)
				}
				exts[name] = v
			default:
				other = append(other, [2]string{name, v})
			}
			continue
		}
		if strings.EqualFold(k, "content-type") {
			if strings.HasPrefix(strings.ToLower(vs[0]), "application/cloudevents") {
				structured = true
			} else {
				ct = vs[0]
			}
		}
	}
	e := event.New()
	if structured {
		if err := unmarshalStructured(&e, body); err != nil {
			return event.Event{}, Reject(ReasonMalformed, "structured CloudEvent: %v", err)
		}
		if e.SpecVersion() != event.CloudEventsVersionV1 {
			return event.Event{}, Reject(ReasonMalformed, "unsupported CloudEvents specversion %q", e.SpecVersion())
		}
	} else {
		if spec == "" {
			return event.Event{}, Reject(ReasonMalformed, "not a CloudEvent: no ce-specversion header and no application/cloudevents content type")
		}
		if spec != event.CloudEventsVersionV1 {
			return event.Event{}, Reject(ReasonMalformed, "unsupported CloudEvents specversion %q", spec)
		}
		// Setters only for attributes that were sent, as before: an absent
		// one is left for Validate to name.
		if has&1 != 0 {
			e.SetID(id)
		}
		if has&2 != 0 {
			e.SetSource(source)
		}
		if has&4 != 0 {
			e.SetType(typ)
		}
		if subject != "" {
			e.SetSubject(subject)
		}
		if schema != "" {
			e.SetDataSchema(schema)
		}
		if dct == "" {
			dct = ct
		}
		if dct != "" {
			e.SetDataContentType(dct)
		}
		if tm != "" {
			t, err := time.Parse(time.RFC3339Nano, tm)
			if err != nil || t.UTC().Year() < 1 || t.UTC().Year() > 9999 {
				return event.Event{}, Reject(ReasonMalformed, "ce-time %q is not an RFC 3339 time in years 0001-9999", tm)
			}
			e.SetTime(t)
		}
		if c, ok := e.Context.(*event.EventContextV1); ok && exts != nil {
			c.Extensions = exts
		} else {
			for k, v := range exts {
				e.SetExtension(k, v)
			}
		}
		for _, kv := range other {
			e.SetExtension(kv[0], kv[1])
		}
		e.DataEncoded = body
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, Reject(ReasonMalformed, "invalid CloudEvent: %v", strings.TrimSpace(err.Error()))
	}
	if y := e.Time().UTC().Year(); !e.Time().IsZero() && (y < 1 || y > 9999) {
		return event.Event{}, Reject(ReasonMalformed, "time %s is outside years 0001-9999", e.Time())
	}
	return e, nil
}

// lowerASCII lowercases s, without allocating when it is lowercase already.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// unmarshalStructured guards sdk-go's structured decoder, which panics on
// some malformed input (a non-string data_base64): one bad message must not
// take the consumer down.
func unmarshalStructured(e *event.Event, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("undecodable: %v", r)
		}
	}()
	return e.UnmarshalJSON(body)
}

// pctEncode escapes what the NATS binding says header values must not
// carry raw: space, '"', '%' and anything outside printable ASCII.
func pctEncode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// UnescapeHeader undoes the NATS binding's percent-encoding of a ce-*
// header value; a malformed escape is an error.
func UnescapeHeader(s string) (string, error) { return pctDecode(s) }

// pctDecode returns a string of its own, never a piece of s: nats.go hands
// out header values as slices of one copy of the whole header block, and
// ids kept in long-lived maps would otherwise pin that block.
func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return strings.Clone(s), nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad percent escape in %q", s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent escape in %q", s)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NewCommand is New without validating data: clients send what the user
// typed, so the handler — not the client — refuses bad input and records a
// rejection event saying why. The envelope is still validated.
func NewCommand(t Type, data Data, meta Meta) (*Message, error) {
	return build(t, data, meta, false)
}
