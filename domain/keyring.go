package domain

import (
	"slices"
	"time"
)

// Session-signing key rotation. Each key of the fleet is a record stored
// once, by an insert under a unique name, with times fixed when it was
// recorded; every worker derives a key's state from those times and its
// own clock, so no record is ever updated and the workers agree without
// talking to each other:
//
//	record n (made at P):  publish_at P, sign_from S = P + KeyPublishWindow + skew,
//	                       retire_previous_at R = S + SessionJWTLifetime + skew
//
//	key n-1:  ... signing ─────────────┤ S: verifying ─────┤ R: retired
//	key n:        P: next (published) ─┤ S: signing ...
//
// A key is published (JWKS) and verifies from the moment a worker knows it
// until it is retired; it signs from sign_from until the next key's
// sign_from. A new key is published for a whole window before any worker
// signs with it, so every worker (and every relying party that caches the
// JWKS for its max-age) verifies it first; the old key verifies until every
// JWT it signed has expired (SessionJWTLifetime) plus the clock skew.

// KeyState is where a session-signing key is in its life at an instant.
type KeyState string

// Key states.
const (
	// KeyNext: published and verifying, not signing yet.
	KeyNext KeyState = "next"
	// KeySigning: signs new session JWTs (and verifies).
	KeySigning KeyState = "signing"
	// KeyVerifying: a newer key signs; still published, verifies the JWTs
	// this one signed until they have expired.
	KeyVerifying KeyState = "verifying"
	// KeyRetired: neither published nor accepted.
	KeyRetired KeyState = "retired"
)

// KeyPublishWindow is how long a new key is published before it signs,
// before the clock skew is added: the max-age of /.well-known/jwks.json
// (300 s), so a relying party's cached JWKS holds the key before any JWT
// names it. Workers learn of a new key within seconds (the rotated event)
// or at worst within their re-read interval, far inside the window.
const KeyPublishWindow = 5 * time.Minute

// MinKeyRotationInterval is the shortest schedule TAT_SESSION_KEY_ROTATION
// may set (0 disables the schedule).
const MinKeyRotationInterval = time.Hour

// KeyTimes are the instants a key's state changes; a zero time is
// unbounded (the fleet's first key signs from the beginning; the newest
// key has no end).
type KeyTimes struct {
	PublishAt time.Time // recorded and published (information: a key verifies as soon as it is known)
	SignFrom  time.Time // signs from here ...
	SignUntil time.Time // ... until here: the next key's SignFrom
	RetireAt  time.Time // no longer published or accepted from here
}

// StateAt is the key's state at now. The boundaries belong to the later
// state: at exactly SignFrom the key signs, at exactly SignUntil it only
// verifies, at exactly RetireAt it is retired.
func (t KeyTimes) StateAt(now time.Time) KeyState {
	switch {
	case !t.RetireAt.IsZero() && !now.Before(t.RetireAt):
		return KeyRetired
	case !t.SignUntil.IsZero() && !now.Before(t.SignUntil):
		return KeyVerifying
	case now.Before(t.SignFrom):
		return KeyNext
	}
	return KeySigning
}

// KeyRecord is the public part of a stored session-signing key record:
// what the rotation that made it fixed, once.
type KeyRecord struct {
	// Number orders the fleet's keys: 1 is the first (the record
	// "session-keys-v1" of workers before rotation), each rotation inserts
	// Number+1 of the newest.
	Number int
	KID    string
	// PublishAt, SignFrom and RetirePrevious are zero for key 1.
	PublishAt time.Time
	SignFrom  time.Time
	// RetirePrevious is when key Number-1 is retired.
	RetirePrevious time.Time
	// ChangeID is the rotate command that made the key ("" for the schedule
	// and for key 1).
	ChangeID string
	// CreatedAt is when the record was stored (the store's clock): the
	// schedule counts key 1's age from it.
	CreatedAt time.Time
}

