package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// readsOn is a Reads handler on e's view, with barrier b.
func readsOn(e *env, b handlers.Barrier) *handlers.Reads {
	return &handlers.Reads{View: e.view, Barrier: b, Now: e.clock.Now}
}

// readCall sends payload (a string as it is, anything else as JSON) to
// one reads endpoint and returns its reply, typed and as the JSON the wire
// carries.
func readCall(t *testing.T, f func(context.Context, []byte) handlers.ReadReply, payload any) (handlers.ReadReply, map[string]any) {
	t.Helper()
	data, ok := payload.(string)
	if !ok {
		b, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		data = string(b)
	}
	r := f(context.Background(), []byte(data))
	wire, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(wire, &m); err != nil {
		t.Fatal(err)
	}
	return r, m
}

// wantReadError checks a refused read: status, error_type, and nothing
// but status_code, error_type and error_message on the wire.
func wantReadError(t *testing.T, r handlers.ReadReply, wire map[string]any, want *domain.Error) {
	t.Helper()
	if r.StatusCode != want.Status || r.ErrorType != want.Code {
		t.Fatalf("reply %d %s (%s), want %d %s", r.StatusCode, r.ErrorType, r.ErrorMessage, want.Status, want.Code)
	}
	for k := range wire {
		if k != "status_code" && k != "error_type" && k != "error_message" {
			t.Errorf("a refusal carries %q: %v", k, wire)
		}
	}
}

// newProfile makes a PEM profile trusting e's idp under id, at version 1.
func newProfile(t *testing.T, e *env, id string) domain.Profile {
	t.Helper()
	p, err := domain.NewProfile(domain.ProfileSpec{
		ProfileID: id, Name: "P " + id, Issuer: e.idp.iss, Audience: e.idp.aud, PublicKeys: []string{e.idp.publicPEM(t)},
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti"},
	}, domain.ProfileRules{}, 1, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadsProfileGet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(t *testing.T, e *env) func() // returns what arrives on catch-up
		payload  any
		want     *domain.Error // nil: found
		catchUps int64
	}{
		{name: "found", payload: map[string]any{"profile_id": "trusted-auth-token-profile-test"}},
		{name: "unknown", payload: map[string]any{"profile_id": "trusted-auth-token-profile-nope"},
			want: domain.ErrProfileNotFound, catchUps: 1},
		{name: "made a moment ago through another worker", payload: map[string]any{"profile_id": "p-new"}, catchUps: 1,
			setup: func(t *testing.T, e *env) func() {
				p := newProfile(t, e, "p-new")
				return func() { e.view.PutProfile(p, false) }
			}},
		{name: "deleted", payload: map[string]any{"profile_id": "trusted-auth-token-profile-test"},
			want: domain.ErrProfileNotFound, catchUps: 1,
			setup: func(t *testing.T, e *env) func() {
				p := e.profile
				p.Version++
				e.view.PutProfile(p, true)
				return nil
			}},
		{name: "deleted a moment ago through another worker", payload: map[string]any{"profile_id": "p-gone"},
			want: domain.ErrProfileNotFound, catchUps: 1,
			setup: func(t *testing.T, e *env) func() {
				p := newProfile(t, e, "p-gone")
				return func() {
					e.view.PutProfile(p, false)
					p.Version++
					e.view.PutProfile(p, true)
				}
			}},
		{name: "no profile_id", payload: map[string]any{}, want: domain.ErrInvalidRequest},
		{name: "empty profile_id", payload: map[string]any{"profile_id": ""}, want: domain.ErrInvalidRequest},
		{name: "id outside the alphabet", payload: map[string]any{"profile_id": "../p"}, want: domain.ErrInvalidRequest},
		{name: "id too long", payload: map[string]any{"profile_id": strings.Repeat("p", 129)}, want: domain.ErrInvalidRequest},
		{name: "unknown field", payload: map[string]any{"profile_id": "trusted-auth-token-profile-test", "keys": true}, want: domain.ErrInvalidRequest},
		{name: "field in another case", payload: `{"Profile_ID":"trusted-auth-token-profile-test"}`, want: domain.ErrInvalidRequest},
		{name: "field sent twice", payload: `{"profile_id":"x","profile_id":"trusted-auth-token-profile-test"}`, want: domain.ErrInvalidRequest},
		{name: "wrong type", payload: `{"profile_id":7}`, want: domain.ErrInvalidRequest},
		{name: "not an object", payload: `["trusted-auth-token-profile-test"]`, want: domain.ErrInvalidRequest},
		{name: "not JSON", payload: `profile`, want: domain.ErrInvalidRequest},
		{name: "empty", payload: ``, want: domain.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			b := &lateBarrier{}
			if tc.setup != nil {
				b.arrive = tc.setup(t, e)
			}
			r, wire := readCall(t, readsOn(e, b).ProfileGet, tc.payload)
			if got := b.calls.Load(); got != tc.catchUps {
				t.Errorf("%d catch-ups, want %d", got, tc.catchUps)
			}
			if tc.want != nil {
				wantReadError(t, r, wire, tc.want)
				return
			}
			want := tc.payload.(map[string]any)["profile_id"]
			if r.StatusCode != 200 || r.Profile == nil || r.Profile.ProfileID != want {
				t.Fatalf("reply %+v, want profile %v", r, want)
			}
			p := wire["profile"].(map[string]any)
			if p["profile_id"] != want || len(p["public_keys"].([]any)) != 1 || p["issuer"] != e.idp.iss {
				t.Errorf("profile on the wire: %v", p)
			}
			if s := fmt.Sprint(wire); strings.Contains(s, "PRIVATE") {
				t.Errorf("profile reply holds private key material: %s", s)
			}
		})
	}
}

