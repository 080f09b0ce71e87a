package domain_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

// sessionStart is a clock reading with sub-second noise and a zone, which
// sessions must drop.
var sessionStart = time.Date(2030, 1, 2, 5, 4, 5, 987654321, time.FixedZone("EET", 2*3600))

func evidence(profileID, tokenID string, roles []string) domain.FactorEvidence {
	return domain.FactorEvidence{ProfileID: profileID, TokenID: tokenID, Roles: roles}
}

func TestNewSession(t *testing.T) {
	t.Parallel()
	roles := []string{"admin"}
	claims := map[string]any{"plan": "pro", "gone": nil}
	s := domain.NewSession("session-1", "user-1", evidence("p-1", "tok-1", roles), claims, sessionStart, 60)

	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if s.SessionID != "session-1" || s.UserID != "user-1" {
		t.Errorf("ids = %q, %q", s.SessionID, s.UserID)
	}
	if s.StartedAt != start || s.LastAccessedAt != start || s.ExpiresAt != start.Add(time.Hour) {
		t.Errorf("times = %v, %v, %v; want %v and an hour later", s.StartedAt, s.LastAccessedAt, s.ExpiresAt, start)
	}
	if !reflect.DeepEqual(s.Roles, []string{"admin"}) {
		t.Errorf("Roles = %v", s.Roles)
	}
	roles[0] = "changed"
	if s.Roles[0] != "admin" {
		t.Errorf("the session shares its roles with the evidence")
	}
	if !reflect.DeepEqual(s.CustomClaims, map[string]any{"plan": "pro"}) {
		t.Errorf("CustomClaims = %v, want the null claim dropped", s.CustomClaims)
	}
	want := domain.AuthenticationFactor{
		Type: domain.FactorTrustedAuthToken, DeliveryMethod: domain.DeliveryTrustedExchange,
		CreatedAt: start, UpdatedAt: start, LastAuthenticatedAt: start,
		TrustedAuthTokenFactor: &domain.TrustedAuthTokenFactor{TokenID: "tok-1", ProfileID: "p-1"},
	}
	if len(s.AuthenticationFactors) != 1 || !reflect.DeepEqual(s.AuthenticationFactors[0], want) {
		t.Errorf("AuthenticationFactors = %+v, want [%+v]", s.AuthenticationFactors, want)
	}
}

func TestNewSessionNeverNil(t *testing.T) {
	t.Parallel()
	s := domain.NewSession("session-1", "user-1", evidence("p-1", "tok-1", nil), nil, sessionStart, 5)
	if s.Roles == nil || len(s.Roles) != 0 {
		t.Errorf("Roles = %#v, want an empty list (JSON [])", s.Roles)
	}
	if s.CustomClaims == nil || len(s.CustomClaims) != 0 {
		t.Errorf("CustomClaims = %#v, want an empty map (JSON {})", s.CustomClaims)
	}
}

