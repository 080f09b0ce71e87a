package domain

import (
	"errors"
	"time"
)

// What a store hands back as it keeps it, declared here so that the
// worker can name it without importing a store.

// ProfileRecord is a stored profile with its deletion mark.
type ProfileRecord struct {
	Profile Profile
	Deleted bool
}

// UserRecord is a stored user with its deletion mark.
type UserRecord struct {
	User    User
	Deleted bool
}

// StoredSecret is one secret opened with the master key.
type StoredSecret struct {
	Name      string
	Plain     []byte
	CreatedAt time.Time // when it was stored (the storing worker's clock)
}

// ErrWrongMasterKey means a stored secret could not be opened: the workers
// do not share one TAT_MASTER_KEY.
var ErrWrongMasterKey = errors.New("stored secret cannot be opened with this master key (do all workers share TAT_MASTER_KEY?)")