func TestReadsProfileListIsSortedPagedAndSkipsDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	b := &lateBarrier{}
	h := readsOn(e, b)
	for _, id := range []string{"p-3", "p-1", "p-5", "p-2", "p-4"} {
		e.view.PutProfile(newProfile(t, e, id), false)
	}
	gone := newProfile(t, e, "p-25")
	e.view.PutProfile(gone, false)
	gone.Version++
	e.view.PutProfile(gone, true)

	ids := func(r handlers.ReadReply) []string {
		var out []string
		for _, p := range *r.Profiles {
			out = append(out, p.ProfileID)
		}
		return out
	}
	all := []string{"p-1", "p-2", "p-3", "p-4", "p-5", "trusted-auth-token-profile-test"}
	r, wire := readCall(t, h.ProfileList, map[string]any{})
	if r.StatusCode != 200 || !slices.Equal(ids(r), all) || wire["next_cursor"] != "" {
		t.Fatalf("list all: %v next %q, want %v and no cursor", ids(r), wire["next_cursor"], all)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		req := map[string]any{"limit": 4}
		if cursor != "" {
			req["cursor"] = cursor
		}
		r, wire := readCall(t, h.ProfileList, req)
		if r.StatusCode != 200 || len(*r.Profiles) > 4 {
			t.Fatalf("page %d: %+v", pages, r)
		}
		got = append(got, ids(r)...)
		cursor = wire["next_cursor"].(string)
		if cursor == "" {
			if pages != 1 {
				t.Errorf("%d pages of 4 for 6 profiles, want 2", pages+1)
			}
			break
		}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("paged: %v, want %v", got, all)
	}
	// An empty view lists nothing, as an empty list (not null, not absent).
	empty := newEnv(t, false)
	empty.view.PutProfile(func() domain.Profile { p := empty.profile; p.Version++; return p }(), true)
	_, wire = readCall(t, readsOn(empty, b).ProfileList, map[string]any{})
	if l, ok := wire["profiles"].([]any); !ok || len(l) != 0 || wire["next_cursor"] != "" {
		t.Fatalf("empty list on the wire: %v", wire)
	}
	if b.calls.Load() != 0 {
		t.Errorf("lists caught up %d times; they answer from the view as it is", b.calls.Load())
	}
}