func TestAttachFactor(t *testing.T) {
	t.Parallel()
	start := sessionStart.UTC().Truncate(time.Second)
	later := sessionStart.Add(10*time.Minute + 500*time.Millisecond)
	laterUTC := later.UTC().Truncate(time.Second)
	base := func() domain.Session {
		return domain.NewSession("session-1", "user-1", evidence("p-1", "tok-1", []string{"admin"}),
			map[string]any{"plan": "pro", "seat": 1}, sessionStart, 60)
	}
	for _, tc := range []struct {
		name    string
		ev      domain.FactorEvidence
		claims  map[string]any
		minutes int
		check   func(t *testing.T, before, after domain.Session)
	}{
		{
			name: "same profile refreshes its factor", ev: evidence("p-1", "tok-2", nil),
			check: func(t *testing.T, before, after domain.Session) {
				if len(after.AuthenticationFactors) != 1 {
					t.Fatalf("factors = %+v, want one", after.AuthenticationFactors)
				}
				f := after.AuthenticationFactors[0]
				if f.CreatedAt != start || f.UpdatedAt != laterUTC || f.LastAuthenticatedAt != laterUTC {
					t.Errorf("factor times = %v, %v, %v", f.CreatedAt, f.UpdatedAt, f.LastAuthenticatedAt)
				}
				if *f.TrustedAuthTokenFactor != (domain.TrustedAuthTokenFactor{TokenID: "tok-2", ProfileID: "p-1"}) {
					t.Errorf("factor = %+v, want the new token id", *f.TrustedAuthTokenFactor)
				}
			},
		},
		{
			name: "another profile adds a factor", ev: evidence("p-2", "tok-9", nil),
			check: func(t *testing.T, before, after domain.Session) {
				if len(after.AuthenticationFactors) != 2 {
					t.Fatalf("factors = %+v, want two", after.AuthenticationFactors)
				}
				if !reflect.DeepEqual(after.AuthenticationFactors[0], before.AuthenticationFactors[0]) {
					t.Errorf("the first factor changed: %+v", after.AuthenticationFactors[0])
				}
				f := after.AuthenticationFactors[1]
				if f.CreatedAt != laterUTC || f.Type != domain.FactorTrustedAuthToken ||
					*f.TrustedAuthTokenFactor != (domain.TrustedAuthTokenFactor{TokenID: "tok-9", ProfileID: "p-2"}) {
					t.Errorf("added factor = %+v", f)
				}
			},
		},
		{
			name: "without minutes the expiry stays", ev: evidence("p-1", "tok-2", nil), minutes: 0,
			check: func(t *testing.T, before, after domain.Session) {
				if after.ExpiresAt != before.ExpiresAt {
					t.Errorf("ExpiresAt = %v, want %v", after.ExpiresAt, before.ExpiresAt)
				}
				if after.LastAccessedAt != laterUTC {
					t.Errorf("LastAccessedAt = %v, want %v", after.LastAccessedAt, laterUTC)
				}
			},
		},
		{
			name: "negative minutes leave the expiry", ev: evidence("p-1", "tok-2", nil), minutes: -5,
			check: func(t *testing.T, before, after domain.Session) {
				if after.ExpiresAt != before.ExpiresAt {
					t.Errorf("ExpiresAt = %v, want %v", after.ExpiresAt, before.ExpiresAt)
				}
			},
		},
		{
			name: "minutes move the expiry from now", ev: evidence("p-1", "tok-2", nil), minutes: 5,
			check: func(t *testing.T, before, after domain.Session) {
				if want := laterUTC.Add(5 * time.Minute); after.ExpiresAt != want {
					t.Errorf("ExpiresAt = %v, want %v (even though that is sooner)", after.ExpiresAt, want)
				}
			},
		},
		{
			name: "nil roles keep the session's", ev: evidence("p-1", "tok-2", nil),
			check: func(t *testing.T, before, after domain.Session) {
				if !reflect.DeepEqual(after.Roles, []string{"admin"}) {
					t.Errorf("Roles = %v", after.Roles)
				}
			},
		},
		{
			name: "roles replace the session's", ev: evidence("p-2", "tok-2", []string{"billing", "support"}),
			check: func(t *testing.T, before, after domain.Session) {
				if !reflect.DeepEqual(after.Roles, []string{"billing", "support"}) {
					t.Errorf("Roles = %v", after.Roles)
				}
			},
		},
		{
			name: "empty roles clear the session's", ev: evidence("p-1", "tok-2", []string{}),
			check: func(t *testing.T, before, after domain.Session) {
				if after.Roles == nil || len(after.Roles) != 0 {
					t.Errorf("Roles = %#v, want empty", after.Roles)
				}
			},
		},
		{
			name: "claims merge and null deletes", ev: evidence("p-1", "tok-2", nil),
			claims: map[string]any{"plan": "enterprise", "seat": nil, "region": "eu"},
			check: func(t *testing.T, before, after domain.Session) {
				if want := map[string]any{"plan": "enterprise", "region": "eu"}; !reflect.DeepEqual(after.CustomClaims, want) {
					t.Errorf("CustomClaims = %v, want %v", after.CustomClaims, want)
				}
			},
		},
		{
			name: "no claims keep the session's", ev: evidence("p-1", "tok-2", nil),
			check: func(t *testing.T, before, after domain.Session) {
				if !reflect.DeepEqual(after.CustomClaims, before.CustomClaims) {
					t.Errorf("CustomClaims = %v, want %v", after.CustomClaims, before.CustomClaims)
				}
			},
		},
		{
			name: "ids and start stay", ev: evidence("p-2", "tok-2", []string{"x"}), claims: map[string]any{"a": 1}, minutes: 30,
			check: func(t *testing.T, before, after domain.Session) {
				if after.SessionID != before.SessionID || after.UserID != before.UserID || after.StartedAt != before.StartedAt {
					t.Errorf("session = %+v", after)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := base()
			snapshot := base()
			after := domain.AttachFactor(before, tc.ev, tc.claims, later, tc.minutes)
			tc.check(t, before, after)
			if !reflect.DeepEqual(before, snapshot) {
				t.Errorf("AttachFactor changed the session it was given:\n%+v\nwas\n%+v", before, snapshot)
			}
		})
	}
}

func TestValidateSessionDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		minutes int
		ok      bool
	}{
		{-1, false}, {0, false}, {4, false}, {5, true}, {60, true}, {527040, true}, {527041, false},
	} {
		err := domain.ValidateSessionDuration(tc.minutes)
		if tc.ok && err != nil {
			t.Errorf("ValidateSessionDuration(%d) = %v", tc.minutes, err)
		}
		if !tc.ok && !errors.Is(err, domain.ErrInvalidSessionDuration) {
			t.Errorf("ValidateSessionDuration(%d) = %v, want invalid_session_duration_minutes", tc.minutes, err)
		}
	}
}

func TestSessionStateActive(t *testing.T) {
	t.Parallel()
	expires := testNow.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		revoked bool
		now     time.Time
		want    bool
	}{
		{name: "before expiry", now: testNow, want: true},
		{name: "a nanosecond before expiry", now: expires.Add(-time.Nanosecond), want: true},
		{name: "at expiry", now: expires, want: false},
		{name: "after expiry", now: expires.Add(time.Second), want: false},
		{name: "revoked before expiry", revoked: true, now: testNow, want: false},
		{name: "same instant in another zone", now: expires.In(time.FixedZone("X", 5*3600)), want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := domain.SessionState{Session: domain.Session{ExpiresAt: expires}, Revision: 3, Revoked: tc.revoked}
			if got := st.Active(tc.now); got != tc.want {
				t.Errorf("Active(%v) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}
