package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/events/grant"
)

// Where the schemas go, relative to the module root.
const (
	schemaDir      = "events/schemas"
	indexFile      = schemaDir + "/README.md"
	auditEntryFile = "docs/audit-entry.schema.json"
	licenseFile    = "docs/license-file.schema.json"
)

const draft = "https://json-schema.org/draft/2020-12/schema"

// generate returns every schema file, by path relative to root.
func generate(root string) (map[string][]byte, error) {
	evDocs, err := readDocs(root, "events")
	if err != nil {
		return nil, err
	}
	auDocs, err := readDocs(root, "events/audit")
	if err != nil {
		return nil, err
	}
	grDocs, err := readDocs(root, "events/grant")
	if err != nil {
		return nil, err
	}
	evDocs.merge(grDocs) // events carry grants
	files := map[string][]byte{}
	var index strings.Builder
	index.WriteString(indexHead)
	for _, t := range events.Types() {
		info, ok := events.Lookup(t)
		if !ok {
			return nil, fmt.Errorf("events.Types lists %s but Lookup does not know it", t)
		}
		g := &generator{docs: evDocs}
		s := g.root(reflect.TypeOf(info.New()), string(t))
		ann := annotation(info)
		s.set("x-licensebus", ann)
		b, err := encode(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		name := string(t) + ".json"
		files[schemaDir+"/"+name] = b
		desc, _ := s.vals["description"].(string)
		fmt.Fprintf(&index, "| [`%s`](%s) | %s | `%s` | %s |\n", t, name, ann.vals["kind"], ann.vals["subject"], strings.ReplaceAll(desc, "|", "\\|"))
	}
	files[indexFile] = []byte(index.String())
	g := &generator{docs: auDocs}
	s := g.root(reflect.TypeOf(audit.Entry{}), "licensebus audit entry")
	s.set("x-licensebus", newObj().set("stream", audit.Stream).set("subject", audit.Subject))
	b, err := encode(s)
	if err != nil {
		return nil, fmt.Errorf("audit entry: %w", err)
	}
	files[auditEntryFile] = b
	g = &generator{docs: grDocs}
	s = g.root(reflect.TypeOf(grant.File{}), "licensebus license file")
	s.set("x-licensebus", newObj().set("format", grant.FileFormat))
	if b, err = encode(s); err != nil {
		return nil, fmt.Errorf("license file: %w", err)
	}
	files[licenseFile] = b
	return files, nil
}

const indexHead = `# CloudEvent data schemas

One JSON Schema (draft 2020-12) per CloudEvent type, for the ` + "`data`" + ` of the event.
Generated from the Go types by ` + "`go run ./internal/schemagen`" + `; do not edit by hand
(a test fails when these files and the Go types disagree). How the messages
travel is in [docs/consumers.md](../../docs/consumers.md).

| type | kind | subject | description |
|---|---|---|---|
`

// annotation says where a type travels: an x- keyword, which JSON Schema
// validators ignore and readers (and tools) can use. The subject comes from
// the events package's own subject functions, with the aggregate id as a
// placeholder.
func annotation(info events.Info) *obj {
	a := newObj().set("cloudevent_type", string(info.Type))
	key := placeholder{"{" + info.Aggregate + "_id}"}
	if info.Aggregate == "smartserver" {
		key = placeholder{"{install_code}"}
	}
	switch {
	case info.Command:
		a.set("kind", "command").set("side", string(info.Side)).set("subject", events.CommandSubject(info, key))
	case info.Type == events.RejectedType:
		a.set("kind", "rejection").set("subject", "lb.evt.rejected.{aggregate}.{id}")
	default:
		a.set("kind", "event").set("subject", events.EventSubject(info, key))
	}
	if !info.Command {
		a.set("terminal", info.Terminal)
	}
	return a
}

// placeholder is an events.Data whose key is a placeholder.
type placeholder struct{ key string }

func (p placeholder) Validate() error { return nil }
func (p placeholder) Key() string     { return p.key }

// generator turns Go types into schemas.
type generator struct {
	docs docIndex
}

func (g *generator) root(t reflect.Type, title string) *obj {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := newObj().set("$schema", draft).set("title", title)
	if d := g.docs.types[t.Name()]; d != "" {
		s.set("description", d)
	}
	g.fill(s, t)
	return s
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schema is the schema of a value of t (a property or an item).
func (g *generator) schema(t reflect.Type) *obj {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := newObj()
	switch {
	case t == timeType:
		return s.set("type", "string").set("format", "date-time")
	case t == rawType:
		return s.set("description", "any JSON value")
	}
	switch t.Kind() {
	case reflect.String:
		s.set("type", "string")
		if vals := g.docs.enums[t.Name()]; t.PkgPath() != "" && len(vals) > 0 {
			s.set("enum", vals)
		}
	case reflect.Bool:
		s.set("type", "boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s.set("type", "integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s.set("type", "integer").set("minimum", 0)
	case reflect.Float32, reflect.Float64:
		s.set("type", "number")
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return s.set("type", "string").set("contentEncoding", "base64")
		}
		s.set("type", "array").set("items", g.schema(t.Elem()))
	case reflect.Map:
		s.set("type", "object").set("additionalProperties", g.schema(t.Elem()))
	case reflect.Struct:
		if d := g.docs.types[t.Name()]; d != "" {
			s.set("description", d)
		}
		g.fill(s, t)
	default:
		s.set("description", "any JSON value")
	}
	return s
}

// fill adds the properties of struct t: one per JSON member, required
// unless omitempty (what licensebus always writes).
func (g *generator) fill(s *obj, t reflect.Type) {
	props, required := newObj(), []string{}
	g.fields(t, props, &required)
	s.set("type", "object").set("properties", props)
	if len(required) > 0 {
		s.set("required", required)
	}
}

func (g *generator) fields(t reflect.Type, props *obj, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := g.schema(f.Type)
		if d := g.docs.fields[t.Name()+"."+f.Name]; d != "" {
			p = newObj().set("description", d).merge(p)
		}
		props.set(name, p)
		if !strings.Contains(opts, "omitempty") {
			*required = append(*required, name)
		}
	}
}
