package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Authority holds the keys of the embedded server's trust chain: an
// operator, the system account, the licensebus account, and one scoped
// signing key of that account per role. It is created on first start and
// kept in a directory of 0600 files; restarts reuse it, so credentials
// issued once stay valid.
type Authority struct {
	dir      string
	operator nkeys.KeyPair
	opClaims *jwt.OperatorClaims
	system   nkeys.KeyPair
	sysJWT   string
	account  nkeys.KeyPair
	accPub   string
	service  *Signer
	signers  map[Role]*Signer

	mu       sync.Mutex
	accJWT   string
	resolver *server.MemAccResolver
}

// The files of an Authority's directory.
const (
	operatorSeedFile = "operator.nk"
	operatorJWTFile  = "operator.jwt"
	systemSeedFile   = "system.nk"
	systemJWTFile    = "system.jwt"
	accountSeedFile  = "account.nk"
	accountJWTFile   = "account.jwt"
)

// roleSeedFile holds the scoped signing key of a role.
func roleSeedFile(r Role) string { return string(r) + "-role.nk" }

// AccountName is the name in the licensebus account's JWT.
const AccountName = "licensebus"

// OpenAuthority loads the keys in dir, creating them first if dir does not
// exist yet; created says it did.
func OpenAuthority(dir string) (a *Authority, created bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := createAuthority(dir); err != nil {
			return nil, false, err
		}
		created = true
	} else if err != nil {
		return nil, false, err
	}
	a, err = loadAuthority(dir)
	return a, created, err
}

// createAuthority writes a new trust chain into a temporary directory and
// renames it into place, so a crash leaves either none or all of it.
func createAuthority(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".auth-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	op, err := nkeys.CreateOperator()
	if err != nil {
		return err
	}
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return err
	}
	acc, err := nkeys.CreateAccount()
	if err != nil {
		return err
	}
	opPub, _ := op.PublicKey()
	sysPub, _ := sys.PublicKey()
	accPub, _ := acc.PublicKey()
	seeds := map[string]nkeys.KeyPair{operatorSeedFile: op, systemSeedFile: sys, accountSeedFile: acc}
	ac := jwt.NewAccountClaims(accPub)
	for _, r := range Roles {
		sk, err := nkeys.CreateAccount()
		if err != nil {
			return err
		}
		seeds[roleSeedFile(r)] = sk
		pub, _ := sk.PublicKey()
		ac.SigningKeys.AddScopedSigner(Scope(r, pub))
	}

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "licensebus"
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	if err != nil {
		return err
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(op)
	if err != nil {
		return err
	}
	ac.Name = AccountName
	// JetStream without limits, as the embedded server had before auth.
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit}
	accJWT, err := ac.Encode(op)
	if err != nil {
		return err
	}
	files := map[string][]byte{operatorJWTFile: []byte(opJWT), systemJWTFile: []byte(sysJWT), accountJWTFile: []byte(accJWT)}
	for name, kp := range seeds {
		seed, err := kp.Seed()
		if err != nil {
			return err
		}
		files[name] = seed
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func loadAuthority(dir string) (*Authority, error) {
	a := &Authority{dir: dir}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("auth keys: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	seed := func(name string) (nkeys.KeyPair, error) {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		kp, err := nkeys.FromSeed(b)
		if err != nil {
			return nil, fmt.Errorf("auth keys: %s: %w", filepath.Join(dir, name), err)
		}
		return kp, nil
	}
	var err error
	if a.operator, err = seed(operatorSeedFile); err != nil {
		return nil, err
	}
	if a.system, err = seed(systemSeedFile); err != nil {
		return nil, err
	}
	if a.account, err = seed(accountSeedFile); err != nil {
		return nil, err
	}
	opJWT, err := read(operatorJWTFile)
	if err != nil {
		return nil, err
	}
	if a.opClaims, err = jwt.DecodeOperatorClaims(string(opJWT)); err != nil {
		return nil, fmt.Errorf("auth keys: %s: %w", operatorJWTFile, err)
	}
	sysJWT, err := read(systemJWTFile)
	if err != nil {
		return nil, err
	}
	accJWT, err := read(accountJWTFile)
	if err != nil {
		return nil, err
	}
	a.sysJWT, a.accJWT = string(sysJWT), string(accJWT)
	opPub, _ := a.operator.PublicKey()
	sysPub, _ := a.system.PublicKey()
	a.accPub, _ = a.account.PublicKey()
	ac, err := jwt.DecodeAccountClaims(a.accJWT)
	if err != nil {
		return nil, fmt.Errorf("auth keys: %s: %w", accountJWTFile, err)
	}
	sc, err := jwt.DecodeAccountClaims(a.sysJWT)
	if err != nil {
		return nil, fmt.Errorf("auth keys: %s: %w", systemJWTFile, err)
	}
	if a.opClaims.Subject != opPub || ac.Issuer != opPub || ac.Subject != a.accPub || sc.Issuer != opPub || sc.Subject != sysPub || a.opClaims.SystemAccount != sysPub {
		return nil, fmt.Errorf("auth keys in %s do not belong together", dir)
	}
	accSeed, _ := a.account.Seed()
	if a.service, err = NewSigner(accSeed, ""); err != nil {
		return nil, err
	}
	a.signers = map[Role]*Signer{}
	for _, r := range Roles {
		b, err := read(roleSeedFile(r))
		if err != nil {
			return nil, err
		}
		if a.signers[r], err = NewSigner(b, a.accPub); err != nil {
			return nil, err
		}
		if !ac.SigningKeys.Contains(a.signers[r].pub) {
			return nil, fmt.Errorf("auth keys: %s is not a signing key of the account", roleSeedFile(r))
		}
	}
	if err := a.refreshScopes(ac); err != nil {
		return nil, err
	}
	return a, nil
}

// refreshScopes writes the roles' current templates into the account JWT
// when a new build changed them: the holders of credentials get the new
// permissions with the account JWT.
func (a *Authority) refreshScopes(ac *jwt.AccountClaims) error {
	changed := false
	for _, r := range Roles {
		want := Scope(r, a.signers[r].pub)
		if got, ok := ac.SigningKeys.GetScope(want.Key); !ok || !reflect.DeepEqual(got, want) {
			ac.SigningKeys.AddScopedSigner(want)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	token, err := ac.Encode(a.operator)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(a.dir, accountJWTFile), []byte(token)); err != nil {
		return fmt.Errorf("auth keys: %w", err)
	}
	a.accJWT = token
	return nil
}

// Account is the licensebus account's public key: the account every
// identity belongs to, and the name of its JetStream directory.
func (a *Authority) Account() string { return a.accPub }

// Signer signs users of a role with the role's scoped signing key, and the
// service with the account's own key.
func (a *Authority) Signer(r Role) *Signer {
	if r == Service {
		return a.service
	}
	return a.signers[r]
}

// Configure puts the embedded server in operator mode: it trusts the
// operator, resolves the two accounts from memory, and runs the system
// account (whose subjects carry claim updates and auth advisories).
func (a *Authority) Configure(opts *server.Options) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sysPub, _ := a.system.PublicKey()
	a.resolver = &server.MemAccResolver{}
	_ = a.resolver.Store(sysPub, a.sysJWT)
	_ = a.resolver.Store(a.accPub, a.accJWT)
	opts.TrustedOperators = []*jwt.OperatorClaims{a.opClaims}
	opts.AccountResolver = a.resolver
	opts.SystemAccount = sysPub
}

// SystemUser returns a user JWT and seed of the system account, for the
// service's connection that pushes claim updates and hears advisories.
func (a *Authority) SystemUser() (string, []byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", nil, err
	}
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "serve-system"
	token, err := uc.Encode(a.system)
	if err != nil {
		return "", nil, err
	}
	seed, err := kp.Seed()
	return token, seed, err
}