// KeyTimesOf returns the times of each record, in Number order: a key's
// SignUntil is its successor's SignFrom, its RetireAt its successor's
// RetirePrevious. recs may be in any order.
func KeyTimesOf(recs []KeyRecord) []KeyTimes {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b KeyRecord) int { return a.Number - b.Number })
	out := make([]KeyTimes, len(sorted))
	for i, r := range sorted {
		out[i] = KeyTimes{PublishAt: r.PublishAt, SignFrom: r.SignFrom}
		if i+1 < len(sorted) {
			out[i].SignUntil = sorted[i+1].SignFrom
			out[i].RetireAt = sorted[i+1].RetirePrevious
		}
	}
	return out
}

// PlanRotation returns the record of the key that follows latest (the
// newest record), made at now: published now, signing after
// KeyPublishWindow plus skew, and retiring latest SessionJWTLifetime plus
// skew after that. Times are whole seconds. While latest is still in its
// publish window (now before its SignFrom) no rotation is planned
// (ErrKeyRotationInProgress): rotations cannot be stacked faster than one
// per window, and a key always signs before the next one is recorded.
func PlanRotation(latest KeyRecord, now time.Time, skew time.Duration) (KeyRecord, error) {
	now = now.UTC().Truncate(time.Second)
	if now.Before(latest.SignFrom) {
		return KeyRecord{}, ErrKeyRotationInProgress.With("key %d (%s) is published and starts signing at %s: rotate again after that",
			latest.Number, latest.KID, latest.SignFrom.UTC().Format(time.RFC3339))
	}
	signFrom := now.Add(KeyPublishWindow + skew)
	return KeyRecord{Number: latest.Number + 1, PublishAt: now, SignFrom: signFrom,
		RetirePrevious: signFrom.Add(SessionJWTLifetime + skew)}, nil
}

// RotationDue reports whether the schedule (every interval; 0: never)
// calls for a rotation after latest at now. A key's age counts from its
// SignFrom, key 1's from when its record was stored.
func RotationDue(latest KeyRecord, interval time.Duration, now time.Time) bool {
	if interval <= 0 {
		return false
	}
	since := latest.SignFrom
	if since.IsZero() {
		since = latest.CreatedAt
	}
	return !since.IsZero() && !now.Before(since.Add(interval))
}

// KeyInfo is what may be said of a session-signing key: never private
// material. The keys list (state as of the read) and the rotated event
// (no state) carry it.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Number    int       `json:"number"`
	State     KeyState  `json:"state,omitempty"`
	PublishAt time.Time `json:"publish_at,omitzero"`
	SignFrom  time.Time `json:"sign_from,omitzero"`
	SignUntil time.Time `json:"sign_until,omitzero"`
	RetireAt  time.Time `json:"retire_at,omitzero"`
}

// KeyInfos describes recs with their times, in Number order, with each
// key's state at now (now zero: no state).
func KeyInfos(recs []KeyRecord, now time.Time) []KeyInfo {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b KeyRecord) int { return a.Number - b.Number })
	times := KeyTimesOf(sorted)
	out := make([]KeyInfo, len(sorted))
	for i, r := range sorted {
		t := times[i]
		out[i] = KeyInfo{KID: r.KID, Number: r.Number, PublishAt: t.PublishAt, SignFrom: t.SignFrom,
			SignUntil: t.SignUntil, RetireAt: t.RetireAt}
		if !now.IsZero() {
			out[i].State = t.StateAt(now)
		}
	}
	return out
}

// OpRotate is the one operation of a keys command.
const OpRotate = "rotate"

// KeysCommand is the payload of <prefix>.keys.commands.
type KeysCommand struct {
	ChangeID string `json:"change_id,omitempty"`
	Op       string `json:"op"`
}

// Validate checks the command's shape.
func (c KeysCommand) Validate() error {
	if c.Op != OpRotate {
		return ErrInvalidRequest.With("op must be rotate")
	}
	return nil
}

// ErrKeyRotationInProgress refuses a rotation while the newest key is
// still in its publish window.
var ErrKeyRotationInProgress = sentinel("key_rotation_in_progress", 409, "a new session-signing key is still in its publish window")

// Events of session-signing key rotation.
const (
	EventKeysRotated  = "tat.keys.rotated"
	EventKeysRejected = "tat.keys.rejected"
	EventKeysRepeated = "tat.keys.repeated"
)
