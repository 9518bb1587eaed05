package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Creds is a creds file: a user JWT and the seed of its key.
type Creds struct {
	Path   string
	JWT    string
	Seed   []byte
	Claims *jwt.UserClaims
}

// Identity is who the creds speak for, as their JWT says.
func (c *Creds) Identity() Identity {
	id, _ := IdentityOf(c.Claims)
	return id
}

// Expired says whether the JWT's expiry has passed at now.
func (c *Creds) Expired(now time.Time) bool {
	return c.Claims.Expires != 0 && now.Unix() >= c.Claims.Expires
}

// InboxPrefix is the inbox the user may subscribe to: the identity's own
// for a licensebus role, "" (the client's default) for the service and for
// users licensebus did not sign.
func (c *Creds) InboxPrefix() string {
	id, ok := IdentityOf(c.Claims)
	if !ok || id.Role == Service {
		return ""
	}
	return InboxPrefix(id.Name)
}

// credsBlock finds the armoured blocks of a creds file: the JWT first,
// then the seed.
var credsBlock = regexp.MustCompile(`(?s)-{3,}[^\n]*BEGIN ([^\n-]+)-{3,}\s*\n(.*?)\n\s*-{3,}[^\n]*END [^\n-]+-{3,}`)

// ReadCreds reads and checks a creds file: it must hold a user JWT whose
// signature verifies and the user seed of that JWT's key. Errors say what
// is wrong without quoting the secret.
func ReadCreds(path string) (*Creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCreds(path, b)
}

// ParseCreds is ReadCreds on the file's contents.
func ParseCreds(path string, b []byte) (*Creds, error) {
	blocks := credsBlock.FindAllSubmatch(b, -1)
	var token, seed []byte
	for _, m := range blocks {
		kind := string(bytes.ToUpper(bytes.TrimSpace(m[1])))
		switch {
		case bytes.Contains([]byte(kind), []byte("JWT")) && token == nil:
			token = bytes.TrimSpace(m[2])
		case bytes.Contains([]byte(kind), []byte("SEED")) && seed == nil:
			seed = bytes.TrimSpace(m[2])
		}
	}
	if token == nil {
		return nil, errors.New("no user JWT in it (a creds file has a BEGIN NATS USER JWT block)")
	}
	if seed == nil {
		return nil, errors.New("no user seed in it (a creds file has a BEGIN USER NKEY SEED block)")
	}
	uc, err := jwt.DecodeUserClaims(string(token))
	if err != nil {
		return nil, fmt.Errorf("its user JWT is not valid (edited or truncated?): %w", err)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("its seed is not valid (edited or truncated?): %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, errors.New("its seed is not a user seed (those start with SU)")
	}
	if pub != uc.Subject {
		return nil, fmt.Errorf("its seed is not the key of its JWT (JWT for %s, seed of %s)", uc.Subject, pub)
	}
	return &Creds{Path: path, JWT: string(token), Seed: seed, Claims: uc}, nil
}

// WriteCreds writes a creds file with mode 0600. It does not overwrite an
// existing file: credentials are replaced by revoking and issuing anew.
func WriteCreds(path, token string, seed []byte) error {
	b, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// IssueCreds signs new credentials of id, without expiry, with the key of
// its role, and writes them as a creds file at path (never over an
// existing one).
func (a *Authority) IssueCreds(path string, id Identity) error {
	token, seed, err := a.Signer(id.Role).NewUser(id, time.Time{})
	if err != nil {
		return err
	}
	return WriteCreds(path, token, seed)
}