// AccountJWT is the licensebus account's current JWT.
func (a *Authority) AccountJWT() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.accJWT
}

// Revoke adds a revocation of every JWT issued to the user key up to at to
// the account JWT, stores it, and returns it to be pushed to the server.
func (a *Authority) Revoke(userPub string, at time.Time) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ac, err := jwt.DecodeAccountClaims(a.accJWT)
	if err != nil {
		return "", err
	}
	ac.RevokeAt(userPub, at)
	token, err := ac.Encode(a.operator)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(a.dir, accountJWTFile), []byte(token)); err != nil {
		return "", fmt.Errorf("auth keys: %w", err)
	}
	a.accJWT = token
	if a.resolver != nil {
		_ = a.resolver.Store(a.accPub, token)
	}
	return token, nil
}

// Revoked says whether the account revokes a user JWT.
func (a *Authority) Revoked(uc *jwt.UserClaims) bool {
	ac, err := jwt.DecodeAccountClaims(a.AccountJWT())
	return err == nil && uc != nil && ac.Revocations.IsRevoked(uc.Subject, time.Unix(uc.IssuedAt, 0))
}

// writeFileAtomic replaces path with b, mode 0600, by a rename.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// accountUpdateSubject is where a system-account client sends an account
// JWT for the server to apply, as `nsc push` does to a server without a
// full resolver.
const accountUpdateSubject = "$SYS.REQ.ACCOUNT.%s.CLAIMS.UPDATE"

// PushAccount sends an account JWT to the server over sys, a connection of
// the system account. The server applies it at once: the connections of
// users it revokes are closed.
func PushAccount(ctx context.Context, sys *nats.Conn, accountJWT string) error {
	ac, err := jwt.DecodeAccountClaims(accountJWT)
	if err != nil {
		return err
	}
	msg, err := sys.RequestWithContext(ctx, fmt.Sprintf(accountUpdateSubject, ac.Subject), []byte(accountJWT))
	if err != nil {
		return fmt.Errorf("push account JWT: %w", err)
	}
	var r server.ServerAPIClaimUpdateResponse
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("push account JWT: %w", err)
	}
	if r.Error != nil {
		return fmt.Errorf("push account JWT: %s", r.Error.Description)
	}
	return nil
}

// Revoker revokes on the running server: it adds the revocation to the
// account JWT and pushes that over sys.
func (a *Authority) Revoker(sys *nats.Conn) Revoker {
	return func(ctx context.Context, userPub string, at time.Time) error {
		token, err := a.Revoke(userPub, at)
		if err != nil {
			return err
		}
		return PushAccount(ctx, sys, token)
	}
}
