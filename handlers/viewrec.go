package handlers

import (
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
// serves (see docs/BENCHMARKS.md). Values that repeat across records are
// shared: profile ids, factor types, delivery methods and user statuses are
// symbols (4 bytes), role lists are interned strings. Times are unix
// nanoseconds. Custom claims stay as the JSON they were encoded to until
// someone reads the session. A session's first factor is held inline, a
// user's first address too. Each lookup key (user id, matching address,
// session id, session token hash) has one index entry, pointing at the
// record. Records change only under the view's write lock, in place, and
// are decoded into domain values under its read lock.

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

// interner shares one copy of strings that may repeat across records (role
// lists). It only grows, up to a bound past which strings are kept per
// record.
type interner struct{ m map[string]string }

const (
	maxInterned    = 1 << 16
	maxInternedLen = 256
)

func (in *interner) get(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if len(in.m) >= maxInterned || len(s) > maxInternedLen {
		return strings.Clone(s)
	}
	s = strings.Clone(s)
	in.m[s] = s
	return s
}

// encodeList packs a list of strings as length-prefixed parts (any bytes
// may be in a part); decodeList unpacks n of them.
func encodeList(parts []string) string {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

func decodeList(s string, n int) []string {
	out := make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		s = s[k:]
		out = append(out, s[:l])
		s = s[l:]
	}
	return out
}

// tokenKey is what the by-token index is keyed by: the SHA-256 of the
// session token.
type tokenKey [sha256.Size]byte

func keyOfToken(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// userRec is a domain.User, compact.
type userRec struct {
	id         string
	email      string              // the first address
	more       *[]domain.UserEmail // the others
	name       *domain.UserName    // nil when every part is empty
	externalID string
	metadata   string // trusted_metadata JSON; "" for none
	version    int64
	created    stamp
	updated    stamp
	status     sym
	emails     int16 // how many addresses; -1 for a nil list
	verified   bool  // of the first address
	deleted    bool
}

func (v *View) packUser(u domain.User, deleted bool) *userRec {
	r := &userRec{id: strings.Clone(u.UserID), status: v.syms.sym(u.Status), externalID: strings.Clone(u.ExternalID),
		version: u.Version, created: toStamp(u.CreatedAt), updated: toStamp(u.UpdatedAt), deleted: deleted,
		emails: int16(len(u.Emails))}
	switch {
	case u.Emails == nil:
		r.emails = -1
	case len(u.Emails) > 0:
		r.email, r.verified = strings.Clone(u.Emails[0].Email), u.Emails[0].Verified
		if len(u.Emails) > 1 {
			more := make([]domain.UserEmail, len(u.Emails)-1)
			for i, e := range u.Emails[1:] {
				more[i] = domain.UserEmail{Email: strings.Clone(e.Email), Verified: e.Verified}
			}
			r.more = &more
		}
	}
	if u.Name != (domain.UserName{}) {
		n := domain.UserName{FirstName: strings.Clone(u.Name.FirstName), MiddleName: strings.Clone(u.Name.MiddleName), LastName: strings.Clone(u.Name.LastName)}
		r.name = &n
	}
	switch {
	case u.TrustedMetadata == nil:
	case string(u.TrustedMetadata) == "{}":
		r.metadata = "{}"
	default:
		r.metadata = string(u.TrustedMetadata)
	}
	return r
}

// addresses calls f with each of the user's addresses.
func (r *userRec) addresses(f func(string)) {
	if r.emails > 0 {
		f(r.email)
	}
	if r.more != nil {
		for _, e := range *r.more {
			f(e.Email)
		}
	}
}

// user rebuilds the domain.User; the caller owns what it gets.
func (v *View) user(r *userRec) domain.User {
	u := domain.User{UserSpec: domain.UserSpec{UserID: r.id, Status: v.syms.str(r.status), ExternalID: r.externalID},
		Version: r.version, CreatedAt: r.created.time(), UpdatedAt: r.updated.time()}
	if r.emails >= 0 {
		u.Emails = make([]domain.UserEmail, 0, r.emails)
		if r.emails > 0 {
			u.Emails = append(u.Emails, domain.UserEmail{Email: r.email, Verified: r.verified})
		}
		if r.more != nil {
			u.Emails = append(u.Emails, *r.more...)
		}
	}
	if r.name != nil {
		u.Name = *r.name
	}
	if r.metadata != "" {
		u.TrustedMetadata = json.RawMessage(r.metadata)
	}
	return u
}

// sessionRec is a domain.SessionState, compact.
type sessionRec struct {
	id       string
	userID   string // the user record's copy when the user is held
	started  stamp
	accessed stamp
	expires  stamp
	revision int64
	roles    string // the role names, encodeList'd and interned
	claims   string // custom claims as JSON; "" for a nil map
	first    factorRec
	more     *[]factorRec
	nRoles   int16 // -1 for a nil list
	factors  int16 // -1 for a nil list
	revoked  bool
}

type factorRec struct {
	created  stamp
	updated  stamp
	lastAuth stamp
	tokenID  string
	typ      sym
	delivery sym
	profile  sym
	tat      bool // has a trusted_auth_token_factor
}

func (v *View) packSession(st domain.SessionState, claims []byte) *sessionRec {
	s := st.Session
	r := &sessionRec{id: strings.Clone(s.SessionID), userID: v.userIDCopy(s.UserID),
		started: toStamp(s.StartedAt), accessed: toStamp(s.LastAccessedAt), expires: toStamp(s.ExpiresAt),
		revision: st.Revision, revoked: st.Revoked, nRoles: int16(len(s.Roles)), factors: int16(len(s.AuthenticationFactors))}
	if s.Roles == nil {
		r.nRoles = -1
	}
	r.roles = v.strs.get(encodeList(s.Roles))
	switch {
	case s.CustomClaims == nil:
	case len(s.CustomClaims) == 0:
		r.claims = "{}"
	case claims != nil:
		r.claims = string(claims)
	default:
		// Claims that reach a session were encoded already (the size
		// check, the store), so this cannot fail.
		b, _ := json.Marshal(s.CustomClaims)
		r.claims = string(b)
	}
	fs := s.AuthenticationFactors
	switch {
	case fs == nil:
		r.factors = -1
	case len(fs) > 0:
		r.first = v.packFactor(fs[0])
		if len(fs) > 1 {
			more := make([]factorRec, len(fs)-1)
			for i, f := range fs[1:] {
				more[i] = v.packFactor(f)
			}
			r.more = &more
		}
	}
	return r
}

func (v *View) packFactor(f domain.AuthenticationFactor) factorRec {
	fr := factorRec{typ: v.syms.sym(f.Type), delivery: v.syms.sym(f.DeliveryMethod),
		created: toStamp(f.CreatedAt), updated: toStamp(f.UpdatedAt), lastAuth: toStamp(f.LastAuthenticatedAt)}
	if t := f.TrustedAuthTokenFactor; t != nil {
		fr.tat, fr.tokenID, fr.profile = true, strings.Clone(t.TokenID), v.syms.sym(t.ProfileID)
	}
	return fr
}

func (v *View) factor(f factorRec) domain.AuthenticationFactor {
	af := domain.AuthenticationFactor{Type: v.syms.str(f.typ), DeliveryMethod: v.syms.str(f.delivery),
		CreatedAt: f.created.time(), UpdatedAt: f.updated.time(), LastAuthenticatedAt: f.lastAuth.time()}
	if f.tat {
		af.TrustedAuthTokenFactor = &domain.TrustedAuthTokenFactor{TokenID: f.tokenID, ProfileID: v.syms.str(f.profile)}
	}
	return af
}

// userIDCopy returns the user record's copy of id, so a session shares its
// user's id string, or a copy of its own when the user is not held.
func (v *View) userIDCopy(id string) string {
	if u, ok := v.users[id]; ok {
		return u.id
	}
	return strings.Clone(id)
}

// state rebuilds the domain.SessionState; the caller owns what it gets
// (the claims are decoded afresh, numbers as json.Number, as requests are).
func (v *View) state(r *sessionRec) domain.SessionState {
	s := domain.Session{SessionID: r.id, UserID: r.userID, StartedAt: r.started.time(), LastAccessedAt: r.accessed.time(),
		ExpiresAt: r.expires.time()}
	if r.nRoles >= 0 {
		s.Roles = decodeList(r.roles, int(r.nRoles))
	}
	if r.claims != "" {
		s.CustomClaims = decodeClaims(r.claims)
	}
	if r.factors >= 0 {
		s.AuthenticationFactors = make([]domain.AuthenticationFactor, 0, r.factors)
		if r.factors > 0 {
			s.AuthenticationFactors = append(s.AuthenticationFactors, v.factor(r.first))
		}
		if r.more != nil {
			for _, f := range *r.more {
				s.AuthenticationFactors = append(s.AuthenticationFactors, v.factor(f))
			}
		}
	}
	return domain.SessionState{Session: s, Revision: r.revision, Revoked: r.revoked}
}

// decodeClaims decodes stored claims as the request decoder does (numbers
// as json.Number, so a large integer keeps every digit).
func decodeClaims(s string) map[string]any {
	m := map[string]any{}
	if s == "{}" {
		return m
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	_ = dec.Decode(&m) // encoded by json.Marshal from such a map
	return m
}
