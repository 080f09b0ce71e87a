package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// The view's model: what the map-based view (before the records moved
// outside the Go heap, c593110^) gave for the same puts, written as simply
// as it can be. Values are held as the view gives them back (times in UTC
// at nanoseconds, clamped to unix nanoseconds; claims decoded with numbers
// as json.Number; an empty metadata as none).
type vmModel struct {
	users    map[string]vmUser              // by id, deleted ones included
	byEmail  map[string]string              // a matching address -> the user id
	sessions map[string]domain.SessionState // by id
}

type vmUser struct {
	u       domain.User
	deleted bool
}

func newVMModel() *vmModel {
	return &vmModel{users: map[string]vmUser{}, byEmail: map[string]string{}, sessions: map[string]domain.SessionState{}}
}

// vmStamp is a time as the view orders it (its expiry against a sweep's
// cutoff): unix nanoseconds, the zero time below every other, times out of
// range at the nearest end.
func vmStamp(t time.Time) int64 {
	switch {
	case t.IsZero():
		return math.MinInt64
	case t.Before(time.Unix(0, math.MinInt64+1)):
		return math.MinInt64 + 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// vmTime is a time as the view gives it back.
func vmTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, vmStamp(t)).UTC()
}

func vmNormUser(u domain.User) domain.User {
	n := domain.User{UserSpec: domain.UserSpec{UserID: u.UserID, Name: u.Name, Status: u.Status, ExternalID: u.ExternalID},
		Version: u.Version, CreatedAt: vmTime(u.CreatedAt), UpdatedAt: vmTime(u.UpdatedAt)}
	if u.Emails != nil {
		n.Emails = append([]domain.UserEmail{}, u.Emails...)
	}
	if len(u.TrustedMetadata) > 0 {
		n.TrustedMetadata = bytes.Clone(u.TrustedMetadata)
	}
	return n
}

