package keyring_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/keyring"
)

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// Ensure the first start creates one key, as a 0600 file in a 0700
// directory, and every later start signs with the same key.
func TestFirstStartCreatesTheKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signing")
	r, created, err := keyring.Open(dir, nil, now)
	if err != nil || !created {
		t.Fatalf("Open: created=%v err=%v", created, err)
	}
	k := r.Current()
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("dir mode %v, want 0700", got)
	}
	for _, name := range []string{k.ID + ".key", "ring.json"} {
		if got := mode(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, got)
		}
	}
	again, created, err := keyring.Open(dir, nil, now.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("reopen: created=%v err=%v", created, err)
	}
	if again.Current().ID != k.ID {
		t.Fatalf("reopened ring signs with %s, want %s", again.Current().ID, k.ID)
	}
	if !again.Created(k.ID).Equal(now) {
		t.Fatalf("created %v, want %v", again.Created(k.ID), now)
	}
}

// Ensure rotation makes a new current key once per command, and every
// earlier key stays trusted, across restarts.
func TestRotate(t *testing.T) {
	dir := t.TempDir()
	r, _, err := keyring.Open(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Current()
	second, err := r.Rotate("cmd-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || r.Current().ID != second.ID {
		t.Fatalf("after rotation current is %s (first %s, new %s)", r.Current().ID, first.ID, second.ID)
	}
	if again, err := r.Rotate("cmd-1", now); err != nil || again.ID != second.ID {
		t.Fatalf("the same rotation again made %s (%v), want %s", again.ID, err, second.ID)
	}
	reopened, _, err := keyring.Open(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	trusted := reopened.Trusted()
	if reopened.Current().ID != second.ID || len(trusted) != 2 || trusted[first.ID].Key == nil {
		t.Fatalf("reopened: current %s, trusted %v", reopened.Current().ID, trusted)
	}
}

// Ensure a ring of given keys signs with the first, trusts the others,
// keeps trusting a key given before, and refuses files others can read.
func TestGivenKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) string {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		path := filepath.Join(t.TempDir(), name)
		if err := keyring.WriteKeyFile(path, priv); err != nil {
			t.Fatal(err)
		}
		return path
	}
	oldFile, newFile := write("old.key"), write("new.key")
	r, created, err := keyring.Open(dir, []string{oldFile}, now)
	if err != nil || created || !r.Fixed() {
		t.Fatalf("Open: created=%v fixed=%v err=%v", created, r.Fixed(), err)
	}
	old := r.Current()
	if _, err := r.Rotate("cmd-1", now); err == nil {
		t.Fatal("a given key was rotated")
	}
	r, _, err = keyring.Open(dir, []string{newFile}, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Current().ID == old.ID || r.Trusted()[old.ID].Key == nil {
		t.Fatalf("after the key was replaced: current %s, trusted %v", r.Current().ID, r.Trusted())
	}
	if err := os.Chmod(newFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keyring.Open(dir, []string{newFile}, now); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others can read: %v", err)
	}
	if _, _, err := keyring.Open("", []string{filepath.Join(t.TempDir(), "missing.key")}, now); err == nil {
		t.Fatal("a missing key file was taken")
	}
}

// Ensure key files are what openssl writes and reads: a key made by
// openssl genpkey is taken, and openssl reads the public half of ours.
// Skipped without openssl.
func TestKeyFilesAreOpenSSLs(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", theirs).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	if err := os.Chmod(theirs, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.ReadKeyFile(theirs); err != nil {
		t.Fatalf("openssl's key: %v", err)
	}
	r, _, err := keyring.Open(filepath.Join(dir, "signing"), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkey", "-in", r.CurrentFile(), "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	if pub := r.Current().Public().Key; !strings.HasSuffix(string(out), string(pub)) {
		t.Fatalf("openssl reads another public key")
	}
}
