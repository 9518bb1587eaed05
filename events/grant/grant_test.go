package grant_test

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events/grant"
)

// seeded returns a fixed key, so failures are reproducible.
func seeded(b byte) grant.Key {
	return grant.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
}

func sample(k grant.Key, lid string) grant.Grant {
	g := grant.Grant{GrantID: "0b7e3f4e-9a59-5d1c-8a53-2f5b0e6c1d11", LicenseID: lid, CustomerID: "2133c667-af41-4518-94df-a2bb3b775330",
		InstallCode: "IC-0001", Kind: "maintenance", Devices: 200, Expires: "2027-12-31",
		BoundAt: grant.Time(time.Date(2026, 12, 2, 10, 0, 0, 123e6, time.UTC))}
	if err := k.Sign(&g); err != nil {
		panic(err)
	}
	return g
}

func sampleFile(k grant.Key) []byte {
	f := grant.File{Format: grant.FileFormat, IssuedAt: "2026-12-02T10:00:01Z",
		Grants: []grant.Grant{sample(k, "c0ffee00-1111-4222-8333-444455556666")}}
	raw, err := f.Encode()
	if err != nil {
		panic(err)
	}
	return raw
}

// Ensure a signed file reads back and verifies, and that every edit of a
// byte inside a signed value — the terms, the install code, the key id,
// the signature — is a bad signature (or an unknown key), never accepted;
// an edit anywhere else is refused too, as a malformed file at worst.
func TestGrantRoundTripAndEdits(t *testing.T) {
	k := seeded(1)
	keys := grant.Keys{k.ID: k.Public()}
	raw := sampleFile(k)
	f, err := grant.Decode(raw)
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, raw)
	}
	if err := f.Verify(keys); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if again, _ := f.Encode(); !bytes.Equal(again, raw) {
		t.Fatalf("encode(decode(file)) differs:\n%s\n%s", again, raw)
	}
	if f.InstallCode() != "IC-0001" {
		t.Fatalf("InstallCode=%q", f.InstallCode())
	}

	// The values of the grant: every byte between the quotes of a string
	// value, and the digits of devices.
	start := bytes.Index(raw, []byte(`"grant_id"`))
	signedValues := 0
	for i := start; i < len(raw); i++ {
		edited := bytes.Clone(raw)
		edited[i] = swap(raw[i])
		g, err := grant.Decode(edited)
		if err == nil {
			err = g.Verify(keys)
		}
		inValue := insideValue(raw, i)
		switch {
		case err == nil:
			t.Fatalf("edit at %d (%q → %q) verifies", i, raw[i], edited[i])
		case inValue && !errors.Is(err, grant.ErrBadSignature) && !errors.Is(err, grant.ErrUnknownKey):
			t.Errorf("edit of a signed value at %d (%q → %q): %v, want bad_signature", i, raw[i], edited[i], err)
		}
		if inValue {
			signedValues++
		}
	}
	if signedValues < 250 {
		t.Fatalf("only %d bytes of signed values edited", signedValues)
	}
}

// swap changes a byte to another of its kind, so that JSON stays JSON.
func swap(c byte) byte {
	switch {
	case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
		return c + 1
	case c == '9':
		return '0'
	case c == 'z':
		return 'a'
	case c == 'Z':
		return 'A'
	case c == '-':
		return '_'
	case c == '=':
		return 'A'
	case c == '+':
		return '/'
	case c == '/':
		return '+'
	case c == ':':
		return ';'
	case c == '.':
		return ','
	}
	return c ^ 0x20
}

