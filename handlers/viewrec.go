package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/tat-worker/attest/domain"
)

// The view's records are compact: every worker holds every user and live
// session in memory, so bytes per record bound how many users one worker
// serves (see docs/BENCHMARKS.md). Records are byte strings held outside
// the Go heap (viewmem.go). Values that repeat across records are symbols
// (profile ids, factor types, delivery methods and user statuses, a
// uvarint each); times are unix nanoseconds; custom claims stay as the
// JSON they were encoded to until someone reads the session. Records are
// written under the view's write lock and decoded into domain values under
// its read lock.

// stamp is a time as unix nanoseconds; zeroStamp is the zero time.
type stamp int64

const zeroStamp = stamp(math.MinInt64)

// Times the domain makes lie between 1678 and 2262, the range of unix
// nanoseconds; a time outside it is kept at the nearest end.
var (
	minStampTime = time.Unix(0, math.MinInt64+1)
	maxStampTime = time.Unix(0, math.MaxInt64)
)

func toStamp(t time.Time) stamp {
	switch {
	case t.IsZero():
		return zeroStamp
	case t.Before(minStampTime):
		return stamp(math.MinInt64 + 1)
	case t.After(maxStampTime):
		return stamp(math.MaxInt64)
	}
	return stamp(t.UnixNano())
}

