package handlers_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestViewRoundTrip: what the compact view gives back is what it was
// given, field for field: nil and empty lists, several addresses and
// factors, names, metadata, claims (numbers as json.Number, as requests
// decode them), role names holding any bytes, zero times.
func TestViewRoundTrip(t *testing.T) {
	v := handlers.NewView(func(id string) string { return "token-of-" + id })
	now := time.Now().UTC().Truncate(time.Second)
	users := []domain.User{
		{UserSpec: domain.UserSpec{UserID: "u-min", Status: "active"}, Version: 1},
		{UserSpec: domain.UserSpec{UserID: "u-empty", Emails: []domain.UserEmail{}, Status: "pending", TrustedMetadata: json.RawMessage(`{}`)}, Version: 2, CreatedAt: now, UpdatedAt: now},
		{UserSpec: domain.UserSpec{UserID: "u-full", Emails: []domain.UserEmail{{Email: "Ada@Example.com", Verified: true}, {Email: "ada@two.example"}, {Email: "josé@example.com", Verified: true}},
			Name: domain.UserName{FirstName: "Ada", LastName: "Lovelace"}, Status: "disabled", ExternalID: "ext-1",
			TrustedMetadata: json.RawMessage(`{"plan":"pro","n":12345678901234567890}`)}, Version: 7, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(time.Nanosecond)},
	}
	for _, u := range users {
		v.PutUser(u, false)
		got, ok := v.User(u.UserID)
		if !ok || !reflect.DeepEqual(got, u) {
			t.Fatalf("user round trip:\n got %#v\nwant %#v", got, u)
		}
	}
	if got, ok := v.UserByEmail("ada@example.com"); !ok || got.UserID != "u-full" {
		t.Fatalf("by first address: %v %v", ok, got.UserID)
	}
	if got, ok := v.UserByEmail("josé@example.com"); !ok || got.UserID != "u-full" {
		t.Fatalf("by third address: %v %v", ok, got.UserID)
	}
	factor := func(typ string, tat *domain.TrustedAuthTokenFactor, at time.Time) domain.AuthenticationFactor {
		return domain.AuthenticationFactor{Type: typ, DeliveryMethod: domain.DeliveryTrustedExchange, CreatedAt: at, UpdatedAt: at.Add(time.Second),
			LastAuthenticatedAt: at.Add(2 * time.Second), TrustedAuthTokenFactor: tat}
	}
	sessions := []domain.SessionState{
		{Session: domain.Session{SessionID: "s-nil", UserID: "u-unknown"}, Revision: 1},
		{Session: domain.Session{SessionID: "s-empty", UserID: "u-min", StartedAt: now, LastAccessedAt: now, ExpiresAt: now.Add(time.Hour),
			Roles: []string{}, CustomClaims: map[string]any{}, AuthenticationFactors: []domain.AuthenticationFactor{}}, Revision: 3, Revoked: true},
		{Session: domain.Session{SessionID: "s-full", UserID: "u-full", StartedAt: now, LastAccessedAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
			Roles:        []string{"admin", "", "odd\x00role", "résumé"},
			CustomClaims: map[string]any{"plan": "pro", "n": json.Number("12345678901234567890"), "nested": map[string]any{"a": []any{json.Number("1.5"), true, nil}}},
			AuthenticationFactors: []domain.AuthenticationFactor{
				factor(domain.FactorTrustedAuthToken, &domain.TrustedAuthTokenFactor{TokenID: "jti-1", ProfileID: "p-1"}, now),
				factor("email", nil, now.Add(time.Minute)),
				factor(domain.FactorTrustedAuthToken, &domain.TrustedAuthTokenFactor{TokenID: "jti-2", ProfileID: "p-2"}, now.Add(2*time.Minute)),
			}}, Revision: 2},
	}
	for _, st := range sessions {
		v.PutSession(st)
		got, ok := v.Session(st.Session.SessionID)
		if !ok || !reflect.DeepEqual(got, st) {
			t.Fatalf("session round trip:\n got %#v\nwant %#v", got, st)
		}
		byToken, ok := v.SessionByToken("token-of-" + st.Session.SessionID)
		if !ok || !reflect.DeepEqual(byToken, st) {
			t.Fatalf("by token: %v %#v", ok, byToken)
		}
	}
	// A newer revision replaces the session in place: found by token still.
	next := sessions[2]
	next.Revision, next.Session.Roles = 3, nil
	v.PutSession(next)
	if got, _ := v.SessionByToken("token-of-s-full"); got.Revision != 3 || got.Session.Roles != nil {
		t.Fatalf("newer revision: %#v", got)
	}
	v.PutSession(sessions[2]) // older: ignored
	if got, _ := v.Session("s-full"); got.Revision != 3 {
		t.Fatalf("an older revision replaced a newer one: %d", got.Revision)
	}
	// What the caller gets is its own: changing it changes nothing held.
	got, _ := v.Session("s-full")
	got.Session.CustomClaims["plan"] = "free"
	got.Session.AuthenticationFactors[0].Type = "changed"
	if again, _ := v.Session("s-full"); again.Session.CustomClaims["plan"] != "pro" || again.Session.AuthenticationFactors[0].Type != domain.FactorTrustedAuthToken {
		t.Fatal("a caller's change reached the view")
	}
	u, _ := v.User("u-full")
	u.Emails[0].Email = "changed@example.com"
	if again, _ := v.User("u-full"); again.Emails[0].Email != "Ada@Example.com" {
		t.Fatal("a caller's change reached the view")
	}
	// A newer user version moves the address index; a deleted one leaves it.
	moved := users[2]
	moved.Version, moved.Emails = 8, []domain.UserEmail{{Email: "ada@new.example"}}
	v.PutUser(moved, false)
	if _, ok := v.UserByEmail("ada@example.com"); ok {
		t.Fatal("an address the user dropped still finds it")
	}
	if got, ok := v.UserByEmail("ada@new.example"); !ok || got.Version != 8 {
		t.Fatal("the new address does not find the user")
	}
	moved.Version = 9
	v.PutUser(moved, true)
	if _, ok := v.UserByEmail("ada@new.example"); ok {
		t.Fatal("a deleted user is found by address")
	}
	if version, _, live := v.UserVersion("u-full"); version != 9 || live {
		t.Fatalf("deleted user version %d live %v", version, live)
	}
	if n := v.Sweep(now.Add(30 * time.Minute)); n != 1 { // s-nil has a zero expiry
		t.Fatalf("swept %d", n)
	}
	if _, ok := v.SessionByToken("token-of-s-nil"); ok {
		t.Fatal("a swept session is found by token")
	}
}