// insideValue says raw[i] is in a value of a grant member: after `": ` on
// its line, and not a quote or comma.
func insideValue(raw []byte, i int) bool {
	lineStart := bytes.LastIndexByte(raw[:i], '\n') + 1
	line := raw[lineStart:]
	if end := bytes.IndexByte(line, '\n'); end >= 0 {
		line = line[:end]
	}
	sep := bytes.Index(line, []byte(`": `))
	if sep < 0 || !bytes.HasPrefix(bytes.TrimLeft(line, " "), []byte(`"`)) || bytes.Contains(line, []byte(`"format"`)) || bytes.Contains(line, []byte(`"issued_at"`)) {
		return false
	}
	pos := i - lineStart
	v := line[sep+3:]
	vs := sep + 3
	if bytes.HasPrefix(v, []byte(`"`)) {
		end := bytes.LastIndexByte(v, '"')
		return pos > vs && pos < vs+end
	}
	digits := bytes.TrimRight(v, ",")
	return pos >= vs && pos < vs+len(digits)
}

// Ensure keys are told apart: another key, a revoked key, a key id edited.
func TestVerifyKeys(t *testing.T) {
	k, other := seeded(1), seeded(2)
	g := sample(k, "c0ffee00-1111-4222-8333-444455556666")
	revoked := k.Public()
	revoked.Revoked = true
	tests := []struct {
		name string
		keys grant.Keys
		want error
	}{
		{"its key", grant.Keys{k.ID: k.Public()}, nil},
		{"no keys", grant.Keys{}, grant.ErrUnknownKey},
		{"another key only", grant.Keys{other.ID: other.Public()}, grant.ErrUnknownKey},
		{"another key under its id", grant.Keys{k.ID: grant.PublicKey{ID: k.ID, Key: other.Public().Key}}, grant.ErrBadSignature},
		{"its key, revoked", grant.Keys{k.ID: revoked}, grant.ErrKeyRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.keys.Verify(&g)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify=%v, want %v", err, tt.want)
			}
		})
	}
}

// Ensure a revocation verifies only under another trusted key.
func TestRevocation(t *testing.T) {
	k, old := seeded(1), seeded(2)
	r := grant.Revocation{KeyID: old.ID, RevokedAt: "2026-12-03T00:00:00Z"}
	if err := k.SignRevocation(&r); err != nil {
		t.Fatal(err)
	}
	keys := grant.Keys{k.ID: k.Public(), old.ID: old.Public()}
	if err := keys.VerifyRevocation(&r); err != nil {
		t.Fatalf("VerifyRevocation: %v", err)
	}
	forged := r
	forged.KeyID = k.ID
	if err := keys.VerifyRevocation(&forged); !errors.Is(err, grant.ErrBadSignature) {
		t.Fatalf("edited revocation: %v", err)
	}
	self := grant.Revocation{KeyID: k.ID, RevokedAt: r.RevokedAt}
	_ = k.SignRevocation(&self)
	if err := keys.VerifyRevocation(&self); !errors.Is(err, grant.ErrBadSignature) {
		t.Fatalf("a key revoking itself: %v", err)
	}
}

// Ensure what is not a license file is refused, saying what is wrong.
func TestDecodeRefuses(t *testing.T) {
	k := seeded(1)
	good := string(sampleFile(k))
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", "hello", "not JSON"},
		{"not UTF-8", "\xff\xfe", "not UTF-8"},
		{"an array", "[]", "not a JSON object"},
		{"no format", `{"grants":[]}`, "missing field format"},
		{"wrong version", strings.Replace(good, "licensebus-license/1", "licensebus-license/2", 1), "wrong version"},
		{"another format", `{"format":"keygen"}`, "wrong version"},
		{"no grants", strings.Replace(good, `"grants"`, `"grunts"`, 1), "missing field grants"},
		{"empty grants", `{"format":"licensebus-license/1","issued_at":"x","grants":[]}`, "grants is empty"},
		{"missing grant field", strings.Replace(good, `"kind": "maintenance",`, "", 1), "missing field kind"},
		{"unknown grant field", strings.Replace(good, `"kind":`, `"note": "x", "kind":`, 1), "unknown field \"note\""},
		{"a member twice", strings.Replace(good, `"kind":`, `"devices": 300, "kind":`, 1), "appears twice"},
		{"devices not a number", strings.Replace(good, `"devices": 200`, `"devices": "200"`, 1), "devices is not a number"},
		{"devices a fraction", strings.Replace(good, `"devices": 200`, `"devices": 200.5`, 1), "not a whole number"},
		{"trailing data", good + "{}", "more after"},
		{"too large", `{"format":"` + strings.Repeat("x", grant.MaxFileSize) + `"}`, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grant.Decode([]byte(tt.in))
			if !errors.Is(err, grant.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode=%v, want malformed saying %q", err, tt.want)
			}
		})
	}
}