func (s stamp) time() time.Time {
	if s == zeroStamp {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

// sym names a string of the view's symbol table; 0 is "". Only values of
// few distinct kinds become symbols (profile ids, factor types, delivery
// methods, statuses), so the table stays small.
type sym uint32

type symtab struct {
	ids  map[string]sym
	strs []string
}

func newSymtab() symtab { return symtab{ids: map[string]sym{"": 0}, strs: []string{""}} }

func (t *symtab) sym(s string) sym {
	if id, ok := t.ids[s]; ok {
		return id
	}
	s = strings.Clone(s)
	id := sym(len(t.strs))
	t.strs = append(t.strs, s)
	t.ids[s] = id
	return id
}

func (t *symtab) str(id sym) string { return t.strs[id] }

// tokenKey is what the by-token index is keyed by: the SHA-256 of the
// session token.
type tokenKey [sha256.Size]byte

func keyOfToken(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// Records are byte strings in the view's arenas (viewmem.go): fixed-size
// fields first, so the ones read most (a version, a revision, an expiry)
// are at known offsets, then variable ones, each string as its uvarint
// length and its bytes.
//
// A user:
//
//	version u64 | created u64 | updated u64 | flags u8 | status uvarint |
//	id str | addresses uvarint | each: flags u8, address str, [key str] |
//	[first, middle, last str] | external id str | metadata str
//
// An address's key (its matching form, what byEmail is keyed by) is
// stored only when it is not the address itself.
//
// A session:
//
//	revision u64 | expires u64 | started u64 | accessed u64 | flags u8 |
//	token key prefix [16]byte | id str | user: slot uvarint when the user is held, else id str |
//	roles uvarint | each role str | claims str | factors uvarint | each:
//	type uvarint | delivery uvarint | created, updated, last auth u64 |
//	tat u8 | [token id str | profile uvarint]
//
// The token key prefix is the first half of the SHA-256 of the session
// token (what the by-token index is keyed by): finding a session by a
// token compares it, where deriving the session's token again would cost
// an HMAC per lookup; no one can make a token whose SHA-256 begins with
// another session's 16 bytes.
//
// A session names its user by the user record's slot when the view holds
// the user (users are never removed from the view, so the slot stays
// theirs), and by id otherwise.
const (
	uDeleted   = 1
	uNilEmails = 2
	uName      = 4

	eVerified = 1
	eOwnKey   = 2 // the address's key follows it
	eNoKey    = 4 // the address has no matching form (not indexed)

	sRevoked    = 1
	sNilRoles   = 2
	sNilFactors = 4
	sUserSlot   = 8

	userFixed    = 25 // version, created, updated, flags
	sessionFixed = 49 // revision, expires, started, accessed, flags, token key prefix
	tokenPrefix  = 16
)

func appendStr[S ~string | ~[]byte](b []byte, s S) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// rd reads a record's fields in order. Records are the view's own
// writing, so a short one is a bug: rd panics on it as slicing does.
type rd struct{ b []byte }

func (r *rd) u64() uint64 { x := le.Uint64(r.b); r.b = r.b[8:]; return x }
func (r *rd) u8() byte    { x := r.b[0]; r.b = r.b[1:]; return x }
func (r *rd) uv() uint64 {
	x, n := binary.Uvarint(r.b)
	r.b = r.b[n:]
	return x
}
func (r *rd) raw() []byte { n := r.uv(); s := r.b[:n:n]; r.b = r.b[n:]; return s }
func (r *rd) str() string { return string(r.raw()) }

// packUser encodes u into the view's scratch buffer.
func (v *View) packUser(u domain.User, deleted bool) []byte {
	b := v.buf[:0]
	b = le.AppendUint64(b, uint64(u.Version))
	b = le.AppendUint64(b, uint64(toStamp(u.CreatedAt)))
	b = le.AppendUint64(b, uint64(toStamp(u.UpdatedAt)))
	var flags byte
	if deleted {
		flags |= uDeleted
	}
	if u.Emails == nil {
		flags |= uNilEmails
	}
	if u.Name != (domain.UserName{}) {
		flags |= uName
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(v.syms.sym(u.Status)))
	b = appendStr(b, u.UserID)
	b = binary.AppendUvarint(b, uint64(len(u.Emails)))
	for _, e := range u.Emails {
		var ef byte
		if e.Verified {
			ef |= eVerified
		}
		k, ok := emailKey(e.Email)
		switch {
		case !ok:
			ef |= eNoKey
		case k != e.Email:
			ef |= eOwnKey
		}
		b = append(b, ef)
		b = appendStr(b, e.Email)
		if ef&eOwnKey != 0 {
			b = appendStr(b, k)
		}
	}
	if flags&uName != 0 {
		b = appendStr(b, u.Name.FirstName)
		b = appendStr(b, u.Name.MiddleName)
		b = appendStr(b, u.Name.LastName)
	}
	b = appendStr(b, u.ExternalID)
	switch {
	case u.TrustedMetadata == nil:
		b = appendStr(b, "")
	case string(u.TrustedMetadata) == "{}":
		b = appendStr(b, "{}")
	default:
		b = appendStr(b, u.TrustedMetadata)
	}
	v.buf = b
	return b
}

func userVersion(p []byte) int64 { return int64(le.Uint64(p)) }
func userCreated(p []byte) stamp { return stamp(le.Uint64(p[8:])) }
func userDeleted(p []byte) bool  { return p[24]&uDeleted != 0 }

// userIDOf returns a user record's id (aliasing the record).
func userIDOf(p []byte) []byte {
	r := rd{p[userFixed:]}
	r.uv()
	return r.raw()
}

// emailKeys calls f with the key of each of a user record's addresses
// that has one.
func emailKeys(p []byte, f func(key []byte)) {
	r := rd{p[userFixed:]}
	r.uv()
	r.raw()
	for range r.uv() {
		ef := r.u8()
		addr := r.raw()
		switch {
		case ef&eOwnKey != 0:
			f(r.raw())
		case ef&eNoKey == 0:
			f(addr)
		}
	}
}

// user decodes a user record; the caller owns what it gets.
func (v *View) user(p []byte) domain.User {
	r := rd{p}
	u := domain.User{Version: int64(r.u64()), CreatedAt: stamp(r.u64()).time(), UpdatedAt: stamp(r.u64()).time()}
	flags := r.u8()
	u.Status = v.syms.str(sym(r.uv()))
	u.UserID = r.str()
	n := r.uv()
	if flags&uNilEmails == 0 {
		u.Emails = make([]domain.UserEmail, 0, n)
	}
	for range n {
		ef := r.u8()
		u.Emails = append(u.Emails, domain.UserEmail{Email: r.str(), Verified: ef&eVerified != 0})
		if ef&eOwnKey != 0 {
			r.raw()
		}
	}
	if flags&uName != 0 {
		u.Name = domain.UserName{FirstName: r.str(), MiddleName: r.str(), LastName: r.str()}
	}
	u.ExternalID = r.str()
	if md := r.raw(); len(md) > 0 {
		u.TrustedMetadata = json.RawMessage(bytes.Clone(md))
	}
	return u
}

// packSession encodes st into the view's scratch buffer; claims are its
// custom claims encoded already (nil: not encoded), prefix its token key
// prefix when known (a new revision's is its record's: nil derives it).
func (v *View) packSession(st domain.SessionState, claims, prefix []byte) []byte {
	s := st.Session
	b := v.buf[:0]
	b = le.AppendUint64(b, uint64(st.Revision))
	b = le.AppendUint64(b, uint64(toStamp(s.ExpiresAt)))
	b = le.AppendUint64(b, uint64(toStamp(s.StartedAt)))
	b = le.AppendUint64(b, uint64(toStamp(s.LastAccessedAt)))
	var flags byte
	if st.Revoked {
		flags |= sRevoked
	}
	if s.Roles == nil {
		flags |= sNilRoles
	}
	if s.AuthenticationFactors == nil {
		flags |= sNilFactors
	}
	us, held := v.userSlot(s.UserID)
	if held {
		flags |= sUserSlot
	}
	b = append(b, flags)
	if prefix == nil {
		k := keyOfToken(v.tokenOf(s.SessionID))
		prefix = k[:tokenPrefix]
	}
	b = append(b, prefix...)
	b = appendStr(b, s.SessionID)
	if held {
		b = binary.AppendUvarint(b, uint64(us))
	} else {
		b = appendStr(b, s.UserID)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Roles)))
	for _, role := range s.Roles {
		b = appendStr(b, role)
	}
	switch {
	case s.CustomClaims == nil:
		b = appendStr(b, "")
	case len(s.CustomClaims) == 0:
		b = appendStr(b, "{}")
	case claims != nil:
		b = appendStr(b, claims)
	default:
		// Claims that reach a session were encoded already (the size
		// check, the store), so this cannot fail.
		c, _ := json.Marshal(s.CustomClaims)
		b = appendStr(b, c)
	}
	b = binary.AppendUvarint(b, uint64(len(s.AuthenticationFactors)))
	for _, f := range s.AuthenticationFactors {
		b = binary.AppendUvarint(b, uint64(v.syms.sym(f.Type)))
		b = binary.AppendUvarint(b, uint64(v.syms.sym(f.DeliveryMethod)))
		b = le.AppendUint64(b, uint64(toStamp(f.CreatedAt)))
		b = le.AppendUint64(b, uint64(toStamp(f.UpdatedAt)))
		b = le.AppendUint64(b, uint64(toStamp(f.LastAuthenticatedAt)))
		if t := f.TrustedAuthTokenFactor; t != nil {
			b = append(b, 1)
			b = appendStr(b, t.TokenID)
			b = binary.AppendUvarint(b, uint64(v.syms.sym(t.ProfileID)))
		} else {
			b = append(b, 0)
		}
	}
	v.buf = b
	return b
}

func sessionRevision(p []byte) int64 { return int64(le.Uint64(p)) }
func sessionExpires(p []byte) stamp  { return stamp(le.Uint64(p[8:])) }
func sessionRevoked(p []byte) bool   { return p[32]&sRevoked != 0 }

// sessionTokenPrefix is the start of the SHA-256 of a session record's
// token.
func sessionTokenPrefix(p []byte) []byte { return p[33:sessionFixed] }

// sessionIDOf returns a session record's id (aliasing the record).
func sessionIDOf(p []byte) []byte {
	r := rd{p[sessionFixed:]}
	return r.raw()
}

// sessionUserOf returns a session record's user id (aliasing the view's
// records) and r positioned after it.
func (v *View) sessionUserOf(p []byte) ([]byte, rd) {
	r := rd{p[sessionFixed:]}
	r.raw()
	if p[32]&sUserSlot != 0 {
		return userIDOf(v.users.get(uint32(r.uv()))), r
	}
	return r.raw(), r
}

// state decodes a session record; the caller owns what it gets (the claims
// are decoded afresh, numbers as json.Number, as requests are).
func (v *View) state(p []byte) domain.SessionState {
	flags := p[32]
	uid, r := v.sessionUserOf(p)
	h := rd{p}
	st := domain.SessionState{Revision: int64(h.u64()), Revoked: flags&sRevoked != 0}
	s := domain.Session{ExpiresAt: stamp(h.u64()).time(), StartedAt: stamp(h.u64()).time(), LastAccessedAt: stamp(h.u64()).time(),
		SessionID: string(sessionIDOf(p)), UserID: string(uid)}
	n := r.uv()
	if flags&sNilRoles == 0 {
		s.Roles = make([]string, 0, n)
	}
	for range n {
		s.Roles = append(s.Roles, r.str())
	}
	if c := r.raw(); len(c) > 0 {
		s.CustomClaims = decodeClaims(c)
	}
	n = r.uv()
	if flags&sNilFactors == 0 {
		s.AuthenticationFactors = make([]domain.AuthenticationFactor, 0, n)
	}
	for range n {
		f := domain.AuthenticationFactor{Type: v.syms.str(sym(r.uv())), DeliveryMethod: v.syms.str(sym(r.uv())),
			CreatedAt: stamp(r.u64()).time(), UpdatedAt: stamp(r.u64()).time(), LastAuthenticatedAt: stamp(r.u64()).time()}
		if r.u8() != 0 {
			f.TrustedAuthTokenFactor = &domain.TrustedAuthTokenFactor{TokenID: r.str(), ProfileID: v.syms.str(sym(r.uv()))}
		}
		s.AuthenticationFactors = append(s.AuthenticationFactors, f)
	}
	st.Session = s
	return st
}

// decodeClaims decodes stored claims as the request decoder does (numbers
// as json.Number, so a large integer keeps every digit).
func decodeClaims(c []byte) map[string]any {
	m := map[string]any{}
	if string(c) == "{}" {
		return m
	}
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	_ = dec.Decode(&m) // encoded by json.Marshal from such a map
	return m
}
