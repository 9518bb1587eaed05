package events

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/segmentio/encoding/json"
)

// CloudEvent extension attributes licensebus sets. Extension names must be
// lowercase alphanumerics.
const (
	ExtCorrelationID = "correlationid"
	ExtCausationID   = "causationid"
	ExtActor         = "actor"
	// ExtCommandDigest is on the events a command caused, directly or
	// along its chain of reactions: the digest of the command
	// (CommandDigest), so a command id used again for another command is
	// told from a repeat of the same one, also after JetStream's dedupe
	// window.
	ExtCommandDigest = "commanddigest"
	// ExtTraceParent and ExtTraceState are the CloudEvents distributed
	// tracing extension: the W3C trace context of the step that wrote the
	// message, so whoever handles it continues the same trace.
	ExtTraceParent = "traceparent"
	ExtTraceState  = "tracestate"
)

// Sources: commands name their client, events the side that produced them.
const (
	CloudSource  = "/licensebus/cloud"
	DeviceSource = "/licensebus/device"
)

// Meta is what links a message to the rest of its story.
type Meta struct {
	ID            string // CloudEvent id; also the JetStream Nats-Msg-Id
	Source        string // CloudEvent source
	CorrelationID string // id of the command that started the chain
	CausationID   string // id of the message that directly caused this one
	Actor         string // who asked: a user, a service or a handler
	CommandDigest string // on events caused directly by a command: its digest
	// TraceParent and TraceState are the W3C trace context the message
	// carries (ExtTraceParent); Next copies the cause's, and a step that
	// has a span of its own puts that span's instead.
	TraceParent, TraceState string
	Time                    time.Time // when; zero means now
}

// Message is a decoded CloudEvent with typed data. Event holds the
// CloudEvent without the extensions licensebus sets (correlationid,
// causationid, actor, commanddigest, traceparent, tracestate), which the
// Message keeps apart: sdk-go's map of them
// cost every decoded event about 450 bytes in five allocations, the
// largest of ours in a rebuild. CloudEvent returns the whole event.
type Message struct {
	Event event.Event
	Info  Info
	Data  Data
	exts  exts
	// jsonData: Event's data is JSON that encoded or decoded without error.
	jsonData bool
}

// exts are licensebus's extensions of a message; "" is absent.
type exts struct{ correlation, causation, actor, digest, traceparent, tracestate string }

// ID returns the CloudEvent id.
func (m *Message) ID() string { return m.Event.ID() }

// Type returns the CloudEvent type.
func (m *Message) Type() Type { return Type(m.Event.Type()) }

// CorrelationID returns the correlationid extension, or the event id for a
// message that starts its own chain.
func (m *Message) CorrelationID() string {
	if v := m.exts.correlation; v != "" {
		return v
	}
	return m.Event.ID()
}

// CausationID returns the causationid extension.
func (m *Message) CausationID() string { return m.exts.causation }

// Actor returns the actor extension.
func (m *Message) Actor() string { return m.exts.actor }

// CommandDigest returns the commanddigest extension: set on events a
// command caused directly.
func (m *Message) CommandDigest() string { return m.exts.digest }

// TraceParent returns the traceparent extension: the W3C trace context of
// the step that wrote the message ("" when it has none).
func (m *Message) TraceParent() string { return m.exts.traceparent }

// TraceState returns the tracestate extension.
func (m *Message) TraceState() string { return m.exts.tracestate }

// SetTrace replaces the message's trace context: how a step that appends a
// message built before its span started links the message to that span.
// Call it before the message is encoded.
func (m *Message) SetTrace(traceparent, tracestate string) {
	m.exts.traceparent, m.exts.tracestate = traceparent, tracestate
}

// CloudEvent returns the message as one CloudEvent, its licensebus
// extensions included (for a structured-mode encoding, say).
func (m *Message) CloudEvent() event.Event {
	e := m.Event.Clone()
	for _, x := range m.exts.all() {
		if x[1] != "" {
			e.SetExtension(x[0], x[1])
		}
	}
	return e
}

// all returns the extensions by name and value; a value "" is absent.
func (x exts) all() [6][2]string {
	return [6][2]string{{ExtCorrelationID, x.correlation}, {ExtCausationID, x.causation}, {ExtActor, x.actor}, {ExtCommandDigest, x.digest},
		{ExtTraceParent, x.traceparent}, {ExtTraceState, x.tracestate}}
}