// FuzzDecode holds the decoder to: no panic on any input, and a file it
// accepts encodes to a file that decodes to the same grants with the same
// signed bytes.
func FuzzDecode(f *testing.F) {
	k := seeded(1)
	f.Add(sampleFile(k))
	f.Add([]byte(`{"format":"licensebus-license/1","issued_at":"x","grants":[{}]}`))
	f.Add([]byte(`{"format":"licensebus-license/1","grants":[{"devices":1e400}]}`))
	f.Add([]byte(`[[[[[[[[[[[[]]]]]]]]]]]]`))
	keys := grant.Keys{k.ID: k.Public()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := grant.Decode(raw)
		if err != nil {
			if !errors.Is(err, grant.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		_ = file.Verify(keys)
		enc, err := file.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		back, err := grant.Decode(enc)
		if err != nil {
			t.Fatalf("decode(encode(file)): %v\n%s", err, enc)
		}
		if len(back.Grants) != len(file.Grants) {
			t.Fatalf("%d grants, then %d", len(file.Grants), len(back.Grants))
		}
		for i := range file.Grants {
			a, _ := file.Grants[i].Signed()
			b, _ := back.Grants[i].Signed()
			if !bytes.Equal(a, b) || file.Grants[i] != back.Grants[i] {
				t.Fatalf("grant %d changed in a round trip", i)
			}
		}
	})
}

// BenchmarkSign and BenchmarkVerify are the signature's cost per
// activation: the cloud signs one grant, the device side verifies it.
func BenchmarkSign(b *testing.B) {
	k := seeded(1)
	g := sample(k, "c0ffee00-1111-4222-8333-444455556666")
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Sign(&g); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := seeded(1)
	g := sample(k, "c0ffee00-1111-4222-8333-444455556666")
	keys := grant.Keys{k.ID: k.Public()}
	b.ReportAllocs()
	for b.Loop() {
		if err := keys.Verify(&g); err != nil {
			b.Fatal(err)
		}
	}
}

// countingSigner counts the signatures it makes.
type countingSigner struct {
	ed25519.PrivateKey
	n int
}

func (c *countingSigner) Sign(r io.Reader, msg []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n++
	return c.PrivateKey.Sign(r, msg, o)
}

// Ensure what adapters use to keep signatures out of their locks changes
// nothing but the cost: a remembering key signs a grant once and gives the
// same signature again; a memo gives a grant's first outcome again, and
// tells another grant (or the same, edited) apart.
func TestMemoAndRemembering(t *testing.T) {
	base := seeded(1)
	cs := &countingSigner{PrivateKey: base.Signer.(ed25519.PrivateKey)}
	k := grant.Key{ID: base.ID, Signer: cs}.Remembering()
	a, b := sample(base, "c0ffee00-1111-4222-8333-444455556666"), sample(base, "c0ffee00-1111-4222-8333-444455556666")
	if err := k.Sign(&a); err != nil {
		t.Fatal(err)
	}
	if err := k.Sign(&b); err != nil {
		t.Fatal(err)
	}
	if cs.n != 1 || a.Signature != b.Signature || a != sample(base, "c0ffee00-1111-4222-8333-444455556666") {
		t.Fatalf("%d signatures made; want one, the same as without remembering", cs.n)
	}
	memo := grant.NewMemo(grant.Keys{base.ID: base.Public()})
	edited := a
	edited.Devices++
	for range 2 {
		if err := memo.Verify(&a); err != nil {
			t.Fatal(err)
		}
		if err := memo.Verify(&edited); !errors.Is(err, grant.ErrBadSignature) {
			t.Fatalf("edited grant through the memo: %v", err)
		}
	}
}