func TestReadsUserGet(t *testing.T) {
	t.Parallel()
	type fixture struct {
		e   *env
		ada domain.User
	}
	cases := []struct {
		name     string
		setup    func(t *testing.T, f fixture) func()
		payload  any
		want     *domain.Error // nil: found
		wantUser string
		status   string
		catchUps int64
	}{
		{name: "by user_id", payload: map[string]any{"user_id": "user-ada"}, wantUser: "user-ada"},
		{name: "by email", payload: map[string]any{"email": "ada@example.com"}, wantUser: "user-ada"},
		{name: "by email in other ASCII case", payload: map[string]any{"email": "ADA@Example.COM"}, wantUser: "user-ada"},
		{name: "by email with ASCII white space", payload: map[string]any{"email": " ada@example.com\t"}, wantUser: "user-ada"},
		{name: "by a second address", payload: map[string]any{"email": "lovelace@example.org"}, wantUser: "user-ada",
			setup: func(t *testing.T, f fixture) func() {
				u := f.ada
				u.Emails = append(slices.Clone(u.Emails), domain.UserEmail{Email: "Lovelace@Example.org"})
				u.Version++
				f.e.view.PutUser(u, false)
				return nil
			}},
		{name: "a disabled user is found, with its status", payload: map[string]any{"user_id": "user-ada"}, wantUser: "user-ada", status: domain.UserDisabled,
			setup: func(t *testing.T, f fixture) func() { setStatus(domain.UserDisabled)(f.e, f.ada); return nil }},
		{name: "unknown user_id", payload: map[string]any{"user_id": "user-nobody"}, want: domain.ErrUserNotFound, catchUps: 1},
		{name: "unknown email", payload: map[string]any{"email": "nobody@example.com"}, want: domain.ErrUserNotFound, catchUps: 1},
		{name: "look-alike: Cyrillic a", payload: map[string]any{"email": "\u0430da@example.com"}, want: domain.ErrUserNotFound, catchUps: 1},
		{name: "look-alike: e with a combining accent", payload: map[string]any{"email": "ade\u0301@example.com"}, want: domain.ErrInvalidRequest},
		{name: "look-alike: Kelvin sign for K", payload: map[string]any{"email": "\u212Aim@example.com"}, want: domain.ErrInvalidRequest,
			setup: func(t *testing.T, f fixture) func() {
				f.e.addUser(t, "user-kim", "kim@example.com", domain.UserActive)
				return nil
			}},
		{name: "look-alike: fullwidth letters", payload: map[string]any{"email": "\uFF41da@example.com"}, want: domain.ErrInvalidRequest},
		{name: "look-alike: dotless i", payload: map[string]any{"email": "k\u0131m@example.com"}, want: domain.ErrInvalidRequest,
			setup: func(t *testing.T, f fixture) func() {
				f.e.addUser(t, "user-kim", "kim@example.com", domain.UserActive)
				return nil
			}},
		{name: "look-alike: zero-width space", payload: map[string]any{"email": "ada\u200B@example.com"}, want: domain.ErrInvalidRequest},
		{name: "look-alike: no-break space around", payload: map[string]any{"email": "\u00A0ada@example.com"}, want: domain.ErrInvalidRequest},
		{name: "look-alike: ideographic full stop", payload: map[string]any{"email": "ada@example\u3002com"}, want: domain.ErrInvalidRequest},
		{name: "a display name is not an address", payload: map[string]any{"email": "Ada <ada@example.com>"}, want: domain.ErrInvalidRequest},
		{name: "deleted, by user_id", payload: map[string]any{"user_id": "user-ada"}, want: domain.ErrUserNotFound, catchUps: 1,
			setup: func(t *testing.T, f fixture) func() { deleteUser(f.e, f.ada); return nil }},
		{name: "deleted, by email", payload: map[string]any{"email": "ada@example.com"}, want: domain.ErrUserNotFound, catchUps: 1,
			setup: func(t *testing.T, f fixture) func() { deleteUser(f.e, f.ada); return nil }},
		{name: "an address the user dropped", payload: map[string]any{"email": "ada@example.com"}, want: domain.ErrUserNotFound, catchUps: 1,
			setup: func(t *testing.T, f fixture) func() {
				u := f.ada
				u.Emails = []domain.UserEmail{{Email: "ada@new.example.com"}}
				u.Version++
				f.e.view.PutUser(u, false)
				return nil
			}},
		{name: "made a moment ago through another worker, by email", payload: map[string]any{"email": "Grace@Example.com"}, wantUser: "user-grace", catchUps: 1,
			setup: func(t *testing.T, f fixture) func() {
				u, err := domain.NewUser(domain.UserSpec{UserID: "user-grace", Emails: []domain.UserEmail{{Email: "grace@example.com"}}}, 1, t0, t0)
				if err != nil {
					t.Fatal(err)
				}
				return func() { f.e.view.PutUser(u, false) }
			}},
		{name: "made a moment ago through another worker, by user_id", payload: map[string]any{"user_id": "user-grace"}, wantUser: "user-grace", catchUps: 1,
			setup: func(t *testing.T, f fixture) func() {
				u, err := domain.NewUser(domain.UserSpec{UserID: "user-grace", Emails: []domain.UserEmail{{Email: "grace@example.com"}}}, 1, t0, t0)
				if err != nil {
					t.Fatal(err)
				}
				return func() { f.e.view.PutUser(u, false) }
			}},
		{name: "both user_id and email", payload: map[string]any{"user_id": "user-ada", "email": "ada@example.com"}, want: domain.ErrInvalidRequest},
		{name: "neither", payload: map[string]any{}, want: domain.ErrInvalidRequest},
		{name: "empty strings", payload: map[string]any{"user_id": "", "email": ""}, want: domain.ErrInvalidRequest},
		{name: "user_id outside the alphabet", payload: map[string]any{"user_id": "user ada"}, want: domain.ErrInvalidRequest},
		{name: "not an email", payload: map[string]any{"email": "ada"}, want: domain.ErrInvalidRequest},
		{name: "unknown field", payload: map[string]any{"user_id": "user-ada", "status": "active"}, want: domain.ErrInvalidRequest},
		{name: "wrong type", payload: `{"email":["ada@example.com"]}`, want: domain.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			f := fixture{e: e, ada: e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)}
			b := &lateBarrier{}
			if tc.setup != nil {
				b.arrive = tc.setup(t, f)
			}
			r, wire := readCall(t, readsOn(e, b).UserGet, tc.payload)
			if got := b.calls.Load(); got != tc.catchUps {
				t.Errorf("%d catch-ups, want %d", got, tc.catchUps)
			}
			if tc.want != nil {
				wantReadError(t, r, wire, tc.want)
				return
			}
			if r.StatusCode != 200 || r.User == nil || r.User.UserID != tc.wantUser {
				t.Fatalf("reply %+v, want user %s", r, tc.wantUser)
			}
			status := tc.status
			if status == "" {
				status = domain.UserActive
			}
			if u := wire["user"].(map[string]any); u["user_id"] != tc.wantUser || u["status"] != status {
				t.Errorf("user on the wire: %v, want %s %s", u, tc.wantUser, status)
			}
		})
	}
}