// takeExts moves licensebus's extensions out of e's context (where sdk-go's
// structured decoder put them) into exts.
func takeExts(e *event.Event) exts {
	var x exts
	c, ok := e.Context.(*event.EventContextV1)
	if !ok || c.Extensions == nil {
		return x
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{ExtCorrelationID, &x.correlation}, {ExtCausationID, &x.causation}, {ExtActor, &x.actor}, {ExtCommandDigest, &x.digest},
		{ExtTraceParent, &x.traceparent}, {ExtTraceState, &x.tracestate}} {
		v, ok := c.Extensions[f.name]
		if !ok {
			continue
		}
		delete(c.Extensions, f.name)
		if s, ok := v.(string); ok {
			*f.to = s
		} else {
			*f.to = fmt.Sprint(v)
		}
	}
	if len(c.Extensions) == 0 {
		c.Extensions = nil
	}
	return x
}

// Next returns the Meta of a message caused by m: same correlation, caused
// by m, with the given id and source, in m's trace (a step with a span of
// its own replaces the trace context with its span's).
func (m *Message) Next(id, source, actor string) Meta {
	return Meta{ID: id, Source: source, CorrelationID: m.CorrelationID(), CausationID: m.ID(), Actor: actor,
		TraceParent: m.exts.traceparent, TraceState: m.exts.tracestate}
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
	tm := meta.Time
	if tm.IsZero() {
		tm = time.Now().UTC()
	}
	body, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", t, err)
	}
	a := attrs{owned: true, id: meta.ID, source: meta.Source, typ: string(t), subject: data.Key(), dct: event.ApplicationJSON, has: 7}
	x := meta.exts()
	if e, ok := a.plainEvent(tm, body); ok {
		return &Message{Event: e, Info: info, Data: data, exts: x, jsonData: true}, nil
	}
	return buildGeneral(info, data, meta, tm, body)
}

// buildGeneral builds the event with sdk-go's setters and Validate.
func buildGeneral(info Info, data Data, meta Meta, tm time.Time, body []byte) (*Message, error) {
	t := info.Type
	e := event.New()
	e.SetID(meta.ID)
	e.SetSource(meta.Source)
	e.SetType(string(t))
	e.SetSubject(data.Key())
	e.SetTime(tm)
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = body
	if err := e.Validate(); err != nil {
		return nil, Reject(ReasonMalformed, "invalid CloudEvent: %v", err)
	}
	return &Message{Event: e, Info: info, Data: data, exts: meta.exts(), jsonData: true}, nil
}

// exts are the extensions meta gives a message.
func (meta *Meta) exts() exts {
	return exts{correlation: meta.CorrelationID, causation: meta.CausationID, actor: meta.Actor, digest: meta.CommandDigest,
		traceparent: meta.TraceParent, tracestate: meta.TraceState}
}

// Subject returns the NATS subject m belongs on.
func (m *Message) Subject() string {
	if m.Info.Command {
		return CommandSubject(m.Info, m.Data)
	}
	return EventSubject(m.Info, m.Data)
}

// EncodeBinary returns m as a binary-mode CloudEvent NATS message: one
// ce-* header per attribute (percent-encoded as the NATS binding asks), the
// JSON data as payload, and Nats-Msg-Id set to the CloudEvent id so
// JetStream dedupes repeats. licensebus writes structured mode (Encode);
// clients may send either.
func (m *Message) EncodeBinary() Msg {
	e := &m.Event
	h := make(map[string][]string, 14)
	// The values share one array: one allocation instead of one per header.
	vs := make(values, 0, 13)
	h["ce-specversion"] = vs.one(e.SpecVersion())
	h["ce-id"] = vs.one(pctEncode(e.ID()))
	h["ce-source"] = vs.one(pctEncode(e.Source()))
	h["ce-type"] = vs.one(pctEncode(e.Type()))
	if s := e.Subject(); s != "" {
		h["ce-subject"] = vs.one(pctEncode(s))
	}
	if !e.Time().IsZero() {
		h["ce-time"] = vs.one(e.Time().UTC().Format(time.RFC3339Nano))
	}
	if ct := e.DataContentType(); ct != "" {
		h["ce-datacontenttype"] = vs.one(pctEncode(ct))
	}
	if ds := e.DataSchema(); ds != "" {
		h["ce-dataschema"] = vs.one(pctEncode(ds))
	}
	for _, x := range m.exts.all() {
		if x[1] != "" {
			h[extHeader(x[0])] = vs.one(pctEncode(x[1]))
		}
	}
	// Any other extension, from the context's own map: Event.Extensions
	// copies it.
	others := map[string]any(nil)
	if c, ok := e.Context.(*event.EventContextV1); ok {
		others = c.Extensions
	} else {
		others = e.Extensions()
	}
	for k, v := range others {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		h[extHeader(k)] = vs.one(pctEncode(s))
	}
	h[MsgIDHeader] = vs.one(e.ID())
	return Msg{Subject: m.Subject(), Header: h, Data: e.DataEncoded}
}

// values backs several one-value header slices.
type values []string

