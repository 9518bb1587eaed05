package grant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// FileFormat is the format (and version) of license files this package
// reads and writes.
const FileFormat = "licensebus-license/1"

// MaxFileSize bounds a license file: far more grants than a SmartServer
// holds, and less than a licensebus command may carry.
const MaxFileSize = 512 << 10

// File is a license file: the signed grants of licenses bound to a
// SmartServer, which it imports offline. Only the grants are signed; the
// other members say what the document is.
type File struct {
	Format   string  `json:"format"`    // always "licensebus-license/1"
	IssuedAt string  `json:"issued_at"` // when the file was written (RFC 3339, UTC); not signed
	Grants   []Grant `json:"grants"`    // one or more signed grants
}

// Members of a file and of a grant, exactly: anything else is refused, so
// that a file says nothing its signatures do not cover but its format and
// date.
var (
	fileMembers  = []string{"format", "issued_at", "grants"}
	grantMembers = []string{"grant_id", "license_id", "customer_id", "install_code", "kind", "devices", "expires", "bound_at", "key_id", "signature"}
)

// Decode reads a license file strictly: one JSON object of the format's
// members and nothing else, no member twice, every grant complete. It does
// not check signatures (Verify does), so that an edited value reads as a
// bad signature rather than as a malformed file. Errors wrap ErrMalformed
// and say what is wrong.
func Decode(raw []byte) (*File, error) {
	bad := func(format string, args ...any) (*File, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(raw) > MaxFileSize {
		return bad("%d bytes; a license file has at most %d", len(raw), MaxFileSize)
	}
	if !utf8.Valid(raw) {
		return bad("not UTF-8 text")
	}
	v, err := decodeStrict(raw)
	if err != nil {
		return bad("not JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return bad("not a JSON object")
	}
	f := &File{}
	format, ok := obj["format"]
	if !ok {
		return bad("missing field format (a license file starts with \"format\": %q)", FileFormat)
	}
	if f.Format, ok = format.(string); !ok {
		return bad("format is not a string")
	}
	if f.Format != FileFormat {
		return bad("wrong version: format %q; this build reads %q", f.Format, FileFormat)
	}
	if err := members(obj, fileMembers, "file", "issued_at"); err != nil {
		return bad("%v", err)
	}
	if f.IssuedAt, err = str(obj, "issued_at", "file", false); err != nil {
		return bad("%v", err)
	}
	list, ok := obj["grants"].([]any)
	if !ok {
		return bad("grants is not an array")
	}
	if len(list) == 0 {
		return bad("grants is empty")
	}
	for i, item := range list {
		where := fmt.Sprintf("grants[%d]", i)
		g, ok := item.(map[string]any)
		if !ok {
			return bad("%s is not an object", where)
		}
		gr, err := grantOf(g, where)
		if err != nil {
			return bad("%v", err)
		}
		f.Grants = append(f.Grants, gr)
	}
	return f, nil
}

// grantOf reads one grant object.
func grantOf(g map[string]any, where string) (Grant, error) {
	var gr Grant
	if err := members(g, grantMembers, where, "expires"); err != nil {
		return gr, err
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"grant_id", &gr.GrantID}, {"license_id", &gr.LicenseID}, {"customer_id", &gr.CustomerID}, {"install_code", &gr.InstallCode},
		{"kind", &gr.Kind}, {"bound_at", &gr.BoundAt}, {"key_id", &gr.KeyID}, {"signature", &gr.Signature}} {
		s, err := str(g, f.name, where, false)
		if err != nil {
			return gr, err
		}
		*f.to = s
	}
	var err error
	if gr.Expires, err = str(g, "expires", where, true); err != nil {
		return gr, err
	}
	n, ok := g["devices"].(json.Number)
	if !ok {
		return gr, fmt.Errorf("%s.devices is not a number", where)
	}
	d, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || d < 0 || d > math.MaxInt32 {
		return gr, fmt.Errorf("%s.devices %s is not a whole number of devices", where, n)
	}
	gr.Devices = int(d)
	return gr, nil
}

// members checks obj has each name of want (but those of optional may be
// missing) and no other.
func members(obj map[string]any, want []string, where string, optional ...string) error {
	for _, k := range want {
		if _, ok := obj[k]; !ok && !contains(optional, k) {
			return fmt.Errorf("missing field %s in %s", k, where)
		}
	}
	for k := range obj {
		if !contains(want, k) {
			return fmt.Errorf("unknown field %q in %s", k, where)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str reads a string member; an optional one may be absent (""), but
// present it is a non-empty string like the rest.
func str(obj map[string]any, name, where string, optional bool) (string, error) {
	v, ok := obj[name]
	if !ok && optional {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s is not a string", where, name)
	}
	if s == "" {
		return "", fmt.Errorf("%s.%s is empty", where, name)
	}
	return s, nil
}

// decodeStrict decodes one JSON value with numbers as written, refusing a
// member name twice in an object (which a map would silently keep one of)
// and anything after the value.
func decodeStrict(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := value(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more after the JSON value")
	}
	return v, nil
}

// maxDepth bounds nesting: a license file is three levels deep.
const maxDepth = 8

func value(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deep")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := t.(type) {
	case json.Delim:
		switch d {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("member %q appears twice", k)
				}
				if obj[k], err = value(dec, depth+1); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := value(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", d)
	}
	return t, nil
}

// Encode writes f as people read it: indented JSON and a final newline.
// Decode reads it back as it was.
func (f *File) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Verify checks every grant's signature; the first that fails is the
// error.
func (f *File) Verify(keys Keys) error {
	for i := range f.Grants {
		if err := keys.Verify(&f.Grants[i]); err != nil {
			return err
		}
	}
	return nil
}

// InstallCode is the SmartServer the file's grants are for, "" if they
// name more than one (a file is for one SmartServer).
func (f *File) InstallCode() string {
	ic := ""
	for _, g := range f.Grants {
		switch {
		case ic == "":
			ic = g.InstallCode
		case g.InstallCode != ic:
			return ""
		}
	}
	return ic
}