// addUsers puts users with ids "user-0000".. in the view and returns
// their ids in order.
func addUsers(t *testing.T, e *env, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("user-%04d", i)
		e.addUser(t, id, fmt.Sprintf("u%04d@example.com", i), domain.UserActive)
		ids = append(ids, id)
	}
	return ids
}

// listUsers pages through users.list with limit (nil: the default) and
// returns every id in order and the number of pages.
func listUsers(t *testing.T, h *handlers.Reads, limit any) ([]string, int) {
	t.Helper()
	var got []string
	cursor := ""
	for pages := 1; ; pages++ {
		req := map[string]any{}
		if limit != nil {
			req["limit"] = limit
		}
		if cursor != "" {
			req["cursor"] = cursor
		}
		r, wire := readCall(t, h.UserList, req)
		if r.StatusCode != 200 {
			t.Fatalf("page %d: %+v", pages, r)
		}
		if _, ok := wire["users"].([]any); !ok {
			t.Fatalf("page %d carries no users list: %v", pages, wire)
		}
		for _, u := range *r.Users {
			got = append(got, u.UserID)
		}
		next, ok := wire["next_cursor"].(string)
		if !ok {
			t.Fatalf("page %d carries no next_cursor: %v", pages, wire)
		}
		if next == "" {
			return got, pages
		}
		if len(*r.Users) == 0 || next != (*r.Users)[len(*r.Users)-1].UserID {
			t.Fatalf("page %d: next_cursor %q does not follow its last user", pages, next)
		}
		cursor = next
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
	}
}

func TestReadsUserListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	all := addUsers(t, e, 7)
	// Deleted users are not listed; disabled ones are.
	for _, id := range []string{"user-0002", "user-0006"} {
		u, _ := e.view.User(id)
		deleteUser(e, u)
	}
	u, _ := e.view.User("user-0004")
	setStatus(domain.UserDisabled)(e, u)
	live := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == "user-0002" || id == "user-0006" })
	b := &lateBarrier{}
	h := readsOn(e, b)
	for _, tc := range []struct {
		limit any
		pages int
	}{
		{nil, 1}, {1, 5}, {2, 3}, {4, 2}, {5, 1}, {6, 1}, {1000, 1},
	} {
		got, pages := listUsers(t, h, tc.limit)
		if !slices.Equal(got, live) || pages != tc.pages {
			t.Errorf("limit %v: %v in %d pages, want %v in %d", tc.limit, got, pages, live, tc.pages)
		}
	}
	// A cursor naming a user deleted since (or never there) still pages on.
	for cursor, want := range map[string][]string{
		"user-0002":  {"user-0003", "user-0004", "user-0005"},
		"user-00035": {"user-0004", "user-0005"},
		"user-0005":  {},
		"zzz":        {},
		"a":          live,
	} {
		r, wire := readCall(t, h.UserList, map[string]any{"cursor": cursor})
		var got []string
		for _, u := range *r.Users {
			got = append(got, u.UserID)
		}
		if r.StatusCode != 200 || !slices.Equal(got, want) || wire["next_cursor"] != "" {
			t.Errorf("cursor %q: %v next %v, want %v", cursor, got, wire["next_cursor"], want)
		}
	}
	if b.calls.Load() != 0 {
		t.Errorf("users.list caught up %d times", b.calls.Load())
	}
}

func TestReadsUserListDefaultAndMaximumLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	all := addUsers(t, e, 1001)
	h := readsOn(e, &lateBarrier{})
	r, wire := readCall(t, h.UserList, map[string]any{})
	if len(*r.Users) != handlers.DefaultPageLimit || wire["next_cursor"] != all[99] {
		t.Fatalf("default page: %d users, next %v; want 100 and %s", len(*r.Users), wire["next_cursor"], all[99])
	}
	r, wire = readCall(t, h.UserList, map[string]any{"limit": 1000})
	if len(*r.Users) != 1000 || wire["next_cursor"] != all[999] {
		t.Fatalf("limit 1000: %d users, next %v", len(*r.Users), wire["next_cursor"])
	}
	r, wire = readCall(t, h.UserList, map[string]any{"limit": 1000, "cursor": all[999]})
	if len(*r.Users) != 1 || (*r.Users)[0].UserID != all[1000] || wire["next_cursor"] != "" {
		t.Fatalf("the last page: %d users, next %v", len(*r.Users), wire["next_cursor"])
	}
}

// TestReadsUserListRefusesBadPages is the attacker's table: a limit that
// would make the worker build a huge reply, or a cursor that is not one
// the worker gave, is refused before the view is read.
func TestReadsUserListRefusesBadPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	addUsers(t, e, 3)
	b := &lateBarrier{}
	h := readsOn(e, b)
	for name, payload := range map[string]string{
		"limit above the maximum":    `{"limit":1001}`,
		"huge limit":                 `{"limit":2147483648000}`,
		"limit past int64":           `{"limit":99999999999999999999999}`,
		"limit zero":                 `{"limit":0}`,
		"negative limit":             `{"limit":-1}`,
		"fractional limit":           `{"limit":1.5}`,
		"limit in exponent form":     `{"limit":1e3}`,
		"limit as a string":          `{"limit":"10"}`,
		"cursor sent twice":          `{"limit":null,"cursor":"user-000","cursor":"user-001"}`,
		"cursor with a space":        `{"cursor":"user 000"}`,
		"cursor with a wildcard":     `{"cursor":"user.>"}`,
		"cursor past 128 characters": `{"cursor":"` + strings.Repeat("u", 129) + `"}`,
		"cursor as a number":         `{"cursor":5}`,
		"cursor as an object":        `{"cursor":{"$gt":""}}`,
		"unknown field":              `{"offset":10}`,
		"not an object":              `[]`,
		"over 64 KiB":                `{"cursor":"` + strings.Repeat("u", 70<<10) + `"}`,
	} {
		r, wire := readCall(t, h.UserList, payload)
		if r.StatusCode != 400 || r.ErrorType != domain.ErrInvalidRequest.Code || wire["users"] != nil {
			t.Errorf("%s: %d %s %v", name, r.StatusCode, r.ErrorType, wire)
		}
	}
	if b.calls.Load() != 0 {
		t.Errorf("refused pages caught up %d times", b.calls.Load())
	}
}

