package main

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/licensebus/licensebus/internal/keyring"
)

// signingDir is where serve keeps the cloud's signing keys in its data
// directory.
const signingDir = "signing"

// openRing opens the cloud's signing keys: the files serve was given
// (--signing-key), else those of the data directory, created on the first
// start. Key material is never logged; key ids are.
func openRing(cfg ServeConfig) (*keyring.Ring, error) {
	dir := cfg.DataDir
	if dir == "" && cfg.NatsURL == "" {
		dir = "licensebus-data"
	}
	if dir == "" && len(cfg.SigningKeys) == 0 {
		return nil, errors.New("a process joining a NATS needs the cluster's signing key (--signing-key FILE) or a data directory (--data) to keep its own")
	}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(abs, signingDir)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	r, created, err := keyring.Open(dir, cfg.SigningKeys, now())
	if err != nil {
		return nil, err
	}
	k := r.Current()
	switch {
	case created:
		cfg.Logger.Info().Str("key_id", k.ID).Str("dir", dir).Msg("created the signing key of license grants")
	case len(cfg.SigningKeys) > 0:
		cfg.Logger.Info().Str("key_id", k.ID).Int("files", len(cfg.SigningKeys)).Msg("signing license grants with the key given")
	default:
		cfg.Logger.Info().Str("key_id", k.ID).Msg("signing license grants")
	}
	if cfg.NatsURL != "" && len(cfg.SigningKeys) == 0 {
		cfg.Logger.Warn().Str("key_id", k.ID).Msg("joining a NATS with a signing key of this process's own: grants of other nodes verify here only if every node has one key (--signing-key)")
	}
	return r, nil
}

// SigningKeyFile is the file of the key the server signs with: what
// another node is given with --signing-key.
func (s *Server) SigningKeyFile() string { return s.ring.CurrentFile() }
