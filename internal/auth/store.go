package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// GlobalAccount is the account of a server without auth, and the name of
// its JetStream directory.
const GlobalAccount = "$G"

// MoveStore hands an embedded server's JetStream data over from one
// account to another when the server changes modes: the server keeps each
// account's streams under <storeDir>/jetstream/<account>, so the streams a
// server wrote without auth ($G) are the licensebus account's once it runs
// in operator mode, and back. It moves nothing when the target exists
// already or there is nothing to move; moved says whether it did.
func MoveStore(storeDir, from, to string) (moved bool, err error) {
	src, dst := filepath.Join(storeDir, "jetstream", from), filepath.Join(storeDir, "jetstream", to)
	if _, err := os.Stat(dst); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if err := os.Rename(src, dst); err != nil {
		return false, fmt.Errorf("move JetStream data of account %s to %s: %w", from, to, err)
	}
	return true, nil
}