// TestReadsListStaysWithinReplyBudget: a page of big users ends early, with
// a next_cursor, rather than make a reply the bus cannot carry, and the
// pages still hold every user once.
func TestReadsListStaysWithinReplyBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	meta := json.RawMessage(`{"blob":"` + strings.Repeat("m", 15<<10) + `"}`)
	var all []string
	for i := range 40 {
		id := fmt.Sprintf("user-%03d", i)
		u, err := domain.NewUser(domain.UserSpec{UserID: id, Emails: []domain.UserEmail{{Email: id + "@example.com"}}, TrustedMetadata: meta}, 1, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		e.view.PutUser(u, false)
		all = append(all, id)
	}
	const budget = 100 << 10
	h := &handlers.Reads{View: e.view, Barrier: &lateBarrier{}, Now: e.clock.Now, MaxReplyBytes: budget}
	r, wire := readCall(t, h.UserList, map[string]any{"limit": 1000})
	body, _ := json.Marshal(r)
	if len(body) > budget+1024 || len(*r.Users) == 0 || len(*r.Users) >= 40 || wire["next_cursor"] == "" {
		t.Fatalf("one page of 40 users of 15 KiB: %d users in %d bytes, next %v", len(*r.Users), len(body), wire["next_cursor"])
	}
	got, pages := listUsers(t, h, 1000)
	if !slices.Equal(got, all) || pages < 6 {
		t.Fatalf("paged within the budget: %d users in %d pages, want all 40 in at least 6", len(got), pages)
	}
	// A budget smaller than one user still moves on: one user a page.
	h.MaxReplyBytes = 10
	if got, pages := listUsers(t, h, 3); !slices.Equal(got, all) || pages != 40 {
		t.Fatalf("tiny budget: %d users in %d pages", len(got), pages)
	}
}

// TestReadsNotFoundCatchesUpOncePerRead: a flood of reads that miss costs
// one catch-up each, never more (no retry loop), and reads that hit or are
// refused cost none.
func TestReadsNotFoundCatchesUpOncePerRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.addUser(t, "user-ada", "ada@example.com", domain.UserActive)
	b := &lateBarrier{}
	h := readsOn(e, b)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(4)
		go func() {
			defer wg.Done()
			h.UserGet(context.Background(), fmt.Appendf(nil, `{"user_id":"user-x%d"}`, i))
		}()
		go func() {
			defer wg.Done()
			h.ProfileGet(context.Background(), fmt.Appendf(nil, `{"profile_id":"p-x%d"}`, i))
		}()
		go func() { defer wg.Done(); h.UserGet(context.Background(), []byte(`{"user_id":"user-ada"}`)) }()
		go func() { defer wg.Done(); h.UserGet(context.Background(), []byte(`{"user_id":"bad id"}`)) }()
	}
	wg.Wait()
	if got := b.calls.Load(); got != 2*n {
		t.Fatalf("%d catch-ups for %d reads that missed, want exactly one each", got, 2*n)
	}
}

// TestReadsCatchUpFailureIsInternal: when the view cannot be caught up the
// read answers internal_server_error, not a not-found it cannot vouch for.
func TestReadsCatchUpFailureIsInternal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	h := readsOn(e, failingBarrier{})
	r, wire := readCall(t, h.UserGet, map[string]any{"user_id": "user-nobody"})
	wantReadError(t, r, wire, domain.ErrInternal)
	if r.Cause() == nil {
		t.Error("no cause kept for the log")
	}
}

type failingBarrier struct{}

func (failingBarrier) CatchUp(context.Context) error { return fmt.Errorf("events stream unreachable") }

