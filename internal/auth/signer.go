package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Signer signs user JWTs for one account, with a scoped signing key of a
// role or with the account's own key.
//
// A user signed by a scoped signing key carries no permissions: the NATS
// server applies the role's template from the account JWT (Scope), with the
// user's name for {{name()}}. JWTs stay small (a SmartServer's is under
// 1 KB; a reader's permissions written out would be 8 KB, past the 4 KB a
// server takes in a CONNECT by default), and a change of a role reaches
// every holder with the account JWT, without new credentials. A user
// signed by the account's own key carries its permissions itself.
type Signer struct {
	key     nkeys.KeyPair
	pub     string
	account string
}

// NewSigner returns a Signer for the account seed. account is the account's
// public key; empty means the seed is the account's own key. Otherwise the
// seed must be a scoped signing key of the account for the role the users
// are signed for: the NATS server checks it is a signing key of the
// account, and applies that key's template.
func NewSigner(seed []byte, account string) (*Signer, error) {
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("account seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	if !nkeys.IsValidPublicAccountKey(pub) {
		return nil, errors.New("account seed: not an account key (account seeds start with SA)")
	}
	if account == "" {
		account = pub
	}
	if !nkeys.IsValidPublicAccountKey(account) {
		return nil, fmt.Errorf("account %q is not an account public key (those start with A)", account)
	}
	return &Signer{key: kp, pub: pub, account: account}, nil
}

// Account is the public key of the account the Signer signs for.
func (s *Signer) Account() string { return s.account }

// Key is the signing key's public key.
func (s *Signer) Key() string { return s.pub }

// Scoped says whether the Signer is a signing key rather than the
// account's own key.
func (s *Signer) Scoped() bool { return s.pub != s.account }

// RoleTag marks a user JWT with its role, so that the record of a JWT
// signed elsewhere and a refusal's log line can name it.
const roleTag = "role:"

// Sign returns a user JWT for id and the user's public key, expiring at
// expires (zero: never), with the role's permissions.
func (s *Signer) Sign(id Identity, userPub string, expires time.Time) (string, error) {
	if err := id.Validate(); err != nil {
		return "", err
	}
	if !nkeys.IsValidPublicUserKey(userPub) {
		return "", fmt.Errorf("%q is not a user public key (those start with U)", userPub)
	}
	uc := jwt.NewUserClaims(userPub)
	uc.Name = id.Name
	uc.Tags.Add(roleTag + string(id.Role))
	if s.Scoped() {
		uc.IssuerAccount = s.account
		uc.SetScoped(true)
	} else {
		uc.Permissions = Permissions(id)
	}
	if !expires.IsZero() {
		uc.Expires = expires.Unix()
	}
	return uc.Encode(s.key)
}

// NewUser makes a key pair for a user and signs its JWT: the JWT and the
// seed, which together are a creds file.
func (s *Signer) NewUser(id Identity, expires time.Time) (token string, seed []byte, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", nil, err
	}
	pub, _ := kp.PublicKey()
	if token, err = s.Sign(id, pub, expires); err != nil {
		return "", nil, err
	}
	seed, err = kp.Seed()
	return token, seed, err
}

// IdentityOf reads the identity a user JWT speaks for from its name and
// role tag; ok is false for JWTs licensebus did not sign.
func IdentityOf(uc *jwt.UserClaims) (Identity, bool) {
	for _, t := range uc.Tags {
		if r, found := strings.CutPrefix(t, roleTag); found {
			if role, err := ParseRole(r); err == nil {
				return Identity{Name: uc.Name, Role: role}, true
			}
		}
	}
	return Identity{Name: uc.Name}, false
}