func vmNormSession(st domain.SessionState) domain.SessionState {
	s := st.Session
	n := domain.Session{SessionID: s.SessionID, UserID: s.UserID, StartedAt: vmTime(s.StartedAt),
		LastAccessedAt: vmTime(s.LastAccessedAt), ExpiresAt: vmTime(s.ExpiresAt)}
	if s.Roles != nil {
		n.Roles = append([]string{}, s.Roles...)
	}
	if s.CustomClaims != nil {
		b, err := json.Marshal(s.CustomClaims)
		if err != nil {
			panic(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		n.CustomClaims = map[string]any{}
		if err := dec.Decode(&n.CustomClaims); err != nil {
			panic(err)
		}
	}
	if s.AuthenticationFactors != nil {
		n.AuthenticationFactors = []domain.AuthenticationFactor{}
		for _, f := range s.AuthenticationFactors {
			nf := domain.AuthenticationFactor{Type: f.Type, DeliveryMethod: f.DeliveryMethod, CreatedAt: vmTime(f.CreatedAt),
				UpdatedAt: vmTime(f.UpdatedAt), LastAuthenticatedAt: vmTime(f.LastAuthenticatedAt)}
			if t := f.TrustedAuthTokenFactor; t != nil {
				nf.TrustedAuthTokenFactor = &domain.TrustedAuthTokenFactor{TokenID: t.TokenID, ProfileID: t.ProfileID}
			}
			n.AuthenticationFactors = append(n.AuthenticationFactors, nf)
		}
	}
	return domain.SessionState{Session: n, Revision: st.Revision, Revoked: st.Revoked}
}

// putUser: a newer version replaces the user; the addresses it held lead
// to it no more where they still did, and, unless it is deleted, each of
// its addresses leads to it (the last writer wins).
func (m *vmModel) putUser(u domain.User, deleted bool) {
	if cur, ok := m.users[u.UserID]; ok {
		if cur.u.Version >= u.Version {
			return
		}
		for _, e := range cur.u.Emails {
			if k, err := domain.NormalizeEmail(e.Email); err == nil && m.byEmail[k] == u.UserID {
				delete(m.byEmail, k)
			}
		}
	}
	m.users[u.UserID] = vmUser{vmNormUser(u), deleted}
	if deleted {
		return
	}
	for _, e := range u.Emails {
		if k, err := domain.NormalizeEmail(e.Email); err == nil {
			m.byEmail[k] = u.UserID
		}
	}
}

// putSession: a newer revision replaces the session, whole (its user
// included: the view's by-user index follows it).
func (m *vmModel) putSession(st domain.SessionState) {
	if cur, ok := m.sessions[st.Session.SessionID]; ok && cur.Revision >= st.Revision {
		return
	}
	m.sessions[st.Session.SessionID] = vmNormSession(st)
}

func (m *vmModel) sweep(cutoff time.Time) int {
	n := 0
	for id, st := range m.sessions {
		if vmStamp(st.Session.ExpiresAt) < vmStamp(cutoff) {
			delete(m.sessions, id)
			n++
		}
	}
	return n
}

func (m *vmModel) user(id string) (domain.User, bool) {
	e, ok := m.users[id]
	return e.u, ok && !e.deleted
}

func (m *vmModel) userVersion(id string) (int64, time.Time, bool) {
	e, ok := m.users[id]
	return e.u.Version, e.u.CreatedAt, ok && !e.deleted
}

func (m *vmModel) userByEmail(email string) (domain.User, bool) {
	id, ok := m.byEmail[email]
	if !ok {
		return domain.User{}, false
	}
	return m.users[id].u, true
}

func (m *vmModel) sessionsOfUser(uid string) []domain.SessionState {
	out := []domain.SessionState{}
	for _, st := range m.sessions {
		if st.Session.UserID == uid {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b domain.SessionState) int { return strings.Compare(a.Session.SessionID, b.Session.SessionID) })
	return out
}

func (m *vmModel) usersPage(after string, limit int) ([]domain.User, bool) {
	var ids []string
	for id, e := range m.users {
		if id > after && !e.deleted {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	n := max(limit+1, 0)
	ids = ids[:min(len(ids), n)]
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]domain.User, len(ids))
	for i, id := range ids {
		out[i] = m.users[id].u
	}
	return out, more
}

func (m *vmModel) holdsActive(id string, rev int64, now time.Time) bool {
	st, ok := m.sessions[id]
	return ok && st.Revision == rev && !st.Revoked && now.Before(st.Session.ExpiresAt)
}

// vmGen makes the puts and reads: few enough ids that they meet again
// (addresses shared and taken over, sessions of users held and not yet
// held, sessions swept and made again), values of every shape.
type vmGen struct {
	rnd      *rand.Rand
	clock    time.Time
	nextSess int
	sessIDs  []string // every session id made
	nUsers   int      // user ids u-000 .. held or not
	nAddrs   int
}

func (g *vmGen) pct(p int) bool { return g.rnd.IntN(1000) < p*10 }

func (g *vmGen) userID() string { return fmt.Sprintf("u-%03d", g.rnd.IntN(g.nUsers)) }

// when is a time near the clock (nanoseconds, some in another zone),
// sometimes the zero time or one out of the range of unix nanoseconds.
func (g *vmGen) when(from, span time.Duration) time.Time {
	switch r := g.rnd.IntN(100); {
	case r < 3:
		return time.Time{}
	case r < 4:
		return time.Date(1500+g.rnd.IntN(100), 1, 1, 0, 0, 0, g.rnd.IntN(1e9), time.UTC)
	case r < 5:
		return time.Date(2300+g.rnd.IntN(100), 1, 1, 0, 0, 0, g.rnd.IntN(1e9), time.UTC)
	case r < 10:
		return g.clock.Add(from + time.Duration(g.rnd.Int64N(int64(span)))).In(time.FixedZone("X", 3600*(g.rnd.IntN(25)-12)))
	}
	return g.clock.Add(from + time.Duration(g.rnd.Int64N(int64(span))))
}

// addr is an address of a small pool, in one of its spellings (cases,
// white space around it) or one that has no matching form.
func (g *vmGen) addr() string {
	i := g.rnd.IntN(g.nAddrs)
	switch r := g.rnd.IntN(100); {
	case r < 55:
		return fmt.Sprintf("user%d@ex.com", i)
	case r < 70:
		return fmt.Sprintf("User%d@Ex.COM", i)
	case r < 78:
		return fmt.Sprintf("USER%d@EX.COM", i)
	case r < 86:
		return fmt.Sprintf(" user%d@ex.com\t", i)
	case r < 91:
		return fmt.Sprintf("usér%d@ex.com", i)
	case r < 96:
		return fmt.Sprintf("not-an-address-%d", i)
	}
	return fmt.Sprintf("Name <user%d@ex.com>", i)
}

// addrQuery is what a reader may look an address up by: a matching form
// mostly, sometimes an address in another spelling.
func (g *vmGen) addrQuery() string {
	a := g.addr()
	if k, err := domain.NormalizeEmail(a); err == nil && g.pct(80) {
		return k
	}
	return a
}

func (g *vmGen) emails(prev []domain.UserEmail) []domain.UserEmail {
	switch r := g.rnd.IntN(100); {
	case r < 5:
		return nil
	case r < 10:
		return []domain.UserEmail{}
	case r < 30:
		out := []domain.UserEmail{}
		for range 1 + g.rnd.IntN(4) {
			out = append(out, domain.UserEmail{Email: g.addr(), Verified: g.pct(50)})
		}
		return out
	}
	out := append([]domain.UserEmail{}, prev...)
	for range 1 + g.rnd.IntN(3) {
		switch r := g.rnd.IntN(4); {
		case r == 0 && len(out) < 6 || len(out) == 0:
			out = slices.Insert(out, g.rnd.IntN(len(out)+1), domain.UserEmail{Email: g.addr(), Verified: g.pct(50)})
		case r == 1:
			j := g.rnd.IntN(len(out))
			out = slices.Delete(out, j, j+1)
		case r == 2:
			j := g.rnd.IntN(len(out))
			out[j].Email = strings.ToUpper(out[j].Email[:1]) + out[j].Email[1:]
		default:
			j := g.rnd.IntN(len(out))
			out[j].Verified = !out[j].Verified
		}
	}
	return out
}

func (g *vmGen) blob(n int) string { return strings.Repeat(string(rune('a'+g.rnd.IntN(26))), n) }

func (g *vmGen) user(id string, cur int64, held bool, big bool) domain.User {
	u := domain.User{UserSpec: domain.UserSpec{UserID: id}}
	if held && g.pct(15) {
		u.Version = g.rnd.Int64N(cur + 1) // as old as the one held, or older
	} else {
		u.Version = cur + 1 + g.rnd.Int64N(3)
	}
	u.Status = []string{"", "active", "suspended", "pending"}[g.rnd.IntN(4)]
	if g.pct(70) {
		u.Name = domain.UserName{FirstName: "F" + id, LastName: []string{"", "Last"}[g.rnd.IntN(2)]}
		if g.pct(20) {
			u.Name = domain.UserName{MiddleName: "m"}
		}
	}
	if g.pct(40) {
		u.ExternalID = "ext-" + strconv.Itoa(g.rnd.IntN(1000))
	}
	switch r := g.rnd.IntN(100); {
	case big:
		u.TrustedMetadata = json.RawMessage(`{"blob":"` + g.blob(chunkSize+g.rnd.IntN(50000)) + `"}`)
	case r < 40:
	case r < 50:
		u.TrustedMetadata = json.RawMessage(`{}`)
	case r < 55:
		u.TrustedMetadata = json.RawMessage{}
	case r < 58:
		u.TrustedMetadata = json.RawMessage(`{"blob":"` + g.blob(4000+g.rnd.IntN(20000)) + `"}`)
	default:
		u.TrustedMetadata = json.RawMessage(fmt.Sprintf(`{"n":%d,"plan":"p%d"}`, g.rnd.IntN(1e6), g.rnd.IntN(5)))
	}
	u.CreatedAt = g.when(-100*time.Hour, 100*time.Hour)
	u.UpdatedAt = g.when(-time.Hour, time.Hour)
	return u
}

func (g *vmGen) claimValue(depth int) any {
	switch r := g.rnd.IntN(8); {
	case r == 0:
		return nil
	case r == 1:
		return g.pct(50)
	case r == 2:
		return json.Number(strconv.FormatInt(g.rnd.Int64(), 10) + "123456789") // more digits than a float64 keeps
	case r == 3:
		return json.Number("-1.5e-7")
	case r == 4 && depth < 2:
		return []any{g.claimValue(depth + 1), "x<&>", g.claimValue(depth + 1)}
	case r == 5 && depth < 2:
		return map[string]any{"k": g.claimValue(depth + 1), "é": "ü\u2028"}
	}
	return "v" + strconv.Itoa(g.rnd.IntN(100))
}

func (g *vmGen) session(id string, cur domain.SessionState, held bool, big int) domain.SessionState {
	st := domain.SessionState{Revoked: g.pct(10)}
	if held && g.pct(20) {
		st.Revision = g.rnd.Int64N(cur.Revision + 1)
	} else {
		st.Revision = cur.Revision + 1 + g.rnd.Int64N(2)
	}
	s := domain.Session{SessionID: id, UserID: cur.Session.UserID}
	if !held || g.pct(3) {
		s.UserID = g.userID() // a session never changes user; a state may say it does
	}
	s.StartedAt = g.when(-3*time.Hour, 3*time.Hour)
	s.LastAccessedAt = g.when(-time.Hour, time.Hour)
	switch r := g.rnd.IntN(100); {
	case r < 3:
		s.ExpiresAt = time.Time{}
	case r < 4:
		s.ExpiresAt = time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC) // clamped; never swept
	case r < 5:
		s.ExpiresAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	default:
		s.ExpiresAt = g.clock.Add(time.Duration(g.rnd.Int64N(int64(4*time.Hour))) - 30*time.Minute)
	}
	switch r := g.rnd.IntN(100); {
	case r < 10:
	case r < 20:
		s.Roles = []string{}
	case r < 21:
		for i := range 100 {
			s.Roles = append(s.Roles, fmt.Sprintf("role-%d-%s", i, g.blob(40)))
		}
	default:
		for range 1 + g.rnd.IntN(4) {
			s.Roles = append(s.Roles, []string{"admin", "member", "viewer", "", "odd\x00\xffrole", "résumé"}[g.rnd.IntN(6)])
		}
	}
	switch r := g.rnd.IntN(100); {
	case big == 2:
		s.CustomClaims = map[string]any{"blob": g.blob(chunkSize + g.rnd.IntN(100000))}
	case big == 1:
		s.CustomClaims = map[string]any{"blob": g.blob(300<<10 + g.rnd.IntN(10000)), "n": json.Number("1")}
	case r < 20:
	case r < 30:
		s.CustomClaims = map[string]any{}
	default:
		s.CustomClaims = map[string]any{}
		for i := range 1 + g.rnd.IntN(4) {
			s.CustomClaims["c"+strconv.Itoa(i)] = g.claimValue(0)
		}
	}
	switch r := g.rnd.IntN(100); {
	case r < 10:
	case r < 20:
		s.AuthenticationFactors = []domain.AuthenticationFactor{}
	default:
		for range 1 + g.rnd.IntN(4) {
			f := domain.AuthenticationFactor{Type: []string{"trusted_auth_token", "email", "otp", ""}[g.rnd.IntN(4)],
				DeliveryMethod: []string{"trusted_token_exchange", "email", ""}[g.rnd.IntN(3)],
				CreatedAt:      g.when(-time.Hour, time.Hour), UpdatedAt: g.when(-time.Hour, time.Hour), LastAuthenticatedAt: g.when(-time.Hour, time.Hour)}
			if g.pct(50) {
				f.TrustedAuthTokenFactor = &domain.TrustedAuthTokenFactor{TokenID: "jti-" + strconv.Itoa(g.rnd.IntN(1e6)), ProfileID: "p-" + strconv.Itoa(g.rnd.IntN(5))}
			}
			s.AuthenticationFactors = append(s.AuthenticationFactors, f)
		}
	}
	st.Session = s
	return st
}

// vmHarness drives a view and its model together and compares them.
type vmHarness struct {
	t   *testing.T
	v   *View
	m   *vmModel
	g   *vmGen
	ops int
}

func (h *vmHarness) fail(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("op %d: "+format, append([]any{h.ops}, args...)...)
}

func vmShort(x any) string {
	s := fmt.Sprintf("%#v", x)
	if len(s) > 3000 {
		s = s[:3000] + "..."
	}
	return s
}

func (h *vmHarness) same(what string, got, want any) {
	h.t.Helper()
	if !reflect.DeepEqual(got, want) {
		h.fail("%s:\n got %s\nwant %s", what, vmShort(got), vmShort(want))
	}
}

func (h *vmHarness) putUser(big bool) {
	id := h.g.userID()
	cur, held := h.m.users[id]
	u := h.g.user(id, cur.u.Version, held, big)
	if held && h.g.pct(40) {
		u.Emails = h.g.emails(cur.u.Emails)
	} else {
		u.Emails = h.g.emails(nil)
	}
	deleted := h.g.pct(5)
	h.v.PutUser(u, deleted)
	h.m.putUser(u, deleted)
}

func (h *vmHarness) putSession(onlyHeld bool, big int) {
	g := h.g
	var id string
	switch {
	case onlyHeld:
		if len(h.m.sessions) == 0 {
			return
		}
		// A third of the sessions change again and again, the others
		// are left as they are until they end.
		id = g.sessIDs[g.rnd.IntN(len(g.sessIDs))]
		if _, ok := h.m.sessions[id]; !ok || id[len(id)-1]%3 != 0 {
			return
		}
	case len(g.sessIDs) == 0 || g.pct(35):
		id = fmt.Sprintf("s-%05d", g.nextSess)
		g.nextSess++
		g.sessIDs = append(g.sessIDs, id)
	default:
		id = g.sessIDs[g.rnd.IntN(len(g.sessIDs))]
	}
	cur, held := h.m.sessions[id]
	st := g.session(id, cur, held, big)
	if onlyHeld {
		st.Revision = cur.Revision + 1
		st.Session.ExpiresAt = g.clock.Add(time.Duration(g.rnd.Int64N(int64(time.Hour))) + 3*time.Hour)
	}
	h.v.PutSession(st)
	h.m.putSession(st)
}

func (h *vmHarness) sweep(cutoff time.Time) {
	got := h.v.Sweep(cutoff)
	if want := h.m.sweep(cutoff); got != want {
		h.fail("Sweep(%v) = %d, want %d", cutoff, got, want)
	}
}

// read makes one read of a random kind and compares it with the model's.
func (h *vmHarness) read() {
	g, v, m := h.g, h.v, h.m
	sid := func() string {
		if len(g.sessIDs) == 0 || g.pct(5) {
			return "s-none"
		}
		return g.sessIDs[g.rnd.IntN(len(g.sessIDs))]
	}
	switch g.rnd.IntN(9) {
	case 0:
		id := g.userID()
		u, ok := v.User(id)
		wu, wok := m.user(id)
		h.same("User("+id+")", []any{u, ok}, []any{wu, wok})
	case 1:
		id := g.userID()
		ver, created, live := v.UserVersion(id)
		wv, wc, wl := m.userVersion(id)
		h.same("UserVersion("+id+")", []any{ver, created, live}, []any{wv, wc, wl})
	case 2:
		q := g.addrQuery()
		u, ok := v.UserByEmail(q)
		wu, wok := m.userByEmail(q)
		h.same(fmt.Sprintf("UserByEmail(%q)", q), []any{u, ok}, []any{wu, wok})
	case 3:
		id := sid()
		st, ok := v.Session(id)
		w, wok := m.sessions[id]
		h.same("Session("+id+")", []any{st, ok}, []any{w, wok})
	case 4:
		id := sid()
		st, ok := v.SessionByToken("token-of-" + id)
		w, wok := m.sessions[id]
		h.same("SessionByToken("+id+")", []any{st, ok}, []any{w, wok})
	case 5:
		id := g.userID()
		h.same("SessionsOfUser("+id+")", v.SessionsOfUser(id), m.sessionsOfUser(id))
	case 6:
		after := ""
		if g.pct(70) {
			after = g.userID()
			if g.pct(30) {
				after += "~"
			}
		}
		limit := g.rnd.IntN(12)
		if g.pct(3) {
			limit = 1 << 20
		}
		p, more := v.UsersPage(after, limit)
		wp, wmore := m.usersPage(after, limit)
		h.same(fmt.Sprintf("UsersPage(%q, %d)", after, limit), []any{p, more}, []any{wp, wmore})
	case 7:
		_, users, sessions := v.Counts()
		h.same("Counts", []int{users, sessions}, []int{len(m.users), len(m.sessions)})
	default:
		id := sid()
		var rev int64 = 1
		if st, ok := m.sessions[id]; ok {
			rev = st.Revision + int64(g.rnd.IntN(3)) - 1
		}
		now := g.clock.Add(time.Duration(g.rnd.Int64N(int64(4*time.Hour))) - time.Hour)
		h.same(fmt.Sprintf("holdsActive(%s, %d)", id, rev), v.holdsActive(id, rev, now), m.holdsActive(id, rev, now))
	}
}

// checkAll reads everything the model holds back from the view, pages
// through every user, and checks the view's structures: the arena's
// accounting (checkRecs), each index's entries against the records they
// name, and each user's list of sessions.
func (h *vmHarness) checkAll() {
	h.t.Helper()
	v, m := h.v, h.m
	ofUser := map[string][]domain.SessionState{}
	for _, st := range m.sessions {
		ofUser[st.Session.UserID] = append(ofUser[st.Session.UserID], st)
	}
	for id := range h.g.nUsers + 1 {
		uid := fmt.Sprintf("u-%03d", id)
		u, ok := v.User(uid)
		wu, wok := m.user(uid)
		h.same("User("+uid+")", []any{u, ok}, []any{wu, wok})
		want := append([]domain.SessionState{}, ofUser[uid]...)
		slices.SortFunc(want, func(a, b domain.SessionState) int { return strings.Compare(a.Session.SessionID, b.Session.SessionID) })
		h.same("SessionsOfUser("+uid+")", v.SessionsOfUser(uid), want)
	}
	for k := range m.byEmail {
		u, ok := v.UserByEmail(k)
		wu, wok := m.userByEmail(k)
		h.same(fmt.Sprintf("UserByEmail(%q)", k), []any{u, ok}, []any{wu, wok})
	}
	for i := range h.g.nAddrs {
		k := fmt.Sprintf("user%d@ex.com", i)
		u, ok := v.UserByEmail(k)
		wu, wok := m.userByEmail(k)
		h.same(fmt.Sprintf("UserByEmail(%q)", k), []any{u, ok}, []any{wu, wok})
	}
	for id, w := range m.sessions {
		st, ok := v.Session(id)
		h.same("Session("+id+")", []any{st, ok}, []any{w, true})
		st, ok = v.SessionByToken("token-of-" + id)
		h.same("SessionByToken("+id+")", []any{st, ok}, []any{w, true})
	}
	limit := 1 + h.g.rnd.IntN(40)
	var all, want []domain.User
	for after := ""; ; {
		p, more := v.UsersPage(after, limit)
		all = append(all, p...)
		if !more {
			break
		}
		after = p[len(p)-1].UserID
	}
	want, _ = m.usersPage("", math.MaxInt32)
	h.same("all pages", all, want)
	_, users, sessions := v.Counts()
	h.same("Counts", []int{users, sessions}, []int{len(m.users), len(m.sessions)})

	// The records: one slot per user and session the model holds.
	um := map[uint32][]byte{}
	for id := range m.users {
		s, ok := v.userSlot(id)
		if !ok {
			h.fail("user %s has no slot", id)
		}
		if _, dup := um[s]; dup {
			h.fail("user %s shares slot %d", id, s)
		}
		um[s] = bytes.Clone(v.users.get(s))
	}
	checkRecs(h.t, &v.users, um)
	sm := map[uint32][]byte{}
	owners := map[string]int{}
	for id, st := range m.sessions {
		s, ok := v.sessionSlot(id)
		if !ok {
			h.fail("session %s has no slot", id)
		}
		if _, dup := sm[s]; dup {
			h.fail("session %s shares slot %d", id, s)
		}
		sm[s] = bytes.Clone(v.sessions.get(s))
		owners[st.Session.UserID]++
	}
	checkRecs(h.t, &v.sessions, sm)

	// The indexes: as many entries as keys, each naming a held record.
	for _, c := range []struct {
		name string
		x    *index
		rs   *recs
		n    int
	}{
		{"userByID", &v.userByID, &v.users, len(m.users)},
		{"userByEmail", &v.userByEmail, &v.users, len(m.byEmail)},
		{"sessionByID", &v.sessionByID, &v.sessions, len(m.sessions)},
		{"sessionByToken", &v.sessionByToken, &v.sessions, len(m.sessions)},
		{"sessionsByUser", &v.sessionsByUser, &v.sessions, len(owners)},
	} {
		if c.x.n != c.n {
			h.fail("%s has %d entries, want %d", c.name, c.x.n, c.n)
		}
		entries, tombs := 0, 0
		for i := range c.x.size {
			_, s := c.x.at(i)
			switch {
			case s == tomb:
				tombs++
			case s != 0:
				entries++
				if int(s-1) >= c.rs.nslots || c.rs.ref(s-1) == 0 {
					h.fail("%s names slot %d, which holds no record", c.name, s-1)
				}
			}
		}
		if entries != c.x.n || tombs != c.x.tombs || 4*(c.x.n+c.x.tombs) > 3*c.x.size {
			h.fail("%s counts %d entries and %d tombs of %d, holds %d and %d", c.name, c.x.n, c.x.tombs, c.x.size, entries, tombs)
		}
	}
	// Each user's sessions: a list from the one the by-user index names.
	for uid, n := range owners {
		first, ok := v.firstSession(v.hash(uid), uid)
		if !ok {
			h.fail("user %s's sessions have no first", uid)
		}
		if p := v.userSessions.prev(first); p != none {
			h.fail("user %s's first session %d has a previous, %d", uid, first, p)
		}
		got := 0
		for s := first; s != none; s = v.userSessions.next(s) {
			if got++; got > n {
				h.fail("user %s's list is longer than its %d sessions", uid, n)
			}
			if u, _ := v.sessionUserOf(v.sessions.get(s)); string(u) != uid {
				h.fail("user %s's list holds a session of %s", uid, u)
			}
			if nx := v.userSessions.next(s); nx != none && v.userSessions.prev(nx) != s {
				h.fail("user %s's list: %d follows %d, which it does not point back to", uid, nx, s)
			}
		}
		if got != n {
			h.fail("user %s's list has %d sessions, want %d", uid, got, n)
		}
	}
}

// memory returns the bytes of the records held (with their headers), and
// what the view maps for anything other than the arenas' chunks.
func (h *vmHarness) memory() (live, fixed int) {
	v := h.v
	for _, rs := range []*recs{&v.users, &v.sessions} {
		rs.each(func(_ uint32, p []byte) bool { live += recHeader + len(p); return true })
		fixed += len(rs.slots)
	}
	for _, x := range []*index{&v.userByID, &v.userByEmail, &v.sessionByID, &v.sessionByToken, &v.sessionsByUser} {
		fixed += len(x.b)
	}
	return live, fixed + len(v.userSessions.b)
}

// checkMemory: the arenas' chunks hold at most four bytes per live one
// (a chunk is reclaimed under a quarter live), give or take the chunks
// being filled.
func (h *vmHarness) checkMemory(what string) {
	h.t.Helper()
	live, fixed := h.memory()
	arena := h.v.o.mapped - fixed
	if arena > 4*live+4*chunkSize {
		h.fail("%s: the arenas map %d bytes for %d live (%d mapped in all)", what, arena, live, h.v.o.mapped)
	}
}

// TestViewAgainstModel drives a view with a long random sequence of puts
// (new users, new versions taking and dropping addresses other users hold,
// stale versions, deletions; sessions of users held and not, new and stale
// revisions, revoked, records larger than a chunk), sweeps and reads, and
// compares every read with a map-based model of the view as it was before
// its records moved outside the Go heap. The view's structures are checked
// every so often. Then a churn of updates and sweeps over a stable set
// checks that what the view maps stays bounded by what it holds.
func TestViewAgainstModel(t *testing.T) {
	seed := uint64(20260301)
	if s := os.Getenv("VIEWMODEL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	ops := 20000
	if s := os.Getenv("VIEWMODEL_OPS"); s != "" {
		ops, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d, %d ops", seed, ops)
	g := &vmGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clock: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC),
		nUsers: 300, nAddrs: 150}
	h := &vmHarness{t: t, v: NewView(func(id string) string { return "token-of-" + id }), m: newVMModel(), g: g}
	step := func(churn bool) {
		h.ops++
		g.clock = g.clock.Add(time.Duration(g.rnd.Int64N(int64(2 * time.Second))))
		big := 0
		switch r := g.rnd.IntN(4000); {
		case r == 0:
			big = 2 // a session larger than a chunk
		case r < 9:
			big = 1 // a session of a few hundred kilobytes
		}
		switch r := g.rnd.IntN(100); {
		case churn && r < 20:
			if id := g.userID(); h.m.users[id].u.UserID != "" { // held users only
				cur := h.m.users[id]
				u := g.user(id, cur.u.Version+1, false, g.rnd.IntN(8000) == 0)
				u.Emails = g.emails(cur.u.Emails)
				h.v.PutUser(u, false)
				h.m.putUser(u, false)
			}
		case churn && r < 20:
			h.putSession(true, big)
		case churn && r < 20:
			// Sessions end and others start: the set stays the same size.
			n := len(h.m.sessions)
			h.sweep(g.clock.Add(15 * time.Minute))
			for len(h.m.sessions) < n {
				h.putSession(false, 0)
			}
		case churn:
			h.read()
		case r < 20:
			h.putUser(g.rnd.IntN(5000) == 0)
		case r < 55:
			h.putSession(false, big)
		case r < 58:
			cutoff := g.clock.Add(time.Duration(g.rnd.Int64N(int64(90*time.Minute))) - time.Hour)
			if len(g.sessIDs) > 0 && g.pct(30) { // a session's expiry exactly: it stays
				if st, ok := h.m.sessions[g.sessIDs[g.rnd.IntN(len(g.sessIDs))]]; ok && !st.Session.ExpiresAt.IsZero() {
					cutoff = st.Session.ExpiresAt
				}
			}
			h.sweep(cutoff)
		default:
			h.read()
		}
	}
	for i := range ops {
		step(false)
		if i%5000 == 4999 {
			h.checkAll()
			h.checkMemory("random puts")
		}
	}
	h.checkAll()
	h.checkMemory("random puts")

	// The churn: the same users and as many sessions, changed again and
	// again; the memory mapped follows what is held.
	live0, _ := h.memory()
	mapped0 := h.v.o.mapped
	peak := 0
	for i := range ops / 2 {
		step(true)
		peak = max(peak, h.v.o.mapped)
		if i%2000 == 1999 {
			h.checkMemory("churn")
		}
	}
	h.checkAll()
	h.checkMemory("churn")
	live1, _ := h.memory()
	t.Logf("churn: %d live bytes (%d before), %d mapped (%d before, peak %d); %d users, %d sessions",
		live1, live0, h.v.o.mapped, mapped0, peak, len(h.m.users), len(h.m.sessions))
}

// TestRecsLargeRecordsStrandNoChunk: a record larger than what the chunk
// being filled has left, written when that chunk is mostly dead (a hot
// record's copies) but for a few records that stay (users no one
// changes), must not leave behind a chunk mapped for it that holds only
// those few records: were the reclaim of the chunk it rolls over from to
// move them into a chunk mapped for the large record, which the record
// then does not fit, that chunk would stay mapped, nearly empty, for as
// long as they live, one more at each large record.
func TestRecsLargeRecordsStrandNoChunk(t *testing.T) {
	var o offheap
	rs := newRecs(&o)
	live := 0
	for range 40 {
		rs.add(bytes.Repeat([]byte{1}, 2000)) // never changed
		live += recHeader + 2000
		hot := rs.add(bytes.Repeat([]byte{2}, 2000))
		for range 400 {
			rs.replace(hot, bytes.Repeat([]byte{3}, 2000))
		}
		large := rs.add(bytes.Repeat([]byte{4}, chunkSize+10))
		rs.remove(large)
		rs.remove(hot)
	}
	if arena := o.mapped - len(rs.slots); arena > 4*live+2*chunkSize {
		t.Fatalf("%d bytes of chunks are mapped for %d live", arena, live)
	}
	rs.release()
}