// one appends v and returns it as a slice of its own length and capacity,
// so that appending to one header's values cannot touch another's.
func (vs *values) one(v string) []string {
	*vs = append(*vs, v)
	n := len(*vs)
	return (*vs)[n-1 : n : n]
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
	case ExtCommandDigest:
		return "ce-" + ExtCommandDigest
	case ExtTraceParent:
		return "ce-" + ExtTraceParent
	case ExtTraceState:
		return "ce-" + ExtTraceState
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
func Decode(h map[string][]string, body []byte) (*Message, error) {
	e, x, err := decodeEvent(h, body)
	if err != nil {
		return nil, err
	}
	m := &Message{Event: e, exts: x}
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
	// JSON decoders turn bytes that are not UTF-8 into U+FFFD silently: a
	// command must not be handled as something it did not say. (Events
	// are licensebus's own writing.)
	if info.Command && !utf8.Valid(raw) {
		return m, Reject(ReasonInvalidData, "%s data is not UTF-8", e.Type())
	}
	if err := json.Unmarshal(raw, d); err != nil {
		return m, Reject(ReasonInvalidData, "%s data: %v", e.Type(), err)
	}
	m.Data, m.jsonData = d, true
	if err := d.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

func decodeEvent(h map[string][]string, body []byte) (event.Event, exts, error) {
	a, other, err := readAttrs(h)
	if err != nil {
		return event.Event{}, exts{}, err
	}
	if a.structured {
		if e, x, ok := plainStructured(body); ok {
			return e, x, nil
		}
		e := event.New()
		if err := unmarshalStructured(&e, body); err != nil {
			return event.Event{}, exts{}, Reject(ReasonMalformed, "structured CloudEvent: %v", err)
		}
		if e.SpecVersion() != event.CloudEventsVersionV1 {
			return event.Event{}, exts{}, Reject(ReasonMalformed, "unsupported CloudEvents specversion %q", e.SpecVersion())
		}
		e, err := validated(e)
		return e, takeExts(&e), err
	}
	if a.spec == "" {
		return event.Event{}, exts{}, Reject(ReasonMalformed, "not a CloudEvent: no ce-specversion header and no application/cloudevents content type")
	}
	if a.spec != event.CloudEventsVersionV1 {
		return event.Event{}, exts{}, Reject(ReasonMalformed, "unsupported CloudEvents specversion %q", a.spec)
	}
	if a.dct == "" {
		a.dct = a.ct
	}
	var t time.Time
	if a.tm != "" {
		var err error
		t, err = time.Parse(time.RFC3339Nano, a.tm)
		if err != nil || t.UTC().Year() < 1 || t.UTC().Year() > 9999 {
			return event.Event{}, exts{}, Reject(ReasonMalformed, "ce-time %q is not an RFC 3339 time in years 0001-9999", a.tm)
		}
	}
	if len(other) == 0 {
		if e, ok := a.plainEvent(t, body); ok {
			return e, a.exts(), nil
		}
	}
	e, err := a.general(other, t, body)
	return e, a.exts(), err
}

// general builds the event with sdk-go's setters and Validate. Setters only
// for attributes that were sent: an absent one is left for Validate to name.
func (a *attrs) general(other [][2]string, t time.Time, body []byte) (event.Event, error) {
	e := event.New()
	if a.has&1 != 0 {
		e.SetID(strings.Clone(a.id))
	}
	if a.has&2 != 0 {
		e.SetSource(strings.Clone(a.source))
	}
	if a.has&4 != 0 {
		e.SetType(strings.Clone(a.typ))
	}
	if a.subject != "" {
		e.SetSubject(strings.Clone(a.subject))
	}
	if a.schema != "" {
		e.SetDataSchema(strings.Clone(a.schema))
	}
	if a.dct != "" {
		e.SetDataContentType(strings.Clone(a.dct))
	}
	if a.tm != "" {
		e.SetTime(t)
	}
	for _, kv := range other {
		e.SetExtension(kv[0], strings.Clone(kv[1]))
	}
	e.DataEncoded = body
	return validated(e)
}

// readAttrs reads the attributes from the headers in one pass: no map of
// them, and the extensions licensebus sets kept apart, since the setters'
// checks cost more than the rest of the decoding. Values are views of the
// header block until kept (see pctDecode); other holds any other ce-*
// extension.
func readAttrs(h map[string][]string) (a attrs, other [][2]string, err error) {
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		if len(k) >= 3 && (k[0] == 'c' || k[0] == 'C') && (k[1] == 'e' || k[1] == 'E') && k[2] == '-' {
			v, err := pctView(vs[0])
			if err != nil {
				return a, nil, Reject(ReasonMalformed, "header %s: %v", k, err)
			}
			switch name := lowerASCII(k[3:]); name {
			case "specversion":
				a.spec = v
			case "id":
				a.id, a.has = v, a.has|1
			case "source":
				a.source, a.has = v, a.has|2
			case "type":
				a.typ, a.has = v, a.has|4
			case "subject":
				a.subject = v
			case "dataschema":
				a.schema = v
			case "datacontenttype":
				a.dct = v
			case "time":
				a.tm = v
			case ExtCorrelationID:
				a.correlation = v
			case ExtCausationID:
				a.causation = v
			case ExtActor:
				a.actor = v
			case ExtCommandDigest:
				a.digest = v
			case ExtTraceParent:
				a.traceparent = v
			case ExtTraceState:
				a.tracestate = v
			default:
				other = append(other, [2]string{name, v})
			}
			continue
		}
		if strings.EqualFold(k, "content-type") {
			if strings.HasPrefix(strings.ToLower(vs[0]), "application/cloudevents") {
				a.structured = true
			} else {
				a.ct = vs[0]
			}
		}
	}
	return a, other, nil
}

func validated(e event.Event) (event.Event, error) {
	if err := e.Validate(); err != nil {
		return event.Event{}, Reject(ReasonMalformed, "invalid CloudEvent: %v", strings.TrimSpace(err.Error()))
	}
	if y := e.Time().UTC().Year(); !e.Time().IsZero() && (y < 1 || y > 9999) {
		return event.Event{}, Reject(ReasonMalformed, "time %s is outside years 0001-9999", e.Time())
	}
	return e, nil
}

// attrs are a binary-mode CloudEvent's attributes as its headers carry them.
type attrs struct {
	structured                                      bool
	spec, id, source, typ, subject, schema, dct, ct string
	tm, correlation, causation, actor, digest       string
	traceparent, tracestate                         string
	has                                             uint8 // id, source, type present (even if empty)
	owned                                           bool  // the strings are not views of a header block
}

// exts returns licensebus's extensions, as strings of their own.
func (a *attrs) exts() exts {
	return exts{correlation: a.keep(a.correlation), causation: a.keep(a.causation), actor: a.keep(a.actor), digest: a.keep(a.digest),
		traceparent: a.keep(a.traceparent), tracestate: a.keep(a.tracestate)}
}

// keep returns s as a string of its own: header values are views of the
// header block, values handed to New are the caller's already.
func (a *attrs) keep(s string) string {
	if a.owned {
		return s
	}
	return strings.Clone(s)
}

// plainContext is an event context with room for what its pointers point
// to: one allocation instead of four.
type plainContext struct {
	ctx          event.EventContextV1
	subject, dct string
	time         types.Timestamp
}

// plainEvent builds the event the setters and Validate would, for the
// attributes every licensebus message has and nothing else: all required
// ones present and trimmed, a source that is a plain absolute path, JSON
// data, no data schema. ok is false for anything else, which takes the
// general path. Every event a process reads goes through here, and the
// setters' and Validate's parsing was half of decoding.
func (a *attrs) plainEvent(t time.Time, body []byte) (event.Event, bool) {
	if a.has&7 != 7 || a.id == "" || a.typ == "" || !trimmed(a.id) || !trimmed(a.typ) || !trimmed(a.subject) || a.schema != "" ||
		a.dct != event.ApplicationJSON || !plainPath(a.source) {
		return event.Event{}, false
	}
	p := &plainContext{dct: event.ApplicationJSON}
	c := &p.ctx
	c.ID = a.keep(a.id)
	c.Source = types.URIRef{URL: url.URL{Path: a.keep(a.source)}}
	if info, ok := Lookup(Type(a.typ)); ok {
		c.Type = string(info.Type)
	} else {
		c.Type = a.keep(a.typ)
	}
	if a.subject != "" {
		p.subject = a.keep(a.subject)
		c.Subject = &p.subject
	}
	c.DataContentType = &p.dct
	if !t.IsZero() {
		p.time.Time = t
		c.Time = &p.time
	}
	return event.Event{Context: c, DataEncoded: body}, true
}

// trimmed says s has no white space around it.
func trimmed(s string) bool { return strings.TrimSpace(s) == s }

// plainPath says url.Parse(s) is just URL{Path: s}: an absolute path of
// letters, digits and "/_.-", not starting with "//" (an authority).
func plainPath(s string) bool {
	if len(s) < 1 || s[0] != '/' || strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
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

// pctView is pctDecode that returns s itself when it has no escape.
func pctView(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	return pctDecode(s)
}

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

// MsgIDHeader is JetStream's dedupe header: licensebus sets it to the
// CloudEvent id.
const MsgIDHeader = "Nats-Msg-Id"

// Msg is a message as NATS carries it. Header has nats.Header's type
// underneath, so a nats.Msg is built from it without copying; events
// itself stays free of the NATS client.
type Msg struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}