// noSecrets fails if a reply's JSON holds any session's token or JWT, or a
// member named like one.
func (f *sessionsFixture) noSecrets(t *testing.T, r handlers.ReadReply) {
	t.Helper()
	body, _ := json.Marshal(r)
	for _, s := range f.sessions {
		if strings.Contains(string(body), s.SessionToken) || strings.Contains(string(body), s.SessionJWT) {
			t.Fatalf("a read reply holds a session secret: %s", body)
		}
	}
	for _, name := range []string{`"session_token"`, `"session_jwt"`, `"token"`} {
		if r.StatusCode == 200 && strings.Contains(string(body), name) {
			t.Fatalf("a read reply holds %s: %s", name, body)
		}
	}
}

func TestReadsSessionGet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(t *testing.T, f *sessionsFixture) (id string, arrive func())
		payload  any // when set, sent instead of the id
		want     *domain.Error
		catchUps int64
	}{
		{name: "active", setup: func(t *testing.T, f *sessionsFixture) (string, func()) { return f.id("a-1"), nil }},
		{name: "unknown", setup: func(t *testing.T, f *sessionsFixture) (string, func()) { return "session-nope", nil },
			want: domain.ErrSessionNotFound, catchUps: 1},
		{name: "revoked", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				st, _ := f.e.view.Session(f.id("a-1"))
				st.Revision++
				st.Revoked = true
				f.e.view.PutSession(st)
				return f.id("a-1"), nil
			}},
		{name: "expired", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				f.e.clock.Set(t0.Add(61 * time.Minute))
				return f.id("a-1"), nil
			}},
		{name: "its user disabled", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				setStatus(domain.UserDisabled)(f.e, f.ada)
				return f.id("a-1"), nil
			}},
		{name: "its user deleted", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				deleteUser(f.e, f.ada)
				return f.id("a-1"), nil
			}},
		{name: "started a moment ago through another worker", catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				s := domain.NewSession("session-elsewhere", "user-ada", domain.FactorEvidence{ProfileID: f.e.profile.ProfileID, TokenID: "j"}, nil, t0, 60)
				return s.SessionID, func() { f.e.view.PutSession(domain.SessionState{Session: s, Revision: 1}) }
			}},
		{name: "revoked a moment ago through another worker", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) {
				s := domain.NewSession("session-elsewhere", "user-ada", domain.FactorEvidence{ProfileID: f.e.profile.ProfileID, TokenID: "j"}, nil, t0, 60)
				return s.SessionID, func() { f.e.view.PutSession(domain.SessionState{Session: s, Revision: 2, Revoked: true}) }
			}},
		{name: "a session token is not a session id", want: domain.ErrSessionNotFound, catchUps: 1,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) { return f.sessions["a-1"].SessionToken, nil }},
		{name: "a session JWT is not a session id", want: domain.ErrInvalidRequest,
			setup: func(t *testing.T, f *sessionsFixture) (string, func()) { return f.sessions["a-1"].SessionJWT, nil }},
		{name: "asking by session_token is refused", payload: "token", want: domain.ErrInvalidRequest},
		{name: "no session_id", payload: map[string]any{}, want: domain.ErrInvalidRequest},
		{name: "unknown field", payload: map[string]any{"session_id": "session-x", "user_id": "user-ada"}, want: domain.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSessionsFixture(t)
			b := &lateBarrier{}
			var id string
			if tc.setup != nil {
				id, b.arrive = tc.setup(t, f)
			}
			payload := tc.payload
			switch {
			case payload == "token":
				payload = map[string]any{"session_token": f.sessions["a-1"].SessionToken}
			case payload == nil:
				payload = map[string]any{"session_id": id}
			}
			r, wire := readCall(t, readsOn(f.e, b).SessionGet, payload)
			if got := b.calls.Load(); got != tc.catchUps {
				t.Errorf("%d catch-ups, want %d", got, tc.catchUps)
			}
			f.noSecrets(t, r)
			if tc.want != nil {
				wantReadError(t, r, wire, tc.want)
				return
			}
			if r.StatusCode != 200 || r.Session == nil || r.Session.SessionID != id || r.Session.UserID != "user-ada" {
				t.Fatalf("reply %+v, want session %s", r, id)
			}
		})
	}
}

func TestReadsSessionList(t *testing.T) {
	t.Parallel()
	f := newSessionsFixture(t)
	b := &lateBarrier{}
	h := readsOn(f.e, b)
	ids := func(r handlers.ReadReply) []string {
		var out []string
		for _, s := range *r.Sessions {
			out = append(out, s.SessionID)
		}
		return out
	}
	want := []string{f.id("a-1"), f.id("a-2"), f.id("a-3")}
	slices.Sort(want)
	r, wire := readCall(t, h.SessionList, map[string]any{"user_id": "user-ada"})
	f.noSecrets(t, r)
	if r.StatusCode != 200 || !slices.Equal(ids(r), want) || wire["next_cursor"] != "" {
		t.Fatalf("ada's sessions: %v next %v, want %v", ids(r), wire["next_cursor"], want)
	}
	// Paged by session id.
	r, wire = readCall(t, h.SessionList, map[string]any{"user_id": "user-ada", "limit": 2})
	if !slices.Equal(ids(r), want[:2]) || wire["next_cursor"] != want[1] {
		t.Fatalf("first page of 2: %v next %v", ids(r), wire["next_cursor"])
	}
	r, wire = readCall(t, h.SessionList, map[string]any{"user_id": "user-ada", "limit": 2, "cursor": want[1]})
	if !slices.Equal(ids(r), want[2:]) || wire["next_cursor"] != "" {
		t.Fatalf("second page of 2: %v next %v", ids(r), wire["next_cursor"])
	}
	// A revoked session is not listed; grace's never is.
	st, _ := f.e.view.Session(want[0])
	st.Revision++
	st.Revoked = true
	f.e.view.PutSession(st)
	r, _ = readCall(t, h.SessionList, map[string]any{"user_id": "user-ada"})
	if !slices.Equal(ids(r), want[1:]) {
		t.Fatalf("after one revoked: %v, want %v", ids(r), want[1:])
	}
	r, _ = readCall(t, h.SessionList, map[string]any{"user_id": "user-grace"})
	if !slices.Equal(ids(r), []string{f.id("g-1")}) {
		t.Fatalf("grace's sessions: %v", ids(r))
	}
	if b.calls.Load() != 0 {
		t.Errorf("%d catch-ups for a known user", b.calls.Load())
	}
	// A disabled user has none (authenticate refuses them); an unknown or
	// deleted one is not found, after one catch-up.
	setStatus(domain.UserDisabled)(f.e, f.ada)
	r, wire = readCall(t, h.SessionList, map[string]any{"user_id": "user-ada"})
	if r.StatusCode != 200 || len(*r.Sessions) != 0 || wire["sessions"] == nil {
		t.Fatalf("a disabled user's sessions: %v", wire)
	}
	for _, id := range []string{"user-nobody", "user-grace"} {
		if id == "user-grace" {
			g, _ := f.e.view.User(id)
			deleteUser(f.e, g)
		}
		before := b.calls.Load()
		r, wire = readCall(t, h.SessionList, map[string]any{"user_id": id})
		wantReadError(t, r, wire, domain.ErrUserNotFound)
		if b.calls.Load() != before+1 {
			t.Errorf("%s: %d catch-ups, want 1", id, b.calls.Load()-before)
		}
	}
	// Expired sessions are not listed.
	f2 := newSessionsFixture(t)
	f2.e.clock.Set(t0.Add(2 * time.Hour))
	r, _ = readCall(t, readsOn(f2.e, b).SessionList, map[string]any{"user_id": "user-ada"})
	if len(*r.Sessions) != 0 {
		t.Fatalf("expired sessions listed: %v", ids(r))
	}
	for name, payload := range map[string]any{
		"no user_id":     map[string]any{},
		"bad user_id":    map[string]any{"user_id": "user ada"},
		"by email":       map[string]any{"email": "ada@example.com"},
		"limit too big":  map[string]any{"user_id": "user-ada", "limit": 1001},
		"cursor not id":  map[string]any{"user_id": "user-ada", "cursor": "session *"},
		"session token":  map[string]any{"user_id": "user-ada", "session_token": f.sessions["a-1"].SessionToken},
		"array user_ids": map[string]any{"user_id": []string{"user-ada", "user-grace"}},
	} {
		r, wire := readCall(t, h.SessionList, payload)
		if r.StatusCode != 400 || r.ErrorType != domain.ErrInvalidRequest.Code {
			t.Errorf("%s: %v", name, wire)
		}
	}
}
